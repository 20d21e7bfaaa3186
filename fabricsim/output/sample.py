"""Sample: the per-trial completion times of one run of a scenario, with its summary.

A sample comes from running the scenario, or from a result folder on disk whose resolved scenario
has the same identity: every key that shapes the numbers (seed and trial count included; the
``output`` and ``matrix`` sections left out). trials.csv holds each completion time to the
picosecond, so a sample read back equals the sample that was written.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import yaml

from fabricsim.config import Scenario
from fabricsim.formats.trace import check_trace_trials
from fabricsim.output.result_folder import written_files
from fabricsim.output.results import collect
from fabricsim.output.stats import PERCENTILES, percentile_key
from fabricsim.records import TrialRecord
from fabricsim.runner.simulation import Simulation
from fabricsim.units import PS_PER_US

# (label, summary key) of the latency metrics compared between runs, all in microseconds
LATENCY_METRICS = tuple((f"p{p:g}", percentile_key(p)) for p in PERCENTILES) + (("max", "max"),)
# (label, unit) of every metric compared between runs: the latency metrics, then busbw
METRICS = tuple((label, "us") for label, _ in LATENCY_METRICS) + (("busbw", "GB/s"),)


@dataclass(frozen=True)
class Sample:
    """One run: each trial's completion time in picoseconds, which trials failed, and the summary."""

    label: str
    trial_latency_ps: np.ndarray
    failed: np.ndarray
    summary: dict

    @property
    def ok_latency_us(self) -> np.ndarray:
        """Completion times of the successful trials, in trial order."""
        return self.trial_latency_ps[~self.failed] / PS_PER_US

    def metric_values(self) -> dict[str, float | None]:
        """Each of METRICS by its label: latencies in us (None when every trial failed), busbw in GB/s."""
        latency = self.summary["latency_us"]
        values = {label: None if latency is None else latency[key] for label, key in LATENCY_METRICS}
        values["busbw"] = self.summary["busbw_GBps"]
        return values


def identity(resolved: dict) -> dict:
    """A resolved scenario without the keys that do not change its numbers (output, matrix)."""
    return {key: value for key, value in resolved.items() if key not in ("output", "matrix")}


def sha256_of(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def run_sample(scenario: Scenario, source: str, label: str,
               run_records: Callable[[Simulation], Iterable[TrialRecord]], out_dir: Path | None = None) -> Sample:
    """Run the scenario's trials with `run_records` (the command line's executor); write its result
    folder to out_dir when one is given."""
    simulation = Simulation(scenario, source=source)
    check_trace_trials(simulation, source)
    results = collect(simulation, run_records(simulation), out_dir)
    columns = results.columns
    return Sample(label, columns.latency_ps.copy(), columns.failed.copy(), results.summary)


def read_sample(run_dir: Path, scenario: Scenario, label: str) -> Sample | None:
    """The sample stored in a result folder, or None when the folder is missing, incomplete, not
    marked as fabricsim's, or holds a run of another scenario, seed or trial count."""
    if written_files(run_dir) is None:
        return None
    try:
        resolved = yaml.safe_load((run_dir / "scenario.resolved.yaml").read_text())
        summary = json.loads((run_dir / "summary.json").read_text())
        with (run_dir / "trials.csv").open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        if identity(resolved) != identity(scenario.resolved()) or len(rows) != summary["trials"]:
            return None
        latency_ps = np.array([round(float(row["latency_us"]) * PS_PER_US) for row in rows], dtype=np.int64)
        failed = np.array([row["failed"] == "1" for row in rows], dtype=bool)
        sample = Sample(label, latency_ps, failed, summary)
        sample.metric_values()
    except (OSError, ValueError, KeyError, TypeError, AttributeError, yaml.YAMLError):
        return None
    return sample
