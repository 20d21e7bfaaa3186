"""The whole job's step: rank 0's calls made every group's, and lowered to one DAG over global GPU ranks.

Every group of a megatron job runs the same calls as rank 0's group of that kind, at the same time:
a call's groups are rank 0's group moved along the mesh by every shift that keeps it inside (all TP
groups, all DP groups, every pipeline pair between neighbouring stages). ``lower_step`` joins the
schedules of every group of every call into one schedule (``StepSchedule``) whose ranks are GPUs:

- each group's transfers keep their own dependencies, ranks mapped to the group's GPUs;
- a rank runs its calls in order, one at a time (one stream; no overlap of calls yet): a transfer of
  call k+1 waits until both its ranks have finished their part of the calls before (their last
  transfers: those of the rank no later transfer of the rank's, in the same group, waits on), unless
  one of its dependencies inside the call already involves that rank;
- the compute before call k+1 delays the transfers that open it (those waiting on nothing inside
  their group): a start delay that counts as ideal time.
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
    """One step of the whole job as one schedule over GPU ranks; per transfer its call (index into the
    trial's calls) and its compute delay (ps); ``parts`` lists each group's transfers
    (call index, group, first transfer id) in id order."""

    schedule: Schedule
    call_of: np.ndarray
    compute_ps: np.ndarray
    parts: tuple[tuple[int, tuple[int, ...], int], ...]


def lower_step(calls: tuple[Call, ...], mesh: Mesh, schedule_of: Callable[[Call], Schedule]) -> StepSchedule:
    """The step of ``calls`` (rank 0's, in order) run by every group of the job (see the module doc)."""
    srcs, dsts, nbytes, pieces, piece_counts, reduces, call_of, compute = [], [], [], [], [], [], [], []
    edges: dict[str, list[np.ndarray]] = {"after": [], "after_sent": []}  # (owner, id) pairs
    parts = []
    last_of: dict[int, np.ndarray] = {}  # GPU rank -> its last transfers so far (global ids)
    count = 0
    for index, call in enumerate(calls):
        schedule = schedule_of(call)
        table = schedule.transfers
        last, needs_src, needs_dst = _rank_ends(table, schedule.ranks)
        finished: dict[int, list[np.ndarray]] = {}
        for group in job_groups(mesh, call.group):
            gpus = np.asarray(group, dtype=np.int64)
            parts.append((index, group, count))
            srcs.append(gpus[table.src])
            dsts.append(gpus[table.dst])
            for column, out in ((table.nbytes, nbytes), (table.piece, pieces), (table.pieces, piece_counts),
                                (table.reduce, reduces)):
                out.append(column)
            call_of.append(np.full(len(table), index, dtype=np.int64))
            compute.append(np.where(table.is_root, call.compute_before_ps, 0).astype(np.int64))
            for name in edges:
                deps: Dependencies = getattr(table, name)
                edges[name].append(np.stack([deps.owners() + count, deps.ids + count]))
            for needs, ends in ((needs_src, table.src), (needs_dst, table.dst)):
                for tid in np.flatnonzero(needs).tolist():
                    before = last_of.get(group[int(ends[tid])])
                    if before is not None:
                        edges["after"].append(np.stack([np.full(len(before), tid + count), before]))
            for rank, tids in enumerate(last):
                finished.setdefault(group[rank], []).append(tids + count)
            count += len(table)
        last_of.update({rank: np.concatenate(tids) for rank, tids in finished.items()})
    transfers = TransferTable(*(np.concatenate(column) if column else np.zeros(0, dtype=dtype) for column, dtype in (
        (srcs, np.int64), (dsts, np.int64), (nbytes, np.int64), (pieces, np.int64), (piece_counts, np.int64),
        (reduces, bool))), *(_dependencies(edges[name], count) for name in ("after", "after_sent")))
    step = Schedule("step", "step", int(max(mesh.size, 2)), int(transfers.nbytes.sum()), transfers)
    return StepSchedule(step, np.concatenate(call_of), np.concatenate(compute), tuple(parts))


def _rank_ends(table: TransferTable, ranks: int) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Per rank of a call, its last transfers (no transfer of the rank waits on their delivery); per
    transfer, whether its sender, and its receiver, is in none of the transfers it waits on."""
    owners, parents = table.after.owners(), table.after.ids
    later_src = np.zeros(len(table), dtype=bool)
    later_dst = np.zeros(len(table), dtype=bool)
    for owner_end in (table.src[owners], table.dst[owners]):  # a later transfer of the same rank
        later_src[parents[owner_end == table.src[parents]]] = True
        later_dst[parents[owner_end == table.dst[parents]]] = True
    last = [np.flatnonzero(((table.src == rank) & ~later_src) | ((table.dst == rank) & ~later_dst))
            for rank in range(ranks)]
    needs_src = np.ones(len(table), dtype=bool)
    needs_dst = np.ones(len(table), dtype=bool)
    for deps in (table.after, table.after_sent):
        owners, parents = deps.owners(), deps.ids
        for parent_end in (table.src[parents], table.dst[parents]):
            needs_src[owners[parent_end == table.src[owners]]] = False
            needs_dst[owners[parent_end == table.dst[owners]]] = False
    return last, needs_src, needs_dst


def _dependencies(pairs: list[np.ndarray], transfers: int) -> Dependencies:
    """Compressed rows from (owner, id) pairs: each row ascending, without repeats."""
    owners, ids = np.concatenate(pairs, axis=1) if pairs else np.zeros((2, 0), dtype=np.int64)
    keys = np.unique(owners * max(transfers, 1) + ids)
    owners, ids = keys // max(transfers, 1), keys % max(transfers, 1)
    return Dependencies(np.concatenate(([0], np.cumsum(np.bincount(owners, minlength=transfers)))), ids)
