"""Executor: runs one schedule's DAG of transfers on a FlowNetwork.

A transfer becomes ready when every transfer in its ``after`` has been delivered and every one in
its ``after_sent`` has put its last bit on the wire. It then waits its jitter delay (and launch
skew), enters the network as one flow per queue pair and route (``flows_of``; by default one flow
on ``route_of``'s route), its bytes split evenly over them, and is sent when every flow has sent its
last bit. Its loss falls on its first flow: go-back-N resends travel with it and it is delivered
one path latency after its last bit left, plus any NACK round trips and retransmission timeouts;
the other flows are delivered one path latency after their last bit. The transfer is delivered with
its last flow. A transfer whose queue pair fails ends the schedule at the moment the failure is
known (the last timeout), marked failed.

The run keeps what the breakdown needs (fabricsim/breakdown.py): for each transfer, which
dependency released it last and the time its own causes added (jitter, resends, NACK round trips,
timeouts, stalls on a link that is down), and each transfer's ideal time alone on the intact fabric.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Callable

import numpy as np
import simpy

from fabricsim.breakdown import Causes, TransferCauses, critical_path_causes, ideal_makespan_ps
from fabricsim.engine.flows import Flow, FlowNetwork, serialisation_ps
from fabricsim.fabric.routing import Route
from fabricsim.impairments import TransferImpairments, Transport, loss_costs
from fabricsim.schedule import Dependencies, Schedule


@dataclass(frozen=True, slots=True)
class FlowRecord:
    """One flow of a transfer, for flows.csv; ranks are the collective's."""

    transfer: int
    qp: int  # the flow's index in its transfer: queue pair (x equal-cost route when spraying)
    src: int
    dst: int
    nbytes: int
    links: tuple[int, ...]
    start_ps: int
    sent_ps: int
    stalled_ps: int


class ScheduleRun:
    """Starts a schedule at ``env.now``; ``done`` fires when all is delivered or a transfer fails."""

    def __init__(self, env: simpy.Environment, network: FlowNetwork, schedule: Schedule,
                 route_of: Callable[[int, int], Route], impairments: TransferImpairments,
                 transport: Transport,
                 flows_of: Callable[[int], list[tuple[Route, object]]] | None = None,
                 fixed_delay_ps: np.ndarray | None = None, record_flows: bool = False,
                 ideal_route_of: Callable[[int, int], Route] | None = None) -> None:
        self.env = env
        self.network = network
        self.schedule = schedule
        self.route_of = route_of
        self.ideal_route_of = ideal_route_of or route_of  # rate: all of a transfer's flows together
        transfers = schedule.transfers
        self._src, self._dst, self._nbytes = _column(transfers.src), _column(transfers.dst), _column(transfers.nbytes)
        self.flows_of = flows_of or (lambda tid: [(route_of(self._src[tid], self._dst[tid]), None)])
        self.impairments = impairments
        self._delay_ps, self._gaps = _column(impairments.start_delay_ps), _column(impairments.gap_losses)
        self._timeouts, self._fails = _column(impairments.tail_timeouts), _column(impairments.failed)
        # the part of each start delay that is not jitter (software latency): ideal time
        self.fixed_delay_ps = np.zeros(len(transfers), dtype=np.int64) if fixed_delay_ps is None \
            else fixed_delay_ps
        self.transport = transport
        self.done = env.event()
        self.failed = False
        self.flow_records: list[FlowRecord] | None = [] if record_flows else None
        self._waiting = _column(transfers.after.counts() + transfers.after_sent.counts())
        self._after_delivery = _Children(transfers.after)
        self._after_sending = _Children(transfers.after_sent)
        # per transfer: the dependency that released it last (time, by delivery, parent; time -1:
        # none yet), flows not yet sent / delivered, and the time its own causes added before it
        # was sent and after
        self._released_at = _column(np.full(len(transfers), -1))
        self._released_by_delivery = _column(np.zeros(len(transfers)))
        self._released_by = _column(np.full(len(transfers), -1))
        self._unsent = _column(np.zeros(len(transfers)))
        self._undelivered_flows = _column(np.zeros(len(transfers)))
        self._start_ps, self._delivered_at = int(env.now), _column(np.full(len(transfers), -1))
        self.causes = TransferCauses.zeros(len(transfers))
        self.causes.jitter_ps[:] = impairments.start_delay_ps - self.fixed_delay_ps
        self._last = (-1, "delivered")
        self._latest_delivery = (-1, -1)  # (time, transfer): of transfers delivered at one time, the highest id
        self._undelivered = len(transfers)
        if not len(transfers):
            self.done.succeed()
        for tid in np.flatnonzero(transfers.is_root).tolist():
            self._ready(tid)

    # --- running ------------------------------------------------------------------------------

    def _ready(self, tid: int) -> None:
        delay_ps = self._delay_ps[tid]
        if delay_ps:
            self.env.timeout(delay_ps).callbacks.append(lambda _event: self._inject(tid))
        else:
            self._inject(tid)

    def _inject(self, tid: int) -> None:
        flows = self.flows_of(tid)
        resent_bytes = 0
        if self._gaps[tid] or self._timeouts[tid]:
            resent_bytes = int(self._loss_costs(tid, flows[0][0])[0])
            self.causes.resent_ps[tid] = serialisation_ps(8.0 * resent_bytes, flows[0][0].bottleneck_bps)
        transfer_bytes = self._nbytes[tid]
        self._unsent[tid] = self._undelivered_flows[tid] = len(flows)
        started: list[Flow] = []  # the flows, once start_all() has returned them
        specs = []
        for qp, (route, tag) in enumerate(flows):
            nbytes = transfer_bytes // len(flows) + (qp < transfer_bytes % len(flows))
            lossy = qp == 0
            nbits = 8.0 * (nbytes + (resent_bytes if lossy else 0))
            specs.append((route.links, nbits, lambda qp=qp, route=route, nbytes=nbytes, lossy=lossy:
                          self._flow_sent(tid, qp, route, nbytes, lossy, started), tag))
        started.extend(self.network.start_all(specs))

    def _flow_sent(self, tid: int, qp: int, route: Route, nbytes: int, lossy: bool, started: list[Flow]) -> None:
        if started:  # a flow of no bits is sent before start_all() returns: it never stalled
            self._record_flow(tid, qp, nbytes, started[qp])
        if lossy:
            self._after_flow_sent(tid, route)
        else:
            self.env.timeout(route.latency_ps).callbacks.append(lambda _event: self._flow_delivered(tid))
        self._unsent[tid] -= 1
        if self._unsent[tid] == 0:
            self._release(tid, "sent", self._after_sending[tid])

    def _after_flow_sent(self, tid: int, route: Route) -> None:
        causes = self.causes
        if self._fails[tid]:
            causes.timeout_ps[tid] = timeout_ps = (self.transport.retry_count + 1) * self.transport.rto_ps
            self.env.timeout(timeout_ps).callbacks.append(lambda _event: self._fail(tid))
            return
        wait_ps = route.latency_ps
        if self._gaps[tid] or self._timeouts[tid]:
            _, nack_ps, timeout_ps = self._loss_costs(tid, route)
            causes.nack_ps[tid], causes.timeout_ps[tid] = nack_ps, timeout_ps
            wait_ps += int(nack_ps + timeout_ps)
        self.env.timeout(wait_ps).callbacks.append(lambda _event: self._flow_delivered(tid))

    def _loss_costs(self, tid: int, route: Route) -> tuple:
        """Resent bytes, NACK round trips and timeouts of the transfer's losses on its lossy flow's route."""
        return loss_costs(self._gaps[tid], self._timeouts[tid], route.latency_ps, self.transport)

    def _record_flow(self, tid: int, qp: int, nbytes: int, flow: Flow) -> None:
        """Note the longest stall of the transfer's flows (and, if asked, the flow itself)."""
        if flow.stalled_ps > self.causes.stalled_ps[tid]:
            self.causes.stalled_ps[tid] = flow.stalled_ps
        if self.flow_records is not None:
            self.flow_records.append(FlowRecord(tid, qp, self._src[tid], self._dst[tid], nbytes, flow.links,
                                                flow.start_ps, self.env.now, flow.stalled_ps))

    def _flow_delivered(self, tid: int) -> None:
        self._undelivered_flows[tid] -= 1
        if self._undelivered_flows[tid] or self.done.triggered:
            return
        self._undelivered -= 1
        self._delivered_at[tid] = self.env.now
        self._latest_delivery = max(self._latest_delivery, (self.env.now, tid))
        self._release(tid, "delivered", self._after_delivery[tid])
        if self._undelivered == 0:
            self._last = (self._latest_delivery[1], "delivered")
            self.done.succeed()

    def _release(self, tid: int, kind: str, children: array) -> None:
        """Count the dependency off each child; note which released it last (of dependencies done at
        one moment: a delivery, then the highest id, as ``schedule_times.released_by``)."""
        now, delivered = self.env.now, kind == "delivered"
        released_at, by_delivery, released_by = self._released_at, self._released_by_delivery, self._released_by
        for child in children:  # time never goes back: a later release wins; at one time, the greater key
            if now > released_at[child] or (delivered, tid) > (by_delivery[child], released_by[child]):
                released_at[child], by_delivery[child], released_by[child] = now, delivered, tid
            self._waiting[child] -= 1
            if self._waiting[child] == 0:
                self._ready(child)

    def _fail(self, tid: int) -> None:
        if not self.done.triggered:
            self.failed = True
            self._last = (tid, "failed")
            self.done.succeed()

    def transfer_times(self) -> tuple[np.ndarray, np.ndarray]:
        """Per transfer: when it became ready (its last dependency done, the run's start for those with
        none) and when it was delivered (-1: not)."""
        released_at = np.array(self._released_at, dtype=np.int64)
        return np.where(released_at < 0, self._start_ps, released_at), np.array(self._delivered_at, dtype=np.int64)

    # --- what the time was spent on -------------------------------------------------------------

    def ideal_ps(self) -> int:
        """The schedule's time alone on the intact fabric (``breakdown.ideal_makespan_ps``)."""
        return ideal_makespan_ps(self.schedule, self.ideal_route_of, self.fixed_delay_ps)

    def critical_causes(self) -> Causes:
        """The time each cause added along the chain of transfers that ended the run."""
        return critical_path_causes(self._last, self._released_by_of, self.causes)

    def _released_by_of(self, tid: int) -> tuple[int, str] | None:
        if self._released_at[tid] < 0:
            return None
        return self._released_by[tid], "delivered" if self._released_by_delivery[tid] else "sent"


def _column(values: np.ndarray) -> array:
    """Per-transfer integers as an ``array``: the garbage collector never walks it, as it would walk
    a list of millions of ints at every full collection (most of a 1024-rank ring's run time)."""
    column = array("q")
    column.frombytes(np.ascontiguousarray(values, dtype=np.int64).tobytes())
    return column


class _Children:
    """``children[tid]``: the transfers that name ``tid`` in ``dependencies``, from two flat columns."""

    __slots__ = ("ids", "starts")

    def __init__(self, dependencies: Dependencies) -> None:
        dependents = dependencies.dependents()
        self.ids, self.starts = _column(dependents.ids), _column(dependents.starts)

    def __getitem__(self, tid: int) -> array:
        return self.ids[self.starts[tid]:self.starts[tid + 1]]
