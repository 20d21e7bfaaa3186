"""Collective algorithms: builders that turn (op, algorithm, ranks, S, chunks) into a transfer schedule.

Builders are pure functions returning a ``fabricsim.schedule.Schedule``; ``verify`` checks that a
schedule computes its collective.
"""

from __future__ import annotations

from collections.abc import Callable

from fabricsim.collectives.ring import ring_all_gather, ring_all_reduce, ring_reduce_scatter
from fabricsim.collectives.verify import ScheduleError, verify
from fabricsim.schedule import Schedule

Builder = Callable[[int, int, int], Schedule]

ALGORITHMS: dict[tuple[str, str], Builder] = {
    ("all_gather", "ring"): ring_all_gather,
    ("reduce_scatter", "ring"): ring_reduce_scatter,
    ("all_reduce", "ring"): ring_all_reduce,
}

__all__ = ["ALGORITHMS", "ScheduleError", "build_schedule", "verify"]


def build_schedule(op: str, algorithm: str, ranks: int, size_bytes: int, chunks: int = 1) -> Schedule:
    """Build the schedule of ``op`` by ``algorithm`` over ``ranks`` ranks for an S = ``size_bytes`` buffer.

    Raises ``ValueError`` for an unknown op or algorithm, and (from ``piece_layout``, which every builder
    calls) for ranks < 2, chunks < 1 or size_bytes < 0.
    """
    if (op, algorithm) not in ALGORITHMS:
        ops = sorted({known_op for known_op, _ in ALGORITHMS})
        if op not in ops:
            raise ValueError(f"unknown collective op {op!r}; known ops: {', '.join(ops)}")
        algorithms = sorted(name for known_op, name in ALGORITHMS if known_op == op)
        raise ValueError(f"unknown algorithm {algorithm!r} for {op}; known: {', '.join(algorithms)}")
    return ALGORITHMS[(op, algorithm)](ranks, size_bytes, chunks)
