"""Measurements beside simulations: the run of a log that matches a scenario, and the error of the
simulated time at each measured size.

The error of a size is (simulated - measured) / measured, in percent, on the row's time (nccl-tests'
out-of-place time). A size is latency-bound when its measured bus bandwidth is below half the log's
largest: Hockney's half-performance length n_1/2 (Hockney, "The communication challenge for MPP",
Parallel Computing 20(3), 1994) splits the sizes where the per-message cost dominates from those where
bandwidth does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from fabricsim.config import Scenario, ScenarioError
from fabricsim.formats.nccl_tests_log import MeasuredRun, read_log

REGIMES = ("latency-bound", "bandwidth-bound")


def measured_run(path: str | Path, scenario: Scenario, source: str | Path) -> MeasuredRun:
    """The run of the log at ``path`` that measured the scenario's collective: the only one, or the one
    naming the scenario's op (or, in fabricsim's own table, its algorithm); refused (ScenarioError) when
    the log names another op or rank count."""
    runs = read_log(path)
    op, ranks = scenario.collective.op, scenario.fabric.gpus
    matching = [run for run in runs if run.op in (op, None)]
    if not matching:
        raise ScenarioError(f"{path}: expected a run of {op} (the op of {source}), found "
                            + ", ".join(sorted({str(run.op) for run in runs})))
    run = next((run for run in matching if run.op == op or run.algorithm == scenario.collective.algorithm),
               matching[0])
    if run.ranks is not None and run.ranks != ranks:
        raise ScenarioError(f"{run.source}: expected {ranks} ranks (fabric.hosts x fabric.gpus_per_host of "
                            f"{source}), the log lists {run.ranks}")
    return run


def log_dtype(run: MeasuredRun) -> str:
    """The element type of the run (its first row's)."""
    return run.rows[0].dtype


def regimes(run: MeasuredRun) -> dict[int, str]:
    """Each measured size's regime: latency-bound below half the largest measured busbw."""
    peak = max((row.busbw_GBps for row in run.rows if math.isfinite(row.busbw_GBps)), default=0.0)
    return {row.size_bytes: REGIMES[row.busbw_GBps >= peak / 2 and peak > 0] for row in run.rows}


@dataclass(frozen=True, slots=True)
class SizeError:
    size_bytes: int
    measured_us: float
    simulated_us: float
    regime: str

    @property
    def error_pct(self) -> float:
        return 100 * (self.simulated_us - self.measured_us) / self.measured_us


def size_errors(run: MeasuredRun, simulated_us: dict[int, float]) -> list[SizeError]:
    """The error at every measured size that was simulated, in size order."""
    regime_of = regimes(run)
    return [SizeError(row.size_bytes, row.time_us, simulated_us[row.size_bytes], regime_of[row.size_bytes])
            for row in sorted(run.rows, key=lambda row: row.size_bytes) if row.size_bytes in simulated_us]


def format_errors(errors: list[SizeError], label: str) -> str:
    """One line per size, then the mean absolute error of each regime."""
    lines = [f"# measured vs {label}",
             "#       size  measured(us)  simulated(us)  error(%)  regime"]
    lines += [f"{e.size_bytes:>12}  {e.measured_us:>12.2f}  {e.simulated_us:>13.2f}  {e.error_pct:>+8.1f}  {e.regime}"
              for e in errors]
    lines += [f"# {line}" for line in regime_summary(errors)]
    return "\n".join(lines)


def regime_summary(errors: list[SizeError]) -> list[str]:
    """Per regime: sizes, mean and largest absolute error."""
    lines = []
    for regime in REGIMES:
        pcts = [abs(e.error_pct) for e in errors if e.regime == regime]
        if pcts:
            lines.append(f"{regime}: {len(pcts)} sizes, mean |error| {sum(pcts) / len(pcts):.1f}%, "
                         f"max {max(pcts):.1f}%")
    return lines
