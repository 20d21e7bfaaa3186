"""Trials: what one trial runs, as pure data.

A trial is one training step (or one batch) seen from global rank 0: the collective calls it takes
part in, in order (which the whole job's step repeats on every group: ``fabricsim.workload.job``).
Each call names its op, its group (fabric GPU indices; collective rank i is GPU ``group[i]``; for
send_recv, ``group[0]`` sends to ``group[1]``), the bytes each rank contributes (its input buffer:
S / p for all-gather, S otherwise), the compute time before it starts, its stream, whether it
blocks the compute after it and which earlier calls the compute before it waits for (the last three for
the whole job's step).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass

from fabricsim.workload.placement import Mesh


@dataclass(frozen=True, slots=True)
class Call:
    op: str
    group: tuple[int, ...]
    per_rank_bytes: int
    compute_before_ps: int = 0
    stream: str = "main"  # the whole job's step: calls on one stream run in order, streams concurrently
    blocking: bool = True  # the rank's compute waits for the call to finish
    # (ps, position): after ps of the compute before this call, the rank's compute waits for the call at
    # that position of its program too (FSDP's prefetched all-gathers: the unit's compute waits for its own)
    waits: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Trial:
    """One trial: its index, its calls in order, and the compute left after the last call. ``stages``:
    in the whole job's step of a pipeline, each stage's program (its first GPU's calls and the compute
    after them; ``calls`` is stage 0's); empty: every stage runs ``calls`` in lock step."""

    index: int
    calls: tuple[Call, ...]
    compute_after_ps: int = 0
    stages: tuple[tuple[tuple[Call, ...], int], ...] = ()

    @property
    def per_rank_bytes(self) -> tuple[int, ...]:
        return tuple(call.per_rank_bytes for call in self.calls)


@dataclass(frozen=True, slots=True)
class Trials(Sequence):
    """The trials of a run, built when asked for rather than held (a run may have millions): each of
    ``shapes``, a trial's calls and compute, stands for ``repeats`` trials in a row, so trial i is
    ``shapes[i // repeats]`` with index i."""

    shapes: tuple[Trial, ...]
    repeats: int

    def __len__(self) -> int:
        return len(self.shapes) * self.repeats

    def __getitem__(self, index: int) -> Trial:
        index = range(len(self))[operator.index(index)]
        shape = self.shapes[index // self.repeats]
        return Trial(index, shape.calls, shape.compute_after_ps, shape.stages)

    def shape_of(self, index: int) -> int:
        """Which of ``shapes`` trial ``index`` runs: trials of one shape run the same calls."""
        return range(len(self))[operator.index(index)] // self.repeats


@dataclass(frozen=True, slots=True)
class WorkloadPlan:
    """The trials of a run; ``op`` and ``ranks`` describe its main collective (for bandwidth figures).
    With a ``mesh``, a trial is one step of the whole job: every group of the mesh runs the calls of
    rank 0's group of its kind, all at once (``fabricsim.workload.job``)."""

    op: str
    ranks: int
    trials: Trials
    mesh: Mesh | None = None


def batch_count(samples: int, batch_size: int) -> int:
    """Batches per epoch of a loader that keeps the last, partial batch (PyTorch's default)."""
    return -(-samples // batch_size)
