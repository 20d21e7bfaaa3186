"""Sweeps: one collective over a range of sizes, per algorithm, as nccl-tests reports it.

Sizes are nccl-tests' S (the ``size(B)`` column: the all-reduce buffer, the all-gather output, one
rank's all-to-all buffer), rounded down to whole elements of the data type, and for the ops whose
count is per rank (all-gather, reduce-scatter, all-to-all, gather) to a multiple of ranks elements,
as nccl-tests does. Each algorithm runs as its own scenario: the given one with
``collective.algorithm`` set and the workload replaced by the sizes as a ``data_sizes`` list, each
run ``warmup`` times (left out, as nccl-tests' -w), then ``iterations`` times out of place and
``iterations`` times in place (the fabric moves the same bytes either way: the two columns differ
only by their trials' draws). A column's time is the mean over its successful iterations
(nccl-tests prints the mean too); algbw and busbw follow ``fabricsim.stats``.

``format_table`` prints what nccl-tests prints, so that its log parsers read it: the header lines,
the out-of-place and in-place column pairs, ``#wrong`` as N/A (no data is checked), and the
``# Out of bounds values`` and ``# Avg bus bandwidth`` footer (the mean busbw over both columns of
every row), one such block per algorithm.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fabricsim import stats
from fabricsim.config import DTYPE_BYTES, Scenario, ScenarioError, validate_scenario
from fabricsim.collectives.verify import ROOTED_OPS
from fabricsim.formats.nccl_tests_log import NCCL_DTYPES
from fabricsim.runner import Simulation, TrialRecord, size_bytes_of

PER_RANK_COUNT_OPS = ("all_gather", "reduce_scatter", "all_to_all", "gather")
REDUCING_OPS = ("all_reduce", "reduce_scatter", "reduce")
# fabricsim's data types by nccl-tests' names, as the table prints them (the first name of each)
NCCL_TYPE_NAMES = {dtype: name for name, dtype in reversed(NCCL_DTYPES.items())}
REDOPS = ("sum", "prod", "max", "min", "avg")


@dataclass(frozen=True, slots=True)
class SweepRow:
    algorithm: str  # as requested; "auto" included
    picked: str  # the algorithm that ran
    size_bytes: int
    count: int  # elements, nccl-tests' count column
    dtype: str
    redop: str
    root: int
    time_us: float  # out of place: mean over successful iterations; nan when all failed
    algbw_GBps: float
    busbw_GBps: float
    inplace_time_us: float  # in place, the same
    inplace_algbw_GBps: float
    inplace_busbw_GBps: float
    iterations: int  # per column
    failed: int  # over both columns


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
    """The scenario of one algorithm's sweep: ``sizes_bytes`` (S) each run ``iterations`` times (warm-up,
    out-of-place and in-place iterations together)."""
    raw = scenario.resolved()
    ranks = scenario.fabric.gpus
    raw["collective"]["algorithm"] = algorithm
    raw["workload"] = {"rule": "data_sizes", "trials": iterations,
                       "data_sizes": [per_rank_bytes_of(scenario.collective.op, ranks, size) for size in sizes_bytes]}
    return validate_scenario(raw, source)


def run_sweep(scenario: Scenario, source: str, algorithms: list[str], sizes_bytes: list[int], iterations: int,
              dtype: str, run: Callable[[Simulation], list[TrialRecord]], warmup: int = 0,
              redop: str = "sum") -> list[SweepRow]:
    """Rows for every algorithm and size; ``run`` runs a simulation's trials (serially or in parallel)."""
    op, ranks = scenario.collective.op, scenario.fabric.gpus
    sizes_bytes = element_sizes(op, ranks, sizes_bytes, dtype)
    if not sizes_bytes:
        raise ScenarioError(f"{source}: sizes: expected at least one size of a whole {dtype} element "
                            f"({'per rank, ' if op in PER_RANK_COUNT_OPS else ''}{DTYPE_BYTES[dtype]} bytes)")
    runs = warmup + 2 * iterations
    simulations = [Simulation(sweep_scenario(scenario, source, name, sizes_bytes, runs), source)
                   for name in algorithms]  # every scenario is checked before any runs
    rows = []
    for name, simulation in zip(algorithms, simulations):
        records = run(simulation)
        for size in sizes_bytes:
            per_rank = per_rank_bytes_of(op, ranks, size)
            done = [r for r in records if r.per_rank_bytes == (per_rank,)][warmup:]
            columns = [_column(op, ranks, size, done[:iterations]), _column(op, ranks, size, done[iterations:])]
            count = size // DTYPE_BYTES[dtype] // (ranks if op in PER_RANK_COUNT_OPS else 1)
            rows.append(SweepRow(
                name, simulation.schedule(op, ranks, per_rank).algorithm, size, count, dtype,
                redop if op in REDUCING_OPS else "none", scenario.collective.root if op in ROOTED_OPS else -1,
                *columns[0], *columns[1], iterations, sum(r.failed for r in done)))
    return rows


def _column(op: str, ranks: int, size: int, records: list[TrialRecord]) -> tuple[float, float, float]:
    """Time (mean over the successful iterations), algbw and busbw of one column of a row."""
    times_us = np.array([r.latency_ps / 1e6 for r in records if not r.failed])
    time_us = float(times_us.mean()) if times_us.size else math.nan
    return time_us, float(stats.algbw_GBps(size, time_us)), float(stats.busbw_GBps(op, ranks, size, time_us))


def format_table(rows: list[SweepRow], ranks: int, warmup: int = 0, check: bool = False) -> str:
    """What nccl-tests prints, one block per requested algorithm (see the module's docstring)."""
    lines = []
    for algorithm in dict.fromkeys(row.algorithm for row in rows):
        block = [row for row in rows if row.algorithm == algorithm]
        picked = dict.fromkeys(row.picked for row in block)
        sizes = [row.size_bytes for row in block]
        lines += [f"# algorithm: {algorithm}" + (f" (picked {', '.join(picked)})" if algorithm == "auto" else ""),
                  f"# nThread 1 nGpus {ranks} minBytes {min(sizes)} maxBytes {max(sizes)} step: "
                  f"{_step(sizes)} warmup iters: {warmup} iters: {block[0].iterations} agg iters: 1 "
                  f"validation: {int(check)} graph: 0",
                  "#",
                  "# " + " " * 50 + "           out-of-place                       in-place          ",
                  "# {:>10}  {:>12}  {:>8}  {:>6}  {:>6}".format("size", "count", "type", "redop", "root")
                  + "  {:>7}  {:>6}  {:>6} {:>6}".format("time", "algbw", "busbw", "#wrong") * 2,
                  "# {:>10}  {:>12}  {:>8}  {:>6}  {:>6}".format("(B)", "(elements)", "", "", "")
                  + "  {:>7}  {:>6}  {:>6} {:>6}".format("(us)", "(GB/s)", "(GB/s)", "") * 2]
        for row in block:
            lines.append(f"{row.size_bytes:>12}  {row.count:>12}  {NCCL_TYPE_NAMES.get(row.dtype, row.dtype):>8}  "
                         f"{row.redop:>6}  {row.root:>6}"
                         + _cells(row.time_us, row.algbw_GBps, row.busbw_GBps)
                         + _cells(row.inplace_time_us, row.inplace_algbw_GBps, row.inplace_busbw_GBps))
        busbw = [value for row in block for value in (row.busbw_GBps, row.inplace_busbw_GBps) if not math.isnan(value)]
        failed = sum(row.failed for row in block)
        if failed:
            lines.append(f"# {failed} iterations failed (a queue pair out of retries); times are over the others")
        lines += ["# Out of bounds values : 0 OK",
                  f"# Avg bus bandwidth    : {sum(busbw) / len(busbw) if busbw else math.nan:g} ",
                  "#"]
    return "\n".join(lines)


def _cells(time_us: float, algbw_GBps: float, busbw_GBps: float) -> str:
    """One out-of-place or in-place column group, in nccl-tests' widths and precisions."""
    if math.isnan(time_us):
        return "  {:>7}  {:>6}  {:>6} {:>6}".format("N/A", "N/A", "N/A", "N/A")
    time_text = f"{time_us:7.0f}" if time_us >= 10000 else f"{time_us:7.1f}" if time_us >= 100 else f"{time_us:7.2f}"
    return f"  {time_text}  {algbw_GBps:6.2f}  {busbw_GBps:6.2f} {'N/A':>6}"


def _step(sizes: list[int]) -> str:
    """nccl-tests' ``step:`` field: the factor between successive sizes, or one size."""
    if len(sizes) < 2:
        return "1(bytes)"
    return f"{sizes[1] / sizes[0]:g}(factor)"
