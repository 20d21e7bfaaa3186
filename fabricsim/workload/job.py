"""The whole job's step: rank 0's calls made every group's, and lowered to one DAG over global GPU ranks.

Every group of a megatron job runs the same calls as rank 0's group of that kind, at the same time:
a call's groups are rank 0's group moved along the mesh by every shift that keeps it inside (all TP
groups, all DP groups, every pipeline pair between neighbouring stages). Every stage thus runs stage
0's calls: a stage's sends to the next and receives from the one before are one call, so stages
compute in lock step, without the pipeline's fill and drain. ``lower_step`` joins the
schedules of every group of every call into one schedule (``StepSchedule``) whose ranks are GPUs:

- each group's transfers keep their own dependencies, ranks mapped to the group's GPUs;
- each rank has a mark per call: a transfer of no bytes from the rank to itself, delayed by the
  compute before the call (a start delay that counts as ideal time). It waits on the rank's previous
  mark and, when the previous call blocks the rank (``Call.blocking``), on the rank's part of that
  call (its last transfers: those no later transfer of the rank's, in the same group, waits on);
- a transfer of a call waits, for each of its ranks, on the rank's mark for the call and on the
  rank's part of the previous call on the same stream (``Call.stream``: calls on one stream in
  order, streams concurrent), unless one of its dependencies inside the call already involves that
  rank;
- a last mark per rank stands for the compute after the last call; the step ends when every
  transfer and mark is done.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable

import numpy as np

from fabricsim.schedule import Dependencies, Schedule, TransferTable
from fabricsim.workload.placement import Mesh
from fabricsim.workload.trial import Call


def job_groups(mesh: Mesh, group: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    """Every shift of ``group`` (global ranks of rank 0's call) along the mesh that keeps it inside,
    rank 0's own first."""
    coords = [(rank % mesh.tp, rank // mesh.tp % mesh.dp, rank // (mesh.tp * mesh.dp)) for rank in group]
    spans = [range(size - max(c[axis] for c in coords)) for axis, size in enumerate((mesh.tp, mesh.dp, mesh.pp))]
    return tuple(tuple(mesh.rank(t + dt, d + dd, p + dp) for t, d, p in coords)
                 for dp, dd, dt in itertools.product(spans[2], spans[1], spans[0]))


@dataclass(frozen=True, eq=False)
class StepSchedule:
    """One step of the whole job as one schedule over GPU ranks. Per transfer: its call (index into the
    trial's calls; -1 for a rank's marks, the transfers of no bytes from a rank to itself that stand for
    its compute) and its compute delay (ps). ``parts`` lists each group's transfers (call index, group,
    first transfer id) in id order."""

    schedule: Schedule
    call_of: np.ndarray
    compute_ps: np.ndarray
    parts: tuple[tuple[int, tuple[int, ...], int], ...]

    @property
    def marks(self) -> np.ndarray:
        return self.call_of < 0


class _Columns:
    """The step's transfers as they are added: columns, and dependencies as (owner, id) pairs."""

    def __init__(self) -> None:
        self.columns: list[list[np.ndarray]] = [[] for _ in range(8)]  # src dst nbytes piece pieces reduce call compute
        self.edges: dict[str, list[np.ndarray]] = {"after": [], "after_sent": []}
        self.count = 0

    def add(self, src, dst, nbytes, piece, pieces, reduce, call, compute) -> int:
        """Append transfers (equal-length columns); the id of the first."""
        first = self.count
        for out, column in zip(self.columns, (src, dst, nbytes, piece, pieces, reduce, call, compute)):
            out.append(np.asarray(column))
        self.count += len(src)
        return first

    def wait(self, owners: np.ndarray, ids: list[np.ndarray], also: np.ndarray | None = None) -> None:
        """Each of ``owners[r]`` (a row per r) waits on every one of ``ids[r]``, and on ``also[r]`` if given."""
        if len({len(row) for row in ids}) > 1:  # rows of several lengths (a rank in two pipeline pairs)
            for r, row_ids in enumerate(ids):
                self.wait(owners[r:r + 1], [row_ids], None if also is None else also[r:r + 1])
            return
        waited = np.array(ids, dtype=np.int64).reshape(len(ids), -1)
        if also is not None:
            waited = np.concatenate([waited, also[:, None]], axis=1)
        if waited.size:
            self.edges["after"].append(np.stack([np.repeat(owners, waited.shape[1], axis=1).ravel(),
                                                 np.tile(waited, (1, owners.shape[1])).ravel()]))

    def marks(self, compute_ps: int, blocked_by: list[np.ndarray], previous: int | None) -> int:
        """One mark per rank (ids first..first + ranks - 1), delayed by the compute: it waits on
        ``blocked_by[rank]`` and on the rank's ``previous`` mark (the first of them; None: none)."""
        ranks = len(blocked_by)
        gpus = np.arange(ranks)
        zeros = np.zeros(ranks, dtype=np.int64)
        first = self.add(gpus, gpus, zeros, zeros, zeros + 1, zeros.astype(bool), zeros - 1, zeros + compute_ps)
        self.wait((first + gpus)[:, None], blocked_by, None if previous is None else previous + gpus)
        return first


def lower_step(calls: tuple[Call, ...], compute_after_ps: int, mesh: Mesh,
               schedule_of: Callable[[Call], Schedule]) -> StepSchedule:
    """The step of ``calls`` (rank 0's, in order) run by every group of the job (see the module doc)."""
    step = _Columns()
    parts = []
    none = np.zeros(0, dtype=np.int64)
    on_stream: dict[tuple[str, int], np.ndarray] = {}  # (stream, GPU rank) -> its last transfers on it
    mark = None  # the first of the ranks' latest marks
    blocked_by = [none] * mesh.size  # per rank: the last transfers of its previous call, when it blocks
    ends_of: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {}  # per schedule (calls share them)
    for index, call in enumerate(calls):
        mark = step.marks(call.compute_before_ps, blocked_by, mark)
        schedule = schedule_of(call)
        table = schedule.transfers
        if id(schedule) not in ends_of:
            ends_of[id(schedule)] = _rank_ends(table, schedule.ranks)
        last, waits = ends_of[id(schedule)]
        groups = job_groups(mesh, call.group)
        gpus = np.array(groups, dtype=np.int64)  # group x collective rank
        first = step.add(gpus[:, table.src].ravel(), gpus[:, table.dst].ravel(),
                         *(np.tile(column, len(groups)) for column in (table.nbytes, table.piece, table.pieces,
                                                                       table.reduce)),
                         np.full(len(table) * len(groups), index), np.zeros(len(table) * len(groups), dtype=np.int64))
        firsts = first + len(table) * np.arange(len(groups))
        parts.extend((index, group, int(start)) for group, start in zip(groups, firsts))
        for name in step.edges:
            deps: Dependencies = getattr(table, name)
            step.edges[name].append(np.stack([(deps.owners() + firsts[:, None]).ravel(),
                                              (deps.ids + firsts[:, None]).ravel()]))
        for local_rank, tids in enumerate(waits):
            ranks = gpus[:, local_rank]
            step.wait(tids + firsts[:, None], [on_stream.get((call.stream, rank), none) for rank in ranks.tolist()],
                      mark + ranks)
        finished: dict[int, list[np.ndarray]] = {}
        for local_rank, tids in enumerate(last):
            for rank, row in zip(gpus[:, local_rank].tolist(), tids + firsts[:, None]):
                finished.setdefault(rank, []).append(row)
        done = {rank: rows[0] if len(rows) == 1 else np.concatenate(rows) for rank, rows in finished.items()}
        on_stream.update({(call.stream, rank): tids for rank, tids in done.items()})
        blocked_by = [done.get(rank, none) if call.blocking else none for rank in range(mesh.size)]
    # the compute after the last call; the step ends when every rank's marks and calls are done
    step.marks(compute_after_ps, blocked_by, mark)
    src, dst, nbytes, piece, pieces, reduce, call_of, compute = (np.concatenate(column) for column in step.columns)
    transfers = TransferTable(src, dst, nbytes, piece, pieces, reduce,
                              *(_dependencies(step.edges[name], step.count) for name in ("after", "after_sent")))
    schedule = Schedule("step", "step", mesh.size, int(nbytes.sum()), transfers)
    return StepSchedule(schedule, call_of, compute, tuple(parts))


def _rank_ends(table: TransferTable, ranks: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per rank of a call: its last transfers (no transfer of the rank waits on their delivery), and the
    transfers of the rank none of whose dependencies involves the rank (those that wait on the rank's
    mark and its previous call on the stream)."""
    owners, parents = table.after.owners(), table.after.ids
    later_src = np.zeros(len(table), dtype=bool)
    later_dst = np.zeros(len(table), dtype=bool)
    for owner_end in (table.src[owners], table.dst[owners]):  # a later transfer of the same rank
        later_src[parents[owner_end == table.src[parents]]] = True
        later_dst[parents[owner_end == table.dst[parents]]] = True
    needs_src = np.ones(len(table), dtype=bool)
    needs_dst = np.ones(len(table), dtype=bool)
    for deps in (table.after, table.after_sent):
        owners, parents = deps.owners(), deps.ids
        for parent_end in (table.src[parents], table.dst[parents]):
            needs_src[owners[parent_end == table.src[owners]]] = False
            needs_dst[owners[parent_end == table.dst[owners]]] = False
    last = [np.flatnonzero(((table.src == rank) & ~later_src) | ((table.dst == rank) & ~later_dst))
            for rank in range(ranks)]
    waits = [np.flatnonzero(((table.src == rank) & needs_src) | ((table.dst == rank) & needs_dst))
             for rank in range(ranks)]
    return last, waits


def _dependencies(pairs: list[np.ndarray], transfers: int) -> Dependencies:
    """Compressed rows from (owner, id) pairs: each row ascending, without repeats."""
    owners, ids = np.concatenate(pairs, axis=1) if pairs else np.zeros((2, 0), dtype=np.int64)
    keys = np.sort(owners * max(transfers, 1) + ids)
    first_of_kind = np.ones(len(keys), dtype=bool)
    first_of_kind[1:] = keys[1:] != keys[:-1]
    keys = keys[first_of_kind]
    owners, ids = keys // max(transfers, 1), keys % max(transfers, 1)
    return Dependencies(np.concatenate(([0], np.cumsum(np.bincount(owners, minlength=transfers)))), ids)
