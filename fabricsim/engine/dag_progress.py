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
from typing import Callable, Iterator, NamedTuple

import numpy as np

from fabricsim.collectives.schedule import Dependencies, Schedule
from fabricsim.engine.breakdown import TransferCauses, critical_path_causes, ideal_makespan_ps
from fabricsim.engine.impairments import TransferImpairments
from fabricsim.fabric.routing import Route
from fabricsim.records import Causes


class Children(NamedTuple):
    """Each transfer's children: ``ids[starts[t]:starts[t + 1]]``."""

    ids: np.ndarray
    starts: np.ndarray


class DagColumns(NamedTuple):
    """A DAG progress's per-transfer columns as arrays (``DagProgress.columns``)."""

    delay_ps: np.ndarray  # the start delay once ready
    waiting: np.ndarray  # dependencies not yet done
    sent_children: Children  # released when the transfer's last bit is sent
    delivered_children: Children  # released when it is delivered
    unsent: np.ndarray  # flows not yet sent
    undelivered_flows: np.ndarray
    released_at: np.ndarray  # the release: when (-1: not yet), by a delivery (1) or a send (0), by whom
    released_by_delivery: np.ndarray
    released_by: np.ndarray
    delivered_at: np.ndarray  # -1: not yet


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
        for tid in self.roots().tolist():
            self._ready(tid)

    # --- what the model reports -----------------------------------------------------------------

    def entered(self, tid: int, flows: int) -> None:
        """``tid`` entered the network as ``flows`` flows (queue pairs)."""
        self._unsent[tid] = self._undelivered_flows[tid] = flows

    def flow_sent(self, tid: int) -> None:
        """A flow of ``tid`` put its last bit on the wire."""
        unsent = self._unsent
        unsent[tid] -= 1
        if not unsent[tid]:
            self._release(tid, False, self._after_sending[tid])

    def flow_delivered(self, tid: int) -> None:
        """A flow of ``tid`` arrived; with its last, the transfer is delivered."""
        undelivered_flows = self._undelivered_flows
        undelivered_flows[tid] -= 1
        if undelivered_flows[tid] or self.done.triggered:
            return
        now = self.env.now
        self._undelivered -= 1
        self._delivered_at[tid] = now
        if (now, tid) > self._latest_delivery:
            self._latest_delivery = (now, tid)
        self._release(tid, True, self._after_delivery[tid])
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

    def _release(self, tid: int, delivered: bool, children: array) -> None:
        if children:
            delay_ps, enter = self._delay_ps, self.enter
            for child in self._released(self.env.now, tid, delivered, children):
                if delay_ps[child]:
                    self._ready(child)
                else:
                    enter(child)

    def _released(self, now: int, tid: int, delivered: bool, children: array) -> Iterator[int]:
        """Count the dependency off each child; note which released it last (of dependencies done at
        one moment: a delivery, then the highest id, as ``schedule_times.released_by``); yield each
        child as it becomes ready."""
        released_at, by_delivery, released_by = self._released_at, self._released_by_delivery, self._released_by
        for child in children:  # time never goes back: a later release wins; at one time, the greater key
            if now > released_at[child] or (delivered, tid) > (by_delivery[child], released_by[child]):
                released_at[child], by_delivery[child], released_by[child] = now, delivered, tid
            self._waiting[child] -= 1
            if self._waiting[child] == 0:
                yield child

    # --- the same, for a loop over arrays (engine.instant_loop) ----------------------------------

    def roots(self) -> np.ndarray:
        """The transfers ready from the start."""
        return np.flatnonzero(self.schedule.transfers.is_root)

    def entered_together(self, flows: np.ndarray) -> None:
        """Every transfer entered the network, transfer ``t`` as ``flows[t]`` flows (``entered``)."""
        self._unsent[:] = column(flows)
        self._undelivered_flows[:] = column(flows)

    def columns(self) -> DagColumns:
        """The progress as int64 arrays over this object's own columns, for a loop that keeps them
        by the rules above in place of ``flow_sent`` and ``flow_delivered``."""
        view = lambda values: np.frombuffer(values, dtype=np.int64)  # noqa: E731
        return DagColumns(view(self._delay_ps), view(self._waiting), self._after_sending.arrays(), self._after_delivery.arrays(),
                          view(self._unsent), view(self._undelivered_flows), view(self._released_at),
                          view(self._released_by_delivery), view(self._released_by), view(self._delivered_at))

    def all_delivered_by(self, latest_ps: int, latest_tid: int) -> None:
        """Such a loop delivered every transfer, the last (of those at the latest time, the highest id)
        ``latest_tid`` at ``latest_ps``."""
        self._undelivered = 0
        self._latest_delivery = (latest_ps, latest_tid)
        self._last = (latest_tid, "delivered")

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
    result.frombytes(memoryview(np.ascontiguousarray(values, dtype=np.int64)).cast("B"))  # one copy, not two
    return result


class _Children:
    """``children[tid]``: the transfers that name ``tid`` in ``dependencies``, from two flat columns."""

    __slots__ = ("ids", "starts")

    def __init__(self, dependencies: Dependencies) -> None:
        dependents = dependencies.dependents
        self.ids, self.starts = column(dependents.ids), column(dependents.starts)

    def __getitem__(self, tid: int) -> array:
        return self.ids[self.starts[tid]:self.starts[tid + 1]]

    def arrays(self) -> Children:
        """Both columns as int64 arrays (views, not copies)."""
        return Children(np.frombuffer(self.ids, dtype=np.int64), np.frombuffer(self.starts, dtype=np.int64))
