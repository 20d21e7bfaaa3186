"""Executor: runs one schedule's DAG of transfers on a FlowNetwork.

A transfer becomes ready when every transfer in its ``after`` has been delivered and every one in
its ``after_sent`` has put its last bit on the wire. It then waits its
jitter delay, enters the network as a flow of its bytes (plus go-back-N resends) on its route, and
is delivered one path latency after its last bit left, plus any NACK round trips and
retransmission timeouts its packets cost. A transfer whose queue pair fails ends the schedule at
the moment the failure is known (the last timeout), marked failed.
"""

from __future__ import annotations

from typing import Callable

import simpy

from fabricsim.engine.flows import FlowNetwork
from fabricsim.fabric.routing import Route
from fabricsim.impairments import TransferImpairments
from fabricsim.schedule import Schedule


class ScheduleRun:
    """Starts a schedule at ``env.now``; ``done`` fires when all is delivered or a transfer fails."""

    def __init__(self, env: simpy.Environment, network: FlowNetwork, schedule: Schedule,
                 route_of: Callable[[int, int], Route], impairments: TransferImpairments,
                 mtu_bytes: int, rto_ps: int, retry_count: int) -> None:
        self.env = env
        self.network = network
        self.schedule = schedule
        self.route_of = route_of
        self.impairments = impairments
        self.mtu_bytes = mtu_bytes
        self.rto_ps = rto_ps
        self.retry_count = retry_count
        self.done = env.event()
        self.failed = False
        transfers = schedule.transfers
        self._waiting = [len(t.after) + len(t.after_sent) for t in transfers]
        self._after_delivery: list[list[int]] = [[] for _ in transfers]
        self._after_sending: list[list[int]] = [[] for _ in transfers]
        for t in transfers:
            for parent in t.after:
                self._after_delivery[parent].append(t.id)
            for parent in t.after_sent:
                self._after_sending[parent].append(t.id)
        self._undelivered = len(transfers)
        if not transfers:
            self.done.succeed()
        for t in transfers:
            if not self._waiting[t.id]:
                self._ready(t.id)

    def _ready(self, tid: int) -> None:
        delay_ps = int(self.impairments.start_delay_ps[tid])
        if delay_ps:
            self.env.timeout(delay_ps).callbacks.append(lambda _event: self._inject(tid))
        else:
            self._inject(tid)

    def _inject(self, tid: int) -> None:
        transfer = self.schedule.transfers[tid]
        route = self.route_of(transfer.src, transfer.dst)
        gaps = int(self.impairments.gap_losses[tid])
        timeouts = int(self.impairments.tail_timeouts[tid])
        resent_bytes = (2 * gaps + min(timeouts, self.retry_count)) * self.mtu_bytes
        self.network.start(route.links, 8.0 * (transfer.nbytes + resent_bytes),
                           lambda: self._sent(tid, route, gaps, timeouts))

    def _sent(self, tid: int, route: Route, gaps: int, timeouts: int) -> None:
        self._release(self._after_sending[tid])
        if self.impairments.failed[tid]:
            wait_ps = (self.retry_count + 1) * self.rto_ps
            self.env.timeout(wait_ps).callbacks.append(lambda _event: self._fail())
            return
        wait_ps = route.latency_ps + gaps * 2 * route.latency_ps + timeouts * self.rto_ps
        self.env.timeout(wait_ps).callbacks.append(lambda _event: self._delivered(tid))

    def _delivered(self, tid: int) -> None:
        if self.done.triggered:
            return
        self._undelivered -= 1
        self._release(self._after_delivery[tid])
        if self._undelivered == 0:
            self.done.succeed()

    def _release(self, children: list[int]) -> None:
        for child in children:
            self._waiting[child] -= 1
            if self._waiting[child] == 0:
                self._ready(child)

    def _fail(self) -> None:
        if not self.done.triggered:
            self.failed = True
            self.done.succeed()
