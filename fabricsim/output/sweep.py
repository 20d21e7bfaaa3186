"""Sweeps: one collective over a range of sizes, per algorithm, as nccl-tests reports it.

Sizes are nccl-tests' S (the ``size(B)`` column: the all-reduce buffer, the all-gather output, one
rank's all-to-all buffer), rounded down to whole elements of the data type, and for the ops whose
count is per rank (all-gather, reduce-scatter, all-to-all, gather) to a multiple of ranks elements,
as nccl-tests does. Each algorithm runs as its own scenario: the given one with
``collective.algorithm`` set and the workload replaced by the sizes as a ``data_sizes`` list, each
run ``warmup`` times (left out, as nccl-tests' -w), then ``iterations`` times out of place and
``iterations`` times in place (the fabric moves the same bytes either way: the two columns differ
only by their trials' draws). A column's time is the mean over its successful iterations
(nccl-tests prints the mean too); algbw and busbw follow ``fabricsim.output.stats``. Each column also keeps
the spread of its iterations as nccl-tests' -I reports it: the fastest and slowest iteration, the
p99 (only from 100 iterations on, as every percentile fabricsim reports) and the coefficient of
variation (standard deviation over mean, in percent).

``format_table`` prints what nccl-tests prints, so that its log parsers read it: the header lines,
the out-of-place and in-place column pairs, ``#wrong`` as N/A (no data is checked), and the
``# Out of bounds values`` and ``# Avg bus bandwidth`` footer (the mean busbw over both columns of
every row), one such block per algorithm; with ``per_iteration`` (-I 1) each column group adds
``i_min i_max i_p99 i_cv%``. ``nccl_tests_json`` gives one algorithm's rows in the layout of
nccl-tests' -J file.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fabricsim.collectives.sizes import size_bytes_of
from fabricsim.collectives.verify import ROOTED_OPS
from fabricsim.config import DTYPE_BYTES, Scenario, ScenarioError, validate_scenario
from fabricsim.formats.nccl_tests_log import NCCL_DTYPES
from fabricsim.output import stats
from fabricsim.records import TrialRecord
from fabricsim.runner.simulation import Simulation
from fabricsim.units import PS_PER_US

PER_RANK_COUNT_OPS = ("all_gather", "reduce_scatter", "all_to_all", "gather")
REDUCING_OPS = ("all_reduce", "reduce_scatter", "reduce")
# fabricsim's data types by nccl-tests' names, as the table prints them (the first name of each)
NCCL_TYPE_NAMES = {dtype: name for name, dtype in reversed(NCCL_DTYPES.items())}


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
    # the spread of each column's successful iterations (nccl-tests -I): nan where none succeeded,
    # p99 also below the 100 iterations that support it
    iter_min_us: float
    iter_max_us: float
    iter_p99_us: float
    iter_cv_pct: float
    inplace_iter_min_us: float
    inplace_iter_max_us: float
    inplace_iter_p99_us: float
    inplace_iter_cv_pct: float


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
            out_of_place, in_place = (_times_us(done[:iterations]), _times_us(done[iterations:]))
            count = size // DTYPE_BYTES[dtype] // (ranks if op in PER_RANK_COUNT_OPS else 1)
            rows.append(SweepRow(
                name, simulation.schedule(op, ranks, per_rank).algorithm, size, count, dtype,
                redop if op in REDUCING_OPS else "none", scenario.collective.root if op in ROOTED_OPS else -1,
                *_column(op, ranks, size, out_of_place), *_column(op, ranks, size, in_place),
                iterations, sum(r.failed for r in done), *_spread(out_of_place), *_spread(in_place)))
    return rows


def _times_us(records: list[TrialRecord]) -> np.ndarray:
    """The times of a column's successful iterations."""
    return np.array([r.latency_ps / PS_PER_US for r in records if not r.failed])


def _column(op: str, ranks: int, size: int, times_us: np.ndarray) -> tuple[float, float, float]:
    """Time (mean over the successful iterations), algbw and busbw of one column of a row."""
    time_us = float(times_us.mean()) if times_us.size else math.nan
    return time_us, float(stats.algbw_GBps(size, time_us)), float(stats.busbw_GBps(op, ranks, size, time_us))


def _spread(times_us: np.ndarray) -> tuple[float, float, float, float]:
    """min, max, p99 and coefficient of variation (%) of a column's iterations (nccl-tests -I)."""
    if not times_us.size:
        return (math.nan,) * 4
    p99_us = stats.latency_summary(times_us)[stats.percentile_key(99)]
    return (float(times_us.min()), float(times_us.max()), math.nan if p99_us is None else p99_us,
            float(100 * times_us.std() / times_us.mean()))


def format_table(rows: list[SweepRow], ranks: int, warmup: int = 0, check: bool = False,
                 per_iteration: bool = False) -> str:
    """What nccl-tests prints, one block per requested algorithm (see the module's docstring)."""
    group_header = "  {:>7}  {:>6}  {:>6} {:>6}" + ("  {:>7}  {:>7}  {:>7}  {:>6}" if per_iteration else "")
    names = ("time", "algbw", "busbw", "#wrong") + (("i_min", "i_max", "i_p99", "i_cv%") if per_iteration else ())
    units = ("(us)", "(GB/s)", "(GB/s)", "") + (("(us)", "(us)", "(us)", "(%)") if per_iteration else ())
    lines = []
    for algorithm in dict.fromkeys(row.algorithm for row in rows):
        block = [row for row in rows if row.algorithm == algorithm]
        picked = dict.fromkeys(row.picked for row in block)
        sizes = [row.size_bytes for row in block]
        lines += [f"# algorithm: {algorithm}" + (f" (picked {', '.join(picked)})" if algorithm == "auto" else ""),
                  f"# nThread 1 nGpus {ranks} minBytes {min(sizes)} maxBytes {max(sizes)} step: "
                  f"{_step(sizes)} warmup iters: {warmup} iters: {block[0].iterations} agg iters: 1 "
                  f"validation: {int(check)} graph: 0",
                  *(["# Per-Iteration Report: simulated iterations; i_p99 from 100 iterations"] if per_iteration
                    else []),
                  "#",
                  "# " + " " * 50 + ("           out-of-place (+ per-iteration)                          "
                                     "in-place (+ per-iteration)" if per_iteration else
                                     "           out-of-place                       in-place          "),
                  "# {:>10}  {:>12}  {:>8}  {:>6}  {:>6}".format("size", "count", "type", "redop", "root")
                  + group_header.format(*names) * 2,
                  "# {:>10}  {:>12}  {:>8}  {:>6}  {:>6}".format("(B)", "(elements)", "", "", "")
                  + group_header.format(*units) * 2]
        for row in block:
            lines.append(f"{row.size_bytes:>12}  {row.count:>12}  {NCCL_TYPE_NAMES.get(row.dtype, row.dtype):>8}  "
                         f"{row.redop:>6}  {row.root:>6}"
                         + _cells(row.time_us, row.algbw_GBps, row.busbw_GBps)
                         + (_spread_cells(row.iter_min_us, row.iter_max_us, row.iter_p99_us, row.iter_cv_pct)
                            if per_iteration else "")
                         + _cells(row.inplace_time_us, row.inplace_algbw_GBps, row.inplace_busbw_GBps)
                         + (_spread_cells(row.inplace_iter_min_us, row.inplace_iter_max_us, row.inplace_iter_p99_us,
                                          row.inplace_iter_cv_pct) if per_iteration else ""))
        failed = sum(row.failed for row in block)
        if failed:
            lines.append(f"# {failed} iterations failed (a queue pair out of retries); times are over the others")
        lines += ["# Out of bounds values : 0 OK",
                  f"# Avg bus bandwidth    : {_mean_busbw(block):g} ",
                  "#"]
    return "\n".join(lines)


def _cells(time_us: float, algbw_GBps: float, busbw_GBps: float) -> str:
    """One out-of-place or in-place column group, in nccl-tests' widths and precisions."""
    if math.isnan(time_us):
        return "  {:>7}  {:>6}  {:>6} {:>6}".format("N/A", "N/A", "N/A", "N/A")
    time_text = f"{time_us:7.0f}" if time_us >= 10000 else f"{time_us:7.1f}" if time_us >= 100 else f"{time_us:7.2f}"
    return f"  {time_text}  {algbw_GBps:6.2f}  {busbw_GBps:6.2f} {'N/A':>6}"


def _spread_cells(*values: float) -> str:
    """The -I cells of a column group: i_min, i_max, i_p99 (us) and i_cv% (N/A where not known)."""
    return "".join(f"  {value:7.2f}" if not math.isnan(value) else f"  {'N/A':>7}" for value in values[:3]) \
        + (f"  {values[3]:6.2f}" if not math.isnan(values[3]) else f"  {'N/A':>6}")


def nccl_tests_json(rows: list[SweepRow], ranks: int, program: str, warmup: int, per_iteration: bool) -> dict:
    """One algorithm's rows as nccl-tests' -J file (src/util.cu's layout): no clock times, so the same
    sweep writes the same file."""
    sizes = [row.size_bytes for row in rows]

    def group(time_us: float, algbw_GBps: float, busbw_GBps: float) -> dict | None:
        return None if math.isnan(time_us) else {"time": time_us, "alg_bw": algbw_GBps, "bus_bw": busbw_GBps,
                                                 "nwrong": None}

    return {"version": 1, "args": [program], "config": {
        "nthreads": 1, "ngpus": ranks, "minimum_bytes": min(sizes), "maximum_bytes": max(sizes),
        "step_factor": sizes[1] / sizes[0] if len(sizes) > 1 else 1, "warmup_iters": warmup, "iterations": rows[0].iterations,
        "aggregated_iterations": 1, "validation": 0, "graph": 0, "per_iter_timing": str(per_iteration).lower(),
        "devices": [{"rank": 0, "group": 0, "device": 0}]},
        "results": [{"size": row.size_bytes, "count": row.count, "type": NCCL_TYPE_NAMES.get(row.dtype, row.dtype),
                     "redop": row.redop, "root": row.root,
                     "out_of_place": group(row.time_us, row.algbw_GBps, row.busbw_GBps),
                     "in_place": group(row.inplace_time_us, row.inplace_algbw_GBps, row.inplace_busbw_GBps),
                     "actual_iterations": row.iterations, "algorithm": row.picked} for row in rows],
        "out_of_bounds": {"count": 0, "okay": "true"},
        "average_bus_bandwidth": {"bandwidth": None if math.isnan(_mean_busbw(rows)) else _mean_busbw(rows),
                                  "okay": "unchecked"}, "errors": []}


def _mean_busbw(rows: list[SweepRow]) -> float:
    """nccl-tests' ``Avg bus bandwidth``: the mean busbw over both columns of every row that has one."""
    busbw = [value for row in rows for value in (row.busbw_GBps, row.inplace_busbw_GBps) if not math.isnan(value)]
    return sum(busbw) / len(busbw) if busbw else math.nan


def _step(sizes: list[int]) -> str:
    """nccl-tests' ``step:`` field: the factor between successive sizes, or one size."""
    if len(sizes) < 2:
        return "1(bytes)"
    return f"{sizes[1] / sizes[0]:g}(factor)"
