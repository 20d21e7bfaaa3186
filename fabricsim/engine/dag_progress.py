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
from typing import Callable, Iterator

import numpy as np

from fabricsim.collectives.schedule import Dependencies, Schedule
from fabricsim.engine.breakdown import TransferCauses, critical_path_causes, ideal_makespan_ps
from fabricsim.engine.impairments import TransferImpairments
from fabricsim.fabric.routing import Route
from fabricsim.records import Causes


FEW = 8  # batches of at most this many transfers are counted one by one


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
        self._scratch = self._last_parent = None  # per transfer, for the batch methods: made when first needed

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

    # --- the same, many transfers at one moment as arrays (engine.instant_loop) -----------------

    def roots(self) -> np.ndarray:
        """The transfers ready from the start."""
        return np.flatnonzero(self.schedule.transfers.is_root)

    def entered_together(self, flows: np.ndarray) -> None:
        """Every transfer entered the network, transfer ``t`` as ``flows[t]`` flows (``entered``)."""
        self._unsent[:] = column(flows)
        self._undelivered_flows[:] = column(flows)

    def sent_together(self, now_ps: int, tids: np.ndarray) -> np.ndarray:
        """A flow of each entry of ``tids`` put its last bit on the wire at ``now_ps`` (``flow_sent``);
        returns the transfers this made ready."""
        sent = self._counted_off(self._unsent, tids)
        return self._release_together(now_ps, sent, False, self._after_sending)

    def delivered_together(self, now_ps: int, tids: np.ndarray) -> np.ndarray:
        """A flow of each entry of ``tids`` arrived at ``now_ps`` (``flow_delivered``); returns the
        transfers this made ready. ``all_delivered`` tells when the last transfer is delivered."""
        delivered = self._counted_off(self._undelivered_flows, tids)
        if not delivered.size:
            return delivered
        self._undelivered -= len(delivered)
        np.frombuffer(self._delivered_at, dtype=np.int64)[delivered] = now_ps
        self._latest_delivery = max(self._latest_delivery, (now_ps, int(delivered.max())))
        if self._undelivered == 0:
            self._last = (self._latest_delivery[1], "delivered")
        return self._release_together(now_ps, delivered, True, self._after_delivery)

    @property
    def all_delivered(self) -> bool:
        return self._undelivered == 0

    def _counted_off(self, counts: array, tids: np.ndarray) -> np.ndarray:
        """Take one off ``counts[t]`` for each entry ``t`` of ``tids``; the transfers that reach 0
        (one by one for a few, where numpy's calls would cost more than the work)."""
        if len(tids) <= FEW:
            reached = []
            for tid in tids.tolist():
                counts[tid] -= 1
                if not counts[tid]:
                    reached.append(tid)
            return np.array(reached, dtype=np.int64)
        column_view = np.frombuffer(counts, dtype=np.int64)
        np.subtract.at(column_view, tids, 1)
        return self._distinct(tids[column_view[tids] == 0])

    def _distinct(self, tids: np.ndarray) -> np.ndarray:
        """``tids`` without repeats (each at its last place)."""
        if len(tids) < 2:
            return tids
        if self._scratch is None:
            self._scratch = np.zeros(len(self.nbytes), dtype=np.int64)
        places = np.arange(len(tids))
        self._scratch[tids] = places
        return tids[self._scratch[tids] == places]

    def _release_together(self, now_ps: int, parents: np.ndarray, delivered: bool, children: _Children) -> np.ndarray:
        """``_release`` of every transfer of ``parents`` at ``now_ps``: of the dependencies done at one
        moment, the one that released a child last is a delivery, then the highest id (the greatest
        key, whatever the order they are counted off in); returns the children now ready."""
        if len(parents) <= FEW:
            return np.array([child for tid in parents.tolist()
                             for child in self._released(now_ps, tid, delivered, children[tid])], dtype=np.int64)
        child, parent = children.of_all(parents)
        if not child.size:
            return child
        waiting, released_at = np.frombuffer(self._waiting, dtype=np.int64), np.frombuffer(self._released_at, dtype=np.int64)
        by_delivery = np.frombuffer(self._released_by_delivery, dtype=np.int64)
        released_by = np.frombuffer(self._released_by, dtype=np.int64)
        np.subtract.at(waiting, child, 1)
        if self._last_parent is None:
            self._last_parent = np.zeros(len(self.nbytes), dtype=np.int64)
        self._last_parent[child] = -1
        np.maximum.at(self._last_parent, child, parent)
        child = self._distinct(child)
        last_parent = self._last_parent[child]
        wins = (released_at[child] < now_ps) | (delivered > by_delivery[child]) | (
            (delivered == by_delivery[child]) & (last_parent > released_by[child]))
        won = child[wins]
        released_at[won], by_delivery[won], released_by[won] = now_ps, delivered, last_parent[wins]
        return child[waiting[child] == 0]

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

    def of_all(self, tids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The children of every transfer of ``tids``, and for each the transfer it is a child of."""
        starts, ids = np.frombuffer(self.starts, dtype=np.int64), np.frombuffer(self.ids, dtype=np.int64)
        first = starts[tids]
        counts = starts[tids + 1] - first
        total = int(counts.sum())
        if not total:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        positions = np.repeat(first - (np.cumsum(counts) - counts), counts) + np.arange(total)
        return ids[positions], np.repeat(tids, counts)
