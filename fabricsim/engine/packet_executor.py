"""Packet executor: runs one schedule's DAG of transfers on a PacketNetwork, inside SimPy.

The DAG rules are the flow model's (``engine.dag_progress``, which both models drive: ``after``:
delivered; ``after_sent``: last bit sent; a jitter delay before each start; a failed queue pair
ends the schedule), run on the packet event loop. A transfer enters as one queue pair per flow of
``flows_of`` (by default one, on ``route_of``'s route): it is sent when every queue pair's last
packet has left its first link, and delivered when every last packet has reached the receiver in
order. Loss is played packet by packet by the network, so the flow model's pre-drawn loss outcomes
are not used here; the jitter delays are. A schedule that stops with nothing left to happen
(pauses waiting on each other in a cycle: a PFC deadlock) ends there, failed.
"""

from __future__ import annotations

from typing import Callable, Generator

import numpy as np
import simpy

from fabricsim.breakdown import Causes
from fabricsim.config import FabricSpec
from fabricsim.engine.dag_progress import DagProgress
from fabricsim.engine.packet_network import PacketNetwork
from fabricsim.engine.packet_qp import QueuePair
from fabricsim.fabric.ecmp import FlowRouter, FlowTag
from fabricsim.fabric.routing import Route, Router
from fabricsim.impairments import TransferImpairments, Transport
from fabricsim.schedule import Schedule


def packet_flows_of(network: PacketNetwork, router: Router, spec: FabricSpec, schedule: Schedule,
                    group: tuple[int, ...], rng: np.random.Generator) -> Callable[[int], list[tuple[Route, FlowTag]]]:
    """A transfer's queue pairs and their routes, as the flow model draws them (``fabric.ecmp``): per
    trial source ports, ECMP by hash or by the queue pairs on each link; spraying becomes one queue
    pair per equal-cost route."""
    flow_router = FlowRouter(router, router.fabric.endpoints, spec.clos.ecmp, spec.qps_per_rankpair, network.active_on)
    ports = flow_router.draw_ports(schedule, rng)
    src, dst = schedule.transfers.src.tolist(), schedule.transfers.dst.tolist()

    def flows_of(tid: int) -> list[tuple[Route, FlowTag]]:
        return flow_router.flows(group[src[tid]], group[dst[tid]], ports[tid].tolist())
    return flows_of


class _PacketDag:
    """A schedule's DAG progress on the packet loop: each flow of a transfer (``flows_of``) is a queue pair."""

    def __init__(self, loop, network: PacketNetwork, schedule: Schedule, route_of: Callable[[int, int], Route],
                 impairments: TransferImpairments, transport: Transport,
                 flows_of: Callable[[int], list[tuple[Route, object]]] | None = None,
                 fixed_delay_ps: np.ndarray | None = None,
                 ideal_route_of: Callable[[int, int], Route] | None = None) -> None:
        self.network = network
        self.route_of = route_of
        self.transport = transport
        self.dag = dag = DagProgress(loop, schedule, impairments.start_delay_ps, fixed_delay_ps,
                                     ideal_route_of or route_of, self._enter)
        self.flows_of = flows_of or (lambda tid: [(route_of(dag.src[tid], dag.dst[tid]), None)])
        dag.start()

    def _enter(self, tid: int) -> None:
        dag, transport = self.dag, self.transport
        flows = self.flows_of(tid)
        dag.entered(tid, len(flows))
        ack_latency_ps = self.route_of(dag.dst[tid], dag.src[tid]).latency_ps
        transfer_bytes = dag.nbytes[tid]
        for index, (route, _tag) in enumerate(flows):
            nbytes = transfer_bytes // len(flows) + (index < transfer_bytes % len(flows))
            qp = self.network.queue_pair(route.links, nbytes, transport.mtu_bytes, ack_latency_ps, transport.rto_ps,
                                         transport.retry_count)
            qp.on_sent = lambda: dag.flow_sent(tid)
            qp.on_delivered = lambda qp=qp: self._qp_delivered(tid, qp)
            qp.on_failed = lambda qp=qp: self._qp_failed(tid, qp)
            self.network.open(qp)

    def _qp_delivered(self, tid: int, qp: QueuePair) -> None:
        self._note_causes(tid, qp)
        self.dag.flow_delivered(tid)

    def _qp_failed(self, tid: int, qp: QueuePair) -> None:
        self._note_causes(tid, qp)
        self.dag.fail(tid)

    def _note_causes(self, tid: int, qp: QueuePair) -> None:
        """What loss cost this transfer: its timeouts, and the wire time of its resent packets."""
        causes = self.dag.causes
        causes.timeout_ps[tid] = max(causes.timeout_ps[tid], qp.timeouts * self.transport.rto_ps)
        causes.nack_ps[tid] = max(causes.nack_ps[tid], qp.resent_wire_ps)


class PacketScheduleRun:
    """Starts a schedule at ``env.now``; ``done`` (a SimPy event) fires when all is delivered or a
    transfer fails, at the simulated time it happened. ``flows_of`` (see ``packet_flows_of``),
    ``fixed_delay_ps`` and ``ideal_route_of`` are ScheduleRun's; the last two serve the breakdown
    (``ideal_ps``, ``critical_causes``)."""

    def __init__(self, env: simpy.Environment, network: PacketNetwork, schedule: Schedule,
                 route_of: Callable[[int, int], Route], impairments: TransferImpairments,
                 transport: Transport,
                 flows_of: Callable[[int], list[tuple[Route, object]]] | None = None,
                 fixed_delay_ps: np.ndarray | None = None,
                 ideal_route_of: Callable[[int, int], Route] | None = None) -> None:
        self.failed = False
        self._dag: DagProgress | None = None
        self.done = env.process(self._run(env, network, schedule, route_of, impairments, transport,
                                          flows_of=flows_of, fixed_delay_ps=fixed_delay_ps,
                                          ideal_route_of=ideal_route_of))

    def _run(self, env: simpy.Environment, network: PacketNetwork, *dag_args, **dag_options) -> Generator:
        network.loop.advance_to(int(env.now))
        self._dag = _PacketDag(network.loop, network, *dag_args, **dag_options).dag
        finished = network.loop.run_until(self._dag.done)
        self.failed = self._dag.failed or not finished  # nothing left to happen: a PFC deadlock
        yield env.timeout(network.loop.now - env.now)

    def ideal_ps(self) -> int:
        return self._dag.ideal_ps()

    def critical_causes(self) -> Causes:
        return self._dag.critical_causes()
