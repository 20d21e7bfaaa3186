"""The critical path of a whole job's step, and the compute it cannot hide.

A run gives each transfer of the step (``fabricsim.workload.job``) its ready and delivery times. The
critical path is walked back from the last delivery (of several at one time, the highest id), each
transfer to the dependency that made it ready: of its ``after`` ones delivered at its ready time, the
highest id; failing that (a transfer released by a dependency's last bit on the wire, whose time is
not kept), the highest-id ``after_sent`` one delivered no earlier. Along it, each transfer adds the
time from the previous one's delivery to its own, so the times add up to the step; a mark's time is
compute, a transfer's belongs to its group's call. The compute on the path, its time per kind of
call, the group with the most time on it (and that group's longest call) and the most loaded link it
took say what to act on.

The step's compute alone (every transfer taking no time) has a longest path too: its compute critical
path. Less the busiest GPU's own compute, it is the pipeline bubble (with p stages of equal compute and
m micro-batches in 1F1B order, (p - 1) / (m + p - 1) of it; interleaved over v chunks per stage,
(p - 1) / (v m + p - 1)); the step less it is the communication compute did not hide."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from fabricsim.collectives.schedule_times import dag_times
from fabricsim.records import CriticalPath
from fabricsim.workload.job import StepSchedule
from fabricsim.workload.placement import Mesh
from fabricsim.workload.trial import Call


@dataclass(frozen=True, slots=True)
class StepCompute:
    """A step's compute: its longest path with communication taking no time, and the busiest GPU's."""

    critical_ps: int
    busiest_ps: int

    @property
    def bubble_ps(self) -> int:
        return self.critical_ps - self.busiest_ps


def step_compute(step: StepSchedule) -> StepCompute:
    """The step's compute critical path (its marks' longest path) and the busiest GPU's compute."""
    table, marks = step.schedule.transfers, step.marks
    delivered_ps = dag_times(table, 0, step.compute_ps, np.zeros(len(table), dtype=np.int64))[len(table):]
    per_gpu_ps = np.zeros(step.schedule.ranks, dtype=np.int64)
    np.add.at(per_gpu_ps, table.src[marks], step.compute_ps[marks])
    return StepCompute(int(delivered_ps.max(initial=0)), int(per_gpu_ps.max(initial=0)))


@dataclass(frozen=True, slots=True)
class PathSpan:
    """The critical path of one run of a step: its transfers (from the first to the last), the time it
    spent in compute, and the groups' calls on it (indices into ``step.parts``, ascending) with the time
    each spent on it."""

    chain: np.ndarray
    compute_ps: int
    parts: np.ndarray
    parts_ps: np.ndarray


def released_by(step: StepSchedule, ready_ps: np.ndarray, delivered_ps: np.ndarray) -> np.ndarray:
    """Per transfer, the dependency that made it ready (-1: none; see the module doc)."""
    table = step.schedule.transfers
    by = np.full(len(table), -1, dtype=np.int64)
    owners, ids = table.after.owners(), table.after.ids
    on_time = delivered_ps[ids] == ready_ps[owners]
    np.maximum.at(by, owners[on_time], ids[on_time])
    owners, ids = table.after_sent.owners(), table.after_sent.ids
    late = (by[owners] < 0) & (delivered_ps[ids] >= ready_ps[owners])
    np.maximum.at(by, owners[late], ids[late])
    return by


def critical_span(step: StepSchedule, ready_ps: np.ndarray, delivered_ps: np.ndarray) -> PathSpan:
    """The critical path of a run of ``step`` that delivered every transfer."""
    by = released_by(step, ready_ps, delivered_ps)
    last = len(delivered_ps) - 1 - int(np.argmax(delivered_ps[::-1]))  # of the latest, the highest id
    chain = []
    while last >= 0:
        chain.append(last)
        last = int(by[last])
    chain = np.array(chain[::-1], dtype=np.int64)
    spent_ps = np.maximum(np.diff(delivered_ps[chain], prepend=0), 0)  # what each added to the path's end
    marks = step.marks[chain]
    starts = np.array([start for _, _, start in step.parts], dtype=np.int64)
    parts, inverse = np.unique(np.searchsorted(starts, chain[~marks], side="right") - 1, return_inverse=True)
    parts_ps = np.zeros(len(parts), dtype=np.int64)
    np.add.at(parts_ps, inverse, spent_ps[~marks])
    return PathSpan(chain, int(spent_ps[marks].sum()), parts, parts_ps)


@dataclass(frozen=True, slots=True)
class JobView:
    """How a step names one job's groups: the job's name ("" for the only one), its mesh and GPUs (fabric
    ranks by job rank), and where its transfers and calls start in the step."""

    name: str
    mesh: Mesh
    gpus: tuple[int, ...]
    first_transfer: int = 0
    first_call: int = 0


def critical_path(step: StepSchedule, ready_ps: np.ndarray, delivered_ps: np.ndarray, jobs: tuple[JobView, ...],
                  links_of: Callable[[int], Iterable[int]],
                  utilization_of: Callable[[int], tuple[str, float]]) -> CriticalPath:
    """The critical path of a run of ``step`` (every transfer delivered), named: ``links_of(tid)`` gives
    the links a transfer's flows took, ``utilization_of(link)`` a link's name and load in the trial. Of
    groups or calls with as much time on the path, the first on it."""
    span = critical_span(step, ready_ps, delivered_ps)
    links = sorted({link for tid in span.chain[~step.marks[span.chain]].tolist() for link in links_of(tid)})
    link, utilization = max((utilization_of(link) for link in links), key=lambda named: named[1], default=("", 0.0))
    kinds: dict[str, int] = {}
    groups: dict[tuple[str, tuple[int, ...]], int] = {}
    for part, part_ps in zip(span.parts.tolist(), span.parts_ps.tolist()):
        index, gpus, _ = step.parts[part]
        call = step.calls[index]
        kinds[f"{call.stream} {call.op}"] = kinds.get(f"{call.stream} {call.op}", 0) + part_ps
        groups[call.stream, gpus] = groups.get((call.stream, gpus), 0) + part_ps
    kinds_ps = tuple(sorted(kinds.items(), key=lambda item: -item[1]))
    if not groups:
        return CriticalPath(span.compute_ps, kinds_ps, "", (), 0, "", 0, link, utilization)
    (stream, gpus), group_ps = max(groups.items(), key=lambda item: item[1])
    call_ps, part = max((part_ps, -part) for part, part_ps in zip(span.parts.tolist(), span.parts_ps.tolist())
                        if (step.calls[step.parts[part][0]].stream, step.parts[part][1]) == (stream, gpus))
    index, _, start = step.parts[-part]
    job = next(job for job in reversed(jobs) if job.first_transfer <= start)
    rank_of = {gpu: rank for rank, gpu in enumerate(job.gpus)}
    calls = tuple(dataclasses.replace(call, group=tuple(rank_of[gpu] for gpu in call.group))
                  for call in step.calls[job.first_call:index + 1])  # the job's, up to the path's
    call = calls[-1]
    name = group_name(stream, tuple(rank_of[gpu] for gpu in gpus), job.mesh)
    return CriticalPath(span.compute_ps, kinds_ps, f"{job.name}: {name}" if job.name else name, gpus, group_ps,
                        f"{call.stream} {call.op} {call_number(calls, len(calls) - 1, job.mesh)}", call_ps,
                        link, utilization)


def group_name(stream: str, group: tuple[int, ...], mesh: Mesh) -> str:
    """A group (ranks of ``mesh``) of a call on ``stream`` by its place in the mesh: "TP group 3" (the
    fourth in rank order), "DP group 5" (of TP rank 5; with stages, "DP group 5 of stage 2"), "PP stage
    2->3 (TP 1, DP 0)"; another stream's, its ranks."""
    first = group[0]
    tp_index, dp_index, stage = first % mesh.tp, first // mesh.tp % mesh.dp, first // (mesh.tp * mesh.dp)
    if stream == "tp":
        return f"TP group {first // mesh.tp}"
    if stream == "dp":
        return f"DP group {tp_index}" + (f" of stage {stage}" if mesh.pp > 1 else "")
    if stream == "pp":
        return f"PP stage {stage}->{group[1] // (mesh.tp * mesh.dp)} (TP {tp_index}, DP {dp_index})"
    return f"ranks {list(group)}"


def call_number(calls: tuple[Call, ...], index: int, mesh: Mesh) -> int:
    """How many calls of the same kind (stream and op) the program that holds ``calls[index]`` (its
    sender's stage's, in the lowered order ``calls``) has before it."""
    stage_of = mesh.tp * mesh.dp
    call = calls[index]
    return sum(1 for other in calls[:index] if (other.stream, other.op) == (call.stream, call.op)
               and other.group[0] // stage_of == call.group[0] // stage_of)
