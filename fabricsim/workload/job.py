"""The whole job's step: rank 0's calls made every group's, and lowered to one DAG over global GPU ranks.

Every group of a megatron job runs the same calls as rank 0's group of that kind, at the same time:
a call's groups are rank 0's group moved along the mesh by every shift that keeps it inside (all TP
groups, all DP groups, every pipeline pair between neighbouring stages): every stage runs stage 0's
calls in lock step. A pipeline's job instead gives each stage its own program (its first GPU's calls,
in 1F1B order: ``one_f_one_b``), its groups moved along TP and DP only; a send between two stages is
in both programs, lowered once when its sender reaches it (waiting on the sender's mark and stream
only), and the receiver's compute after it waits for it. ``lower_step`` joins the schedules of every
group of every call into one schedule (``StepSchedule``) whose ranks are GPUs, ids in a topological
order:

- each group's transfers keep their own dependencies, ranks mapped to the group's GPUs;
- each rank has a mark per call: a transfer of no bytes from the rank to itself, delayed by the
  compute before the call (a start delay that counts as ideal time). It waits on the rank's previous
  mark and, when the previous call blocks the rank (``Call.blocking``), on the rank's part of that
  call (its last transfers: those no later transfer of the rank's, in the same group, waits on);
- a transfer of a call waits, for each of its ranks, on the rank's mark for the call and on the
  rank's part of the previous call on the same stream (``Call.stream``: calls on one stream in
  order, streams concurrent), unless one of its dependencies inside the call already involves that
  rank;
- a call's ``waits`` split the compute before it: a mark more at each, which also waits on the
  rank's part of the named earlier call of its program (FSDP's prefetched all-gathers);
- a last mark per rank stands for the compute after the last call; the step ends when every
  transfer and mark is done.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Callable

import numpy as np

from fabricsim.collectives.schedule import Dependencies, Schedule, TransferTable
from fabricsim.workload.placement import Mesh
from fabricsim.workload.trial import Call, Trial


@lru_cache(maxsize=None)  # a step's calls share a few dozen groups
def job_groups(mesh: Mesh, group: tuple[int, ...], along_pp: bool = True) -> tuple[tuple[int, ...], ...]:
    """Every shift of ``group`` (global ranks of rank 0's call) along the mesh that keeps it inside,
    rank 0's own first; without ``along_pp``, only along TP and DP (the group's stages keep their own)."""
    coords = [(rank % mesh.tp, rank // mesh.tp % mesh.dp, rank // (mesh.tp * mesh.dp)) for rank in group]
    spans = [range(size - max(c[axis] for c in coords)) for axis, size in enumerate((mesh.tp, mesh.dp, mesh.pp))]
    if not along_pp:
        spans[2] = range(1)
    return tuple(tuple(mesh.rank(t + dt, d + dd, p + dp) for t, d, p in coords)
                 for dp, dd, dt in itertools.product(spans[2], spans[1], spans[0]))


def one_f_one_b(stages: int, stage: int, micro_batches: int) -> tuple[tuple[bool, int], ...]:
    """Megatron's non-interleaved 1F1B order on ``stage``: (forward?, micro-batch) per pass; stages - stage
    - 1 warm-up forwards, then one forward one backward, then the cool-down backwards."""
    warmup = min(stages - stage - 1, micro_batches)
    steady = [(forward, k + (warmup if forward else 0)) for k in range(micro_batches - warmup)
              for forward in (True, False)]
    return ((*((True, k) for k in range(warmup)), *steady,
             *((False, k) for k in range(micro_batches - warmup, micro_batches))))


def interleaved_one_f_one_b(stages: int, stage: int, micro_batches: int,
                            chunks: int) -> tuple[tuple[bool, int, int], ...]:
    """Megatron's interleaved 1F1B order on ``stage``, each holding ``chunks`` model chunks (virtual stages:
    chunk c of stage s is virtual stage c x stages + s): (forward?, micro-batch, chunk) per pass.
    Passes go in groups of ``stages`` micro-batches per chunk (forward: chunk 0 first; backward: the last
    first); (stages - stage - 1) x 2 + (chunks - 1) x stages warm-up forwards, then one forward one
    backward, then the cool-down backwards."""
    total = micro_batches * chunks
    warmup = min((stages - stage - 1) * 2 + (chunks - 1) * stages, total)

    def step(k: int, forward: bool) -> tuple[bool, int, int]:
        chunk = k % (stages * chunks) // stages
        return forward, k // (stages * chunks) * stages + k % stages, chunk if forward else chunks - 1 - chunk

    steady = [step(k + (warmup if forward else 0), forward) for k in range(total - warmup) for forward in (True, False)]
    return (*(step(k, True) for k in range(warmup)), *steady, *(step(k, False) for k in range(total - warmup, total)))


def programs_of(trial: Trial) -> tuple[tuple[tuple[Call, ...], int], ...]:
    """The trial's programs: one per pipeline stage, or rank 0's calls for every stage in lock step."""
    return trial.stages or ((trial.calls, trial.compute_after_ps),)


def step_calls(mesh: Mesh, trial: Trial) -> list[tuple[Call, tuple[tuple[int, ...], ...]]]:
    """Every call the trial's step lowers, each once (a send between stages in its sender's program),
    with its groups."""
    programs = programs_of(trial)
    if len(programs) == 1:
        return [(call, job_groups(mesh, call.group)) for call in trial.calls]
    return [(call, job_groups(mesh, call.group, along_pp=False)) for stage, (calls, _) in enumerate(programs)
            for call in calls if not _received(mesh, stage, call)]


def step_pairs(mesh: Mesh, trial: Trial, schedule_of: Callable[[Call], Schedule]) -> np.ndarray:
    """Every distinct (src, dst) pair of ranks, src != dst, that the trial's step joins: each call's
    schedule's pairs in every one of its groups, as ``lower_step`` places them; rows ascending. Cheap
    where lowering is not: each (schedule, groups) once, its distinct pairs only."""
    shapes: dict[tuple[int, tuple[tuple[int, ...], ...]], Schedule] = {}
    for call, groups in dict.fromkeys(step_calls(mesh, trial)):
        schedule = schedule_of(call)
        shapes.setdefault((id(schedule), groups), schedule)  # the value keeps the id's schedule alive
    keys = [np.zeros(0, dtype=np.int64)]
    for (_, groups), schedule in shapes.items():
        local, gpus = schedule.transfers.pairs[0], np.array(groups, dtype=np.int64)  # group x collective rank
        keys.append((gpus[:, local[:, 0]] * mesh.size + gpus[:, local[:, 1]]).ravel())
    keys = np.unique(np.concatenate(keys))
    pairs = np.stack([keys // mesh.size, keys % mesh.size], axis=1)
    return pairs[pairs[:, 0] != pairs[:, 1]]


def _received(mesh: Mesh, stage: int, call: Call) -> bool:
    """Whether ``call`` in ``stage``'s program is a send to it from another stage."""
    return call.stream == "pp" and call.group[0] // (mesh.tp * mesh.dp) != stage


@dataclass(frozen=True, eq=False)
class StepSchedule:
    """One step of the whole job as one schedule over GPU ranks. Per transfer: its call (index into
    ``calls``, every program's in the order lowered; -1 for a rank's marks, the transfers of no bytes
    from a rank to itself that stand for its compute) and its compute delay (ps). ``parts`` lists each
    group's transfers (call index, group, first transfer id) in id order."""

    schedule: Schedule
    call_of: np.ndarray
    compute_ps: np.ndarray
    parts: tuple[tuple[int, tuple[int, ...], int], ...]
    calls: tuple[Call, ...]

    @cached_property
    def marks(self) -> np.ndarray:
        marks = self.call_of < 0
        marks.flags.writeable = False  # shared by every trial of the step
        return marks

    @cached_property
    def part_starts(self) -> np.ndarray:
        """Each part's first transfer id (parts in id order, marks between)."""
        return np.array([start for _, _, start in self.parts], dtype=np.int64)

    @cached_property
    def parts_by_kind(self) -> dict[str, np.ndarray]:
        """Each kind of call (its stream and op), in the order first lowered: its parts (indices into ``parts``)."""
        by_kind: dict[str, list[int]] = {}
        for position, (index, _, _) in enumerate(self.parts):
            call = self.calls[index]
            by_kind.setdefault(f"{call.stream} {call.op}", []).append(position)
        return {kind: np.array(positions, dtype=np.int64) for kind, positions in by_kind.items()}


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

    def marks(self, compute_ps: int, ranks: np.ndarray, blocked_by: list[np.ndarray],
              previous: np.ndarray) -> np.ndarray:
        """One mark per rank of ``ranks``, delayed by the compute: it waits on ``blocked_by[r]`` and on the
        rank's ``previous`` mark (negative: none); their ids."""
        zeros = np.zeros(len(ranks), dtype=np.int64)
        first = self.add(ranks, ranks, zeros, zeros, zeros + 1, zeros.astype(bool), zeros - 1, zeros + compute_ps)
        ids = first + np.arange(len(ranks))
        self.wait(ids[:, None], blocked_by, None if previous[0] < 0 else previous)
        return ids


class _Lowering:
    """The state of ``lower_step``: per GPU rank its latest mark, what blocks its next one and its last
    transfers per stream; the calls and groups lowered so far."""

    def __init__(self, mesh: Mesh, schedule_of: Callable[[Call], Schedule],
                 programs: tuple[tuple[tuple[Call, ...], int], ...]) -> None:
        self.step, self.mesh, self.schedule_of = _Columns(), mesh, schedule_of
        # (program, position) of each call some compute waits for (``Call.waits``) -> its ranks' last transfers
        self.awaited: dict[tuple[int, int], dict[int, np.ndarray]] = dict.fromkeys(
            (program, position) for program, (calls, _) in enumerate(programs) for call in calls
            for _, position in call.waits)
        self.none = np.zeros(0, dtype=np.int64)
        self.mark_of = np.full(mesh.size, -1, dtype=np.int64)
        self.blocked_by = [self.none] * mesh.size
        self.on_stream: dict[tuple[str, int], np.ndarray] = {}  # (stream, GPU rank) -> its last transfers on it
        self.ends_of: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {}  # per schedule (calls share them)
        self.calls: list[Call] = []
        self.parts: list[tuple[int, tuple[int, ...], int]] = []

    def mark(self, compute_ps: int, ranks: np.ndarray, waits: tuple[tuple[int, int], ...] = (),
             program: int = 0) -> None:
        """The compute of ``ranks`` before their next call (or after their last); a mark more at each of
        ``waits`` (``Call.waits`` in ``program``), from which on it also waits for that call."""
        done_ps = 0
        for wait_ps, position in waits:
            self.mark(wait_ps - done_ps, ranks)
            ends = self.awaited[program, position]
            for rank in ranks.tolist():
                self.blocked_by[rank] = ends.get(rank, self.none)
            done_ps = wait_ps
        self.mark_of[ranks] = self.step.marks(compute_ps - done_ps, ranks, [self.blocked_by[r] for r in ranks.tolist()],
                                              self.mark_of[ranks])

    def call(self, call: Call, groups: tuple[tuple[int, ...], ...], own: np.ndarray,
             at: tuple[int, int] = (0, 0)) -> dict[int, np.ndarray]:
        """``call``'s transfers in every group; they wait on the marks and streams of the ranks in ``own``
        (a mask over GPU ranks), whose streams and blocking move on. Each rank's last transfers (kept
        when the call, at ``at`` = (program, position), is waited for later)."""
        step, index = self.step, len(self.calls)
        self.calls.append(call)
        schedule = self.schedule_of(call)
        table = schedule.transfers
        if id(schedule) not in self.ends_of:
            self.ends_of[id(schedule)] = _rank_ends(table, schedule.ranks)
        last, waits = self.ends_of[id(schedule)]
        gpus = np.array(groups, dtype=np.int64)  # group x collective rank
        first = step.add(gpus[:, table.src].ravel(), gpus[:, table.dst].ravel(),
                         *(np.tile(column, len(groups)) for column in (table.nbytes, table.piece, table.pieces,
                                                                       table.reduce)),
                         np.full(len(table) * len(groups), index), np.zeros(len(table) * len(groups), dtype=np.int64))
        firsts = first + len(table) * np.arange(len(groups))
        self.parts.extend((index, group, int(start)) for group, start in zip(groups, firsts))
        for name in step.edges:
            deps: Dependencies = getattr(table, name)
            step.edges[name].append(np.stack([(deps.owners() + firsts[:, None]).ravel(),
                                              (deps.ids + firsts[:, None]).ravel()]))
        for local_rank, tids in enumerate(waits):
            ranks = gpus[:, local_rank]
            if own[ranks[0]]:
                step.wait(tids + firsts[:, None], [self.on_stream.get((call.stream, rank), self.none)
                                                   for rank in ranks.tolist()], self.mark_of[ranks])
        finished: dict[int, list[np.ndarray]] = {}
        for local_rank, tids in enumerate(last):
            for rank, row in zip(gpus[:, local_rank].tolist(), tids + firsts[:, None]):
                finished.setdefault(rank, []).append(row)
        done = {rank: rows[0] if len(rows) == 1 else np.concatenate(rows) for rank, rows in finished.items()}
        self.on_stream.update({(call.stream, rank): tids for rank, tids in done.items() if own[rank]})
        for rank in np.flatnonzero(own).tolist():
            self.blocked_by[rank] = done.get(rank, self.none) if call.blocking else self.none
        if at in self.awaited:
            self.awaited[at] = done
        return done


def lower_step(programs: tuple[tuple[tuple[Call, ...], int], ...], mesh: Mesh,
               schedule_of: Callable[[Call], Schedule]) -> StepSchedule:
    """The step of ``programs`` (``programs_of``): one (calls, compute after the last) run by every stage
    in lock step, or one per pipeline stage (see the module doc)."""
    lowering = _Lowering(mesh, schedule_of, programs)
    if len(programs) == 1:
        (calls, compute_after_ps), = programs
        everyone = np.ones(mesh.size, dtype=bool)
        for position, call in enumerate(calls):
            lowering.mark(call.compute_before_ps, np.arange(mesh.size), call.waits)
            lowering.call(call, job_groups(mesh, call.group), everyone, (0, position))
        lowering.mark(compute_after_ps, np.arange(mesh.size))
    else:
        _lower_stages(lowering, programs)
    step = lowering.step
    src, dst, nbytes, piece, pieces, reduce, call_of, compute = (np.concatenate(column) for column in step.columns)
    transfers = TransferTable(src, dst, nbytes, piece, pieces, reduce,
                              *(_dependencies(step.edges[name], step.count) for name in ("after", "after_sent")))
    schedule = Schedule("step", "step", mesh.size, int(nbytes.sum()), transfers)
    return StepSchedule(schedule, call_of, compute, tuple(lowering.parts), tuple(lowering.calls))


def _lower_stages(lowering: _Lowering, programs: tuple[tuple[tuple[Call, ...], int], ...]) -> None:
    """Each stage's program on the stage's GPUs. A call between two stages is lowered when its sender
    reaches it; the receiver, on reaching it, waits for it (a stage stalls until then)."""
    mesh = lowering.mesh
    stage_of = np.arange(mesh.size) // (mesh.tp * mesh.dp)
    sent: dict[tuple[tuple[int, ...], int], dict[int, np.ndarray]] = {}  # (pair, occurrence) -> ranks' ends
    seen: Counter = Counter()  # (stage, pair) -> occurrences reached
    positions = [0] * len(programs)
    while any(position <= len(calls) for position, (calls, _) in zip(positions, programs)):
        moved = False
        for stage, (calls, compute_after_ps) in enumerate(programs):
            own = stage_of == stage
            ranks = np.flatnonzero(own)
            while positions[stage] <= len(calls):
                if positions[stage] == len(calls):
                    lowering.mark(compute_after_ps, ranks)
                elif _received(mesh, stage, call := calls[positions[stage]]):
                    key = (call.group, seen[stage, call.group])
                    if key not in sent:
                        break
                    seen[stage, call.group] += 1
                    ends = sent.pop(key)
                    lowering.mark(call.compute_before_ps, ranks, call.waits, stage)
                    for rank in ranks.tolist():
                        lowering.blocked_by[rank] = ends.get(rank, lowering.none) if call.blocking else lowering.none
                else:
                    lowering.mark(call.compute_before_ps, ranks, call.waits, stage)
                    done = lowering.call(call, job_groups(mesh, call.group, along_pp=False), own,
                                         (stage, positions[stage]))
                    if call.stream == "pp":
                        sent[call.group, seen[stage, call.group]] = done
                        seen[stage, call.group] += 1
                positions[stage] += 1
                moved = True
        if not moved:
            raise ValueError("the pipeline stages' programs wait on each other")


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
    shift = max(transfers, 1).bit_length()  # an (owner, id) pair as one key, ordered as the pair
    keys = np.sort((owners << shift) | ids, kind="stable")  # nearly sorted already: timsort runs
    first_of_kind = np.ones(len(keys), dtype=bool)
    first_of_kind[1:] = keys[1:] != keys[:-1]
    keys = keys[first_of_kind]
    owners, ids = keys >> shift, keys & ((1 << shift) - 1)
    return Dependencies(np.concatenate(([0], np.cumsum(np.bincount(owners, minlength=transfers)))), ids)
