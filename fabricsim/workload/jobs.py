"""Several jobs on one fabric: where each job's hosts are, and their steps joined into one.

Placement takes whole hosts (the fabric numbers GPUs host first): ``packed`` gives each job, in order,
the lowest free hosts; ``fragmented`` gives it free hosts drawn at random (from the scenario's seed,
one draw fixed for the whole run), in ascending order; ``rail_aligned`` gives it the first consecutive
free hosts under one leaf (``group_hosts`` hosts; a rail-optimized fabric's rail switches span every
host), or, for a job larger than that, whole leaves from a leaf's first host. A job's GPU rank r is its r-th GPU.
``join_steps`` puts the jobs' steps, each lowered over its own mesh, side by side in one schedule over
the fabric's GPUs: nothing of one job waits on another's, they share only the fabric.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from fabricsim.collectives.schedule import Dependencies, Schedule, TransferTable
from fabricsim.workload.job import StepSchedule
from fabricsim.workload.trial import Call

PLACEMENT_STREAM = 0x706C6163  # the seed's child that draws fragmented placements, apart from the trials'


class PlacementError(ValueError):
    """Job ``job``'s placement finds no room; the text says what was expected."""

    def __init__(self, job: int, expected: str) -> None:
        super().__init__(expected)
        self.job = job


def place_jobs(placements: list[tuple[str, int]], host_gpus: list[tuple[int, ...]], seed: int,
               group_hosts: int) -> list[tuple[int, ...]]:
    """Each job's GPU ranks from its (placement, hosts), given each host's GPU ranks; PlacementError
    when a job's placement finds no room."""
    free = list(range(len(host_gpus)))
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(PLACEMENT_STREAM,)))
    placed = []
    for index, (placement, hosts) in enumerate(placements):
        if placement == "packed":
            taken = free[:hosts]
        elif placement == "fragmented":
            taken = sorted(rng.choice(free, hosts, replace=False).tolist())
        else:
            taken = _aligned(set(free), hosts, group_hosts, len(host_gpus))
        if len(taken) < hosts:
            raise PlacementError(index, f"room for job {index}'s {hosts} hosts {placement}: {len(free)} hosts are "
                                        f"free, but not {hosts} in a row under one leaf of {group_hosts} hosts "
                                        "or as whole leaves")
        free = [host for host in free if host not in taken]
        placed.append(tuple(gpu for host in taken for gpu in host_gpus[host]))
    return placed


def _aligned(free: set[int], hosts: int, group_hosts: int, total: int) -> list[int]:
    """The first ``hosts`` consecutive free hosts inside one group of ``group_hosts``, or (more hosts
    than a group) starting on a group's first host; empty when there are none."""
    for start in range(total - hosts + 1):
        inside = start // group_hosts == (start + hosts - 1) // group_hosts
        if (inside if hosts <= group_hosts else start % group_hosts == 0) \
                and all(host in free for host in range(start, start + hosts)):
            return list(range(start, start + hosts))
    return []


def placed_call(call: Call, gpus: tuple[int, ...]) -> Call:
    """The call with its group as fabric GPU ranks."""
    return dataclasses.replace(call, group=tuple(gpus[rank] for rank in call.group))


def placed_step(step: StepSchedule, gpus: tuple[int, ...], ranks: int) -> StepSchedule:
    """A job's step moved onto its GPUs (of the fabric's ``ranks``)."""
    table, to_gpu = step.schedule.transfers, np.array(gpus, dtype=np.int64)
    transfers = dataclasses.replace(table, src=to_gpu[table.src], dst=to_gpu[table.dst])
    schedule = Schedule("step", "step", ranks, step.schedule.size_bytes, transfers)
    return StepSchedule(schedule, step.call_of, step.compute_ps,
                        tuple((index, tuple(gpus[r] for r in group), start) for index, group, start in step.parts),
                        tuple(placed_call(call, gpus) for call in step.calls))


def join_steps(steps: list[StepSchedule], ranks: int) -> tuple[StepSchedule, np.ndarray]:
    """The steps (already on the fabric's GPUs) as one; and where each starts, ids, with the end last."""
    firsts = np.concatenate(([0], np.cumsum([len(step.schedule.transfers) for step in steps])))
    calls_before = np.concatenate(([0], np.cumsum([len(step.calls) for step in steps])))
    tables = [step.schedule.transfers for step in steps]

    def column(name: str) -> np.ndarray:
        return np.concatenate([getattr(table, name) for table in tables])

    def dependencies(name: str) -> Dependencies:
        deps = [getattr(table, name) for table in tables]
        starts = np.concatenate([[0]] + [d.starts[1:] + before for d, before in
                                         zip(deps, np.cumsum([0] + [len(d.ids) for d in deps[:-1]]))])
        return Dependencies(starts, np.concatenate([d.ids + first for d, first in zip(deps, firsts)]))

    transfers = TransferTable(*(column(name) for name in ("src", "dst", "nbytes", "piece", "pieces", "reduce")),
                              dependencies("after"), dependencies("after_sent"))
    schedule = Schedule("step", "step", ranks, sum(step.schedule.size_bytes for step in steps), transfers)
    call_of = np.concatenate([np.where(step.call_of < 0, -1, step.call_of + before)
                              for step, before in zip(steps, calls_before)])
    parts = tuple((index + int(before), group, start + int(first)) for step, before, first
                  in zip(steps, calls_before, firsts) for index, group, start in step.parts)
    return StepSchedule(schedule, call_of, np.concatenate([step.compute_ps for step in steps]), parts,
                        tuple(call for step in steps for call in step.calls)), firsts
