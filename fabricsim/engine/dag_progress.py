"""DAG progress: what is ready, what released it, why it was late; one component both network models drive.

A transfer becomes ready when every transfer in its ``after`` has been delivered and every one in
its ``after_sent`` has put its last bit on the wire; it then waits its start delay (jitter, launch
skew, software latency) and is handed to the model's ``enter(tid)``. The model says how many flows
(or queue pairs) carry it (``entered``) and, as they happen, when each is sent (``flow_sent``) or
delivered (``flow_delivered``), or that the transfer failed (``fail``). ``done`` fires when every
transfer is delivered or one fails.

It keeps what the breakdown needs (fabricsim/engine/breakdown.py): for each transfer, which dependency
released it last (of dependencies done at one moment: a delivery, then the highest id, as
``schedule_times.released_by``) and the time its own causes added (``causes``, filled by the model
but for the jitter), and the schedule's ideal time alone on the intact fabric.
"""

from __future__ import annotations

from array import array
from typing import Callable

import numpy as np

from fabricsim.collectives.schedule import Dependencies, Schedule
from fabricsim.engine.breakdown import TransferCauses, critical_path_causes, ideal_makespan_ps
from fabricsim.engine.impairments import TransferImpairments
from fabricsim.fabric.routing import Route
from fabricsim.records import Causes


class DagProgress:
    """One schedule's DAG progress from ``env.now`` on ``env`` (SimPy's or the packet loop's)."""

    def __init__(self, env, schedule: Schedule, impairments: TransferImpairments,
                 ideal_route_of: Callable[[int, int], Route], enter: Callable[[int], None]) -> None:
        self.env = env
        self.schedule = schedule
        self.ideal_route_of = ideal_route_of  # rate: all of a transfer's flows together
        self.enter = enter
        transfers = schedule.transfers
        self.src, self.dst, self.nbytes = column(transfers.src), column(transfers.dst), column(transfers.nbytes)
        self._delay_ps = column(impairments.delay_ps())
        self.fixed_delay_ps = impairments.fixed_ps()  # counts in the ideal time
        self.done = env.event()
        self.failed = False
        self._waiting = column(transfers.after.counts() + transfers.after_sent.counts())
        self._after_delivery = _Children(transfers.after)
        self._after_sending = _Children(transfers.after_sent)
        # per transfer: the dependency that released it last (time, by delivery, parent; time -1:
        # none yet), flows not yet sent / delivered, and the time its own causes added before it
        # was sent and after
        self._released_at = column(np.full(len(transfers), -1))
        self._released_by_delivery = column(np.zeros(len(transfers)))
        self._released_by = column(np.full(len(transfers), -1))
        self._unsent = column(np.zeros(len(transfers)))
        self._undelivered_flows = column(np.zeros(len(transfers)))
        self._start_ps, self._delivered_at = int(env.now), column(np.full(len(transfers), -1))
        self.causes = TransferCauses.zeros(len(transfers))
        self.causes.jitter_ps[:] = impairments.start_delay_ps
        self._last = (-1, "delivered")
        self._latest_delivery = (-1, -1)  # (time, transfer): of transfers delivered at one time, the highest id
        self._undelivered = len(transfers)

    def start(self) -> None:
        """Ready the roots (call once the model can take transfers)."""
        if not self._undelivered:
            self.done.succeed()
        for tid in np.flatnonzero(self.schedule.transfers.is_root).tolist():
            self._ready(tid)

    # --- what the model reports -----------------------------------------------------------------

    def entered(self, tid: int, flows: int) -> None:
        """``tid`` entered the network as ``flows`` flows (queue pairs)."""
        self._unsent[tid] = self._undelivered_flows[tid] = flows

    def flow_sent(self, tid: int) -> None:
        """A flow of ``tid`` put its last bit on the wire."""
        self._unsent[tid] -= 1
        if self._unsent[tid] == 0:
            self._release(tid, "sent", self._after_sending[tid])

    def flow_delivered(self, tid: int) -> None:
        """A flow of ``tid`` arrived; with its last, the transfer is delivered."""
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

    def fail(self, tid: int) -> None:
        """``tid`` failed: the schedule ends now, failed."""
        if not self.done.triggered:
            self.failed = True
            self._last = (tid, "failed")
            self.done.succeed()

    # --- readiness ------------------------------------------------------------------------------

    def _ready(self, tid: int) -> None:
        delay_ps = self._delay_ps[tid]
        if delay_ps:
            self.env.timeout(delay_ps).callbacks.append(lambda _event: self.enter(tid))
        else:
            self.enter(tid)

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


def column(values: np.ndarray) -> array:
    """Per-transfer integers as an ``array``: the garbage collector never walks it, as it would walk
    a list of millions of ints at every full collection (most of a 1024-rank ring's run time)."""
    result = array("q")
    result.frombytes(np.ascontiguousarray(values, dtype=np.int64).tobytes())
    return result


class _Children:
    """``children[tid]``: the transfers that name ``tid`` in ``dependencies``, from two flat columns."""

    __slots__ = ("ids", "starts")

    def __init__(self, dependencies: Dependencies) -> None:
        dependents = dependencies.dependents()
        self.ids, self.starts = column(dependents.ids), column(dependents.starts)

    def __getitem__(self, tid: int) -> array:
        return self.ids[self.starts[tid]:self.starts[tid + 1]]
