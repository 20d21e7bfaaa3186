"""Sweeps: one collective over a range of sizes, per algorithm, as nccl-tests reports it.

Sizes are nccl-tests' S (the ``size(B)`` column: the all-reduce buffer, the all-gather output, one
rank's all-to-all buffer), rounded down to whole elements of the data type, and for the ops whose
count is per rank (all-gather, reduce-scatter, all-to-all, gather) to a multiple of ranks elements,
as nccl-tests does. Each algorithm runs as its own scenario: the given one with
``collective.algorithm`` set and the workload replaced by the sizes as a ``data_sizes`` list, each
run ``iterations`` times. A row's time is the mean over its successful iterations (nccl-tests
prints the mean too); algbw and busbw follow ``fabricsim.stats``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fabricsim import stats
from fabricsim.config import DTYPE_BYTES, Scenario, ScenarioError, validate_scenario
from fabricsim.collectives.verify import ROOTED_OPS
from fabricsim.runner import Simulation, TrialRecord, size_bytes_of

PER_RANK_COUNT_OPS = ("all_gather", "reduce_scatter", "all_to_all", "gather")
REDUCING_OPS = ("all_reduce", "reduce_scatter", "reduce")
NCCL_TYPE_NAMES = {"float32": "float", "float16": "half", "float64": "double"}


@dataclass(frozen=True, slots=True)
class SweepRow:
    algorithm: str  # as requested; "auto" included
    picked: str  # the algorithm that ran
    size_bytes: int
    count: int  # elements, nccl-tests' count column
    dtype: str
    redop: str
    root: int
    time_us: float  # mean over successful iterations; nan when all failed
    algbw_GBps: float
    busbw_GBps: float
    iterations: int
    failed: int


def element_sizes(op: str, ranks: int, sizes_bytes: list[int], dtype: str) -> list[int]:
    """The sizes rounded down to whole elements (per rank where nccl-tests counts per rank),
    without zeros or repeats, in the order given."""
    unit_bytes = DTYPE_BYTES[dtype] * (ranks if op in PER_RANK_COUNT_OPS else 1)
    rounded = (size - size % unit_bytes for size in sizes_bytes)
    return list(dict.fromkeys(size for size in rounded if size > 0))


def per_rank_bytes_of(op: str, ranks: int, size_bytes: int) -> int:
    """The workload's per-rank bytes of an S-byte collective (the inverse of ``size_bytes_of``)."""
    return size_bytes // size_bytes_of(op, ranks, 1)


def sweep_scenario(scenario: Scenario, source: str, algorithm: str, sizes_bytes: list[int],
                   iterations: int) -> Scenario:
    """The scenario of one algorithm's sweep: ``sizes_bytes`` (S) each run ``iterations`` times."""
    raw = scenario.resolved()
    ranks = scenario.fabric.gpus
    raw["collective"]["algorithm"] = algorithm
    raw["workload"] = {"rule": "data_sizes", "trials": iterations,
                       "data_sizes": [per_rank_bytes_of(scenario.collective.op, ranks, size) for size in sizes_bytes]}
    return validate_scenario(raw, source)


def run_sweep(scenario: Scenario, source: str, algorithms: list[str], sizes_bytes: list[int], iterations: int,
              dtype: str, run: Callable[[Simulation], list[TrialRecord]]) -> list[SweepRow]:
    """Rows for every algorithm and size; ``run`` runs a simulation's trials (serially or in parallel)."""
    op, ranks = scenario.collective.op, scenario.fabric.gpus
    sizes_bytes = element_sizes(op, ranks, sizes_bytes, dtype)
    if not sizes_bytes:
        raise ScenarioError(f"{source}: sizes: expected at least one size of a whole {dtype} element "
                            f"({'per rank, ' if op in PER_RANK_COUNT_OPS else ''}{DTYPE_BYTES[dtype]} bytes)")
    simulations = [Simulation(sweep_scenario(scenario, source, name, sizes_bytes, iterations), source)
                   for name in algorithms]  # every scenario is checked before any runs
    rows = []
    for name, simulation in zip(algorithms, simulations):
        records = run(simulation)
        for size in sizes_bytes:
            per_rank = per_rank_bytes_of(op, ranks, size)
            done = [r for r in records if r.per_rank_bytes == (per_rank,)]
            times_us = np.array([r.latency_ps / 1e6 for r in done if not r.failed])
            time_us = float(times_us.mean()) if times_us.size else math.nan
            count = size // DTYPE_BYTES[dtype] // (ranks if op in PER_RANK_COUNT_OPS else 1)
            rows.append(SweepRow(
                name, simulation.schedule(op, ranks, per_rank).algorithm, size, count, dtype,
                "sum" if op in REDUCING_OPS else "none", scenario.collective.root if op in ROOTED_OPS else -1,
                time_us, float(stats.algbw_GBps(size, time_us)), float(stats.busbw_GBps(op, ranks, size, time_us)),
                len(done), len(done) - times_us.size))
    return rows


def format_table(rows: list[SweepRow]) -> str:
    """The nccl-tests table, one block per requested algorithm, each with its average bus bandwidth."""
    lines = []
    for algorithm in dict.fromkeys(row.algorithm for row in rows):
        block = [row for row in rows if row.algorithm == algorithm]
        lines += [f"# algorithm: {algorithm}",
                  "#       size         count      type   redop    root      time    algbw    busbw  algorithm",
                  "#        (B)    (elements)                                (us)   (GB/s)   (GB/s)"]
        for row in block:
            lines.append(f"{row.size_bytes:>12}  {row.count:>12}  {NCCL_TYPE_NAMES.get(row.dtype, row.dtype):>8}  "
                         f"{row.redop:>6}  {row.root:>6}  {row.time_us:>8.2f}  {row.algbw_GBps:>7.2f}  "
                         f"{row.busbw_GBps:>7.2f}  {row.picked}")
        busbw = [row.busbw_GBps for row in block if not math.isnan(row.busbw_GBps)]
        average = sum(busbw) / len(busbw) if busbw else math.nan
        lines.append(f"# Avg bus bandwidth : {average:.4f}")
    return "\n".join(lines)
