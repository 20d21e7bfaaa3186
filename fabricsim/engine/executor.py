"""Executor: runs one schedule's DAG of transfers on a FlowNetwork.

The DAG's rules are ``engine.dag_progress``'s: a transfer is ready when its dependencies are done,
then waits its start delay (jitter, launch skew, software latency). It enters the network as one
flow per queue pair and route (``flows_of``; by default one flow on ``route_of``'s route), its bytes
split evenly over them, and is sent when every flow has sent its last bit. Its loss falls on its
first flow: go-back-N resends travel with it and it is delivered one path latency after its last
bit left, plus any NACK round trips and retransmission timeouts; the other flows are delivered one
path latency after their last bit. Flows in flight wait in one heap per run behind one timer. The
transfer is delivered with its last flow. A transfer whose queue pair fails ends the schedule at
the moment the failure is known (the last timeout), marked failed.

What the breakdown needs (which dependency released each transfer last, the time its own causes
added: jitter, resends, NACK round trips, timeouts, stalls on a link that is down; the ideal time)
is kept by the DAG progress; this executor fills in the causes the flow model knows.
"""

from __future__ import annotations

import heapq
from functools import partial
from typing import Callable

import numpy as np
import simpy

from fabricsim.collectives.schedule import Schedule
from fabricsim.engine.dag_progress import DagProgress, column
from fabricsim.engine.flows import Flow, FlowNetwork, serialisation_ps
from fabricsim.engine.impairments import TransferImpairments, Transport, loss_costs
from fabricsim.fabric.routing import Route
from fabricsim.records import Causes, FlowRecord


class ScheduleRun:
    """Starts a schedule at ``env.now``; ``done`` fires when all is delivered or a transfer fails."""

    def __init__(self, env: simpy.Environment, network: FlowNetwork, schedule: Schedule,
                 route_of: Callable[[int, int], Route], impairments: TransferImpairments,
                 transport: Transport,
                 flows_of: Callable[[int], list[tuple[Route, object]]] | None = None,
                 record_flows: bool = False,
                 ideal_route_of: Callable[[int, int], Route] | None = None) -> None:
        self.env = env
        self.network = network
        self.dag = dag = DagProgress(env, schedule, impairments, ideal_route_of or route_of, self._inject)
        self._src, self._dst, self._nbytes = dag.src, dag.dst, dag.nbytes
        self.flows_of = flows_of or (lambda tid: [(route_of(self._src[tid], self._dst[tid]), None)])
        self._gaps, self._timeouts = column(impairments.gap_losses), column(impairments.tail_timeouts)
        self._fails = column(impairments.failed)
        self.transport = transport
        self.done = dag.done
        self.causes = dag.causes
        self.flow_records: list[FlowRecord] | None = [] if record_flows else None
        self._deliveries: list[tuple[int, int, int]] = []  # flows in flight: (due time, order, transfer)
        self._delivery_order = 0
        self._delivery_timers: set[int] = set()  # times a delivery timer is pending for
        dag.start()

    @property
    def failed(self) -> bool:
        return self.dag.failed

    def ideal_ps(self) -> int:
        """The schedule's time alone on the intact fabric (``breakdown.ideal_makespan_ps``)."""
        return self.dag.ideal_ps()

    def critical_causes(self) -> Causes:
        """The time each cause added along the chain of transfers that ended the run."""
        return self.dag.critical_causes()

    def transfer_times(self) -> tuple[np.ndarray, np.ndarray]:
        """Per transfer: when it became ready and when it was delivered (``DagProgress.transfer_times``)."""
        return self.dag.transfer_times()

    # --- running ------------------------------------------------------------------------------

    def _inject(self, tid: int) -> None:
        flows = self.flows_of(tid)
        resent_bytes = 0
        if self._gaps[tid] or self._timeouts[tid]:
            resent_bytes = int(self._loss_costs(tid, flows[0][0])[0])
            self.causes.retransmit_ps[tid] = serialisation_ps(8.0 * resent_bytes, flows[0][0].bottleneck_bps)
        transfer_bytes = self._nbytes[tid]
        self.dag.entered(tid, len(flows))
        started: list[Flow] = []  # the flows, once start_all() has returned them
        specs = []
        for qp, (route, tag) in enumerate(flows):
            nbytes = transfer_bytes // len(flows) + (qp < transfer_bytes % len(flows))
            lossy = qp == 0
            nbits = 8.0 * (nbytes + (resent_bytes if lossy else 0))
            specs.append((route.links, nbits, partial(self._flow_sent, tid, qp, route, nbytes, lossy, started), tag))
        started.extend(self.network.start_all(specs))

    def _flow_sent(self, tid: int, qp: int, route: Route, nbytes: int, lossy: bool, started: list[Flow]) -> None:
        # a flow of no bits is sent before start_all() returns: it never stalled
        if started and (started[qp].stalled_ps or self.flow_records is not None):
            self._record_flow(tid, qp, nbytes, started[qp])
        if lossy:
            self._after_flow_sent(tid, route)
        else:
            self._deliver_after(route.latency_ps, tid)
        self.dag.flow_sent(tid)

    def _after_flow_sent(self, tid: int, route: Route) -> None:
        causes = self.causes
        if self._fails[tid]:
            causes.timeout_ps[tid] = timeout_ps = (self.transport.retry_count + 1) * self.transport.rto_ps
            self.env.timeout(timeout_ps).callbacks.append(lambda _event: self.dag.fail(tid))
            return
        wait_ps = route.latency_ps
        if self._gaps[tid] or self._timeouts[tid]:
            _, nack_ps, timeout_ps = self._loss_costs(tid, route)
            causes.retransmit_after_ps[tid], causes.timeout_ps[tid] = nack_ps, timeout_ps
            wait_ps += int(nack_ps + timeout_ps)
        self._deliver_after(wait_ps, tid)

    def _deliver_after(self, wait_ps: int, tid: int) -> None:
        """A flow of ``tid`` arrives ``wait_ps`` from now: it waits in the run's one heap of flows in
        flight, behind a timer set for the earliest (no event of its own)."""
        due_ps = self.env.now + wait_ps
        heapq.heappush(self._deliveries, (due_ps, self._delivery_order, tid))
        self._delivery_order += 1
        self._arm_delivery()

    def _arm_delivery(self) -> None:
        deliveries, timers = self._deliveries, self._delivery_timers
        if deliveries and (not timers or deliveries[0][0] < min(timers)):
            timers.add(deliveries[0][0])
            self.env.timeout(deliveries[0][0] - self.env.now).callbacks.append(self._deliver_due)

    def _deliver_due(self, _event) -> None:
        """A delivery timer: the flows due now arrive, in the order they were sent."""
        now, deliveries = self.env.now, self._deliveries
        self._delivery_timers.discard(now)
        while deliveries and deliveries[0][0] <= now:
            self.dag.flow_delivered(heapq.heappop(deliveries)[2])
        self._arm_delivery()

    def _loss_costs(self, tid: int, route: Route) -> tuple:
        """Resent bytes, NACK round trips and timeouts of the transfer's losses on its lossy flow's route."""
        return loss_costs(self._gaps[tid], self._timeouts[tid], route.latency_ps, self.transport)

    def _record_flow(self, tid: int, qp: int, nbytes: int, flow: Flow) -> None:
        """Note the longest stall of the transfer's flows (and, if asked, the flow itself)."""
        if flow.stalled_ps > self.causes.failure_ps[tid]:
            self.causes.failure_ps[tid] = flow.stalled_ps
        if self.flow_records is not None:
            self.flow_records.append(FlowRecord(tid, qp, self._src[tid], self._dst[tid], nbytes, flow.links,
                                                flow.start_ps, self.env.now, flow.stalled_ps))
