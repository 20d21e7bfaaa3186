"""Baseline: the numbers a scenario is held to, and the check of a new run against them.

A baseline file (results/baselines/<name>.json) is the run's summary (percentiles, busbw, seed,
trials, fabricsim version) plus every trial's completion time in picoseconds, the scenario's shape
(its resolved form without seed, trial count, output and matrix) and the SHA-256 of that shape.
A check only compares runs of the same shape; otherwise it names the keys that changed.

Two ways to check:
- exact (the default): same shape, seed and trial count give the same trials to the picosecond,
  so any change fails; ``tolerances`` (relative, per metric) relax this to the metrics named;
- statistical: two independent samples (seeds may differ). The completion-time distributions
  must pass a two-sample Kolmogorov-Smirnov test at KS_ALPHA, and the bootstrap interval of each
  gated percentile's relative change must not lie wholly beyond its tolerance (default: p99, 0%).

A percentile that the smaller sample's trial count does not support (``stats.trials_needed``: p99
needs 100 successful trials, p99.9 1000) is not judged in either mode: its status is "n/a" and a
note says what it needs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fabricsim.config import Scenario, ScenarioError
from fabricsim.output import stats
from fabricsim.output.compare import CONFIDENCE, GUARDED_PERCENTILE
from fabricsim.output.sample import LATENCY_METRICS, METRICS, Sample, identity, sha256_of
from fabricsim.units import TimeUnit

BASELINE_DIR = Path("results") / "baselines"
KS_ALPHA = 0.01
_PERCENTILE_OF = {f"p{p:g}": p for p in stats.PERCENTILES}


@dataclass(frozen=True)
class MetricCheck:
    """One metric against its baseline: the relative change (an interval in statistical mode,
    worse-is-positive for latency and busbw alike) and the verdict under its tolerance."""

    label: str
    unit: str
    baseline: float | None
    now: float | None
    change: tuple[float, float] | None
    tolerance: float | None
    status: str


@dataclass(frozen=True)
class CheckResult:
    mode: str
    metrics: list[MetricCheck]
    notes: list[str]
    passed: bool


def baseline_path(scenario: Scenario) -> Path:
    return BASELINE_DIR / f"{scenario.name}.json"


def scenario_shape(scenario: Scenario) -> dict:
    """What a baseline is comparable with: the resolved scenario without seed and trial count."""
    shape = identity(scenario.resolved())
    del shape["seed"]
    if "workload" in shape:
        shape["workload"] = _without_trials(shape["workload"])
    if "jobs" in shape:  # several jobs: each has its own workload
        shape["jobs"] = [{**job, "workload": _without_trials(job["workload"])} for job in shape["jobs"]]
    return shape


def _without_trials(workload: dict) -> dict:
    return {key: value for key, value in workload.items() if key != "trials"}


def make_baseline(scenario: Scenario, sample: Sample) -> dict:
    shape = scenario_shape(scenario)
    return {**sample.summary,
            "workload_trials": scenario.workload.trials,
            "scenario_sha256": sha256_of(shape),
            "failed_trial_indices": np.flatnonzero(sample.failed).tolist(),
            "trial_latency_ps": sample.trial_latency_ps.tolist(),
            "scenario_shape": shape}


def write_baseline(path: Path, baseline: dict) -> None:
    """Write the file whole or not at all (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(json.dumps(baseline, indent=1) + "\n")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def read_baseline(path: Path, replacing: bool = False) -> dict:
    """A baseline file, checked key by key; ``replacing``: read by --update, to keep its trial count."""
    fix = ("--update keeps the trial count of the baseline it replaces, so it replaces only one it can read: "
           "remove the file to write a new baseline" if replacing else
           "write one with fabricsim check SCENARIO --update")
    try:
        baseline = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ScenarioError(f"{path}: cannot read the baseline ({error.strerror}); {fix}") from None
    except ValueError:
        raise ScenarioError(f"{path}: expected a baseline written by fabricsim check --update (JSON); {fix}") from None
    problem = _baseline_problem(baseline)
    if problem:
        raise ScenarioError(f"{path}: {problem[0]}: expected {problem[1]} (the file has been edited or damaged); {fix}")
    return baseline


def _baseline_problem(baseline: object) -> tuple[str, str] | None:
    """(key, what was expected) for the first key of a baseline that is missing or malformed, or None."""
    if not isinstance(baseline, dict):
        return "(top level)", "a mapping of keys"
    whole, number = _is_whole, _is_number
    latency = baseline.get("trial_latency_ps")
    trials = baseline.get("trials")
    checks = (
        ("trials", "a whole number of trials", whole(trials) and trials >= 0),
        ("seed", "a whole number", whole(baseline.get("seed"))),
        ("workload_trials", "a whole number or null",
         baseline.get("workload_trials") is None or whole(baseline.get("workload_trials"))),
        ("trial_latency_ps", f"a list of {trials} whole picosecond times",
         isinstance(latency, list) and len(latency) == trials and all(whole(v) and 0 <= v < 2**63 for v in latency)),
        ("failed_trial_indices", f"a list of trial indices below {trials}",
         isinstance(baseline.get("failed_trial_indices"), list)
         and all(whole(i) and 0 <= i < trials for i in baseline["failed_trial_indices"])),
        ("latency_us", "null or the percentiles " + ", ".join(key for _, key in LATENCY_METRICS) + " (each a number or null)",
         baseline.get("latency_us") is None or (isinstance(baseline.get("latency_us"), dict)
                                                and all(key in baseline["latency_us"] and (
                                                    baseline["latency_us"][key] is None
                                                    or number(baseline["latency_us"][key]))
                                                    for _, key in LATENCY_METRICS))),
        ("busbw_GBps", "a number or null", baseline.get("busbw_GBps") is None or number(baseline.get("busbw_GBps"))),
        ("scenario_sha256", "a SHA-256 in hex", isinstance(baseline.get("scenario_sha256"), str)),
        ("scenario_shape", "the scenario's shape, a mapping of keys", isinstance(baseline.get("scenario_shape"), dict)),
    )
    return next(((key, expected) for key, expected, ok in checks if not ok), None)


def _is_whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and bool(np.isfinite(value))


def baseline_sample(baseline: dict) -> Sample:
    latency_ps = np.array(baseline["trial_latency_ps"], dtype=np.int64)
    failed = np.zeros(latency_ps.size, dtype=bool)
    failed[np.array(baseline["failed_trial_indices"], dtype=int)] = True
    return Sample("baseline", latency_ps, failed, baseline)


def changed_keys(baseline: dict, scenario: Scenario) -> dict[str, tuple]:
    """Key paths whose values differ between the baseline's scenario shape and this scenario's, each
    with its (old, new) value (None where a key is missing on one side)."""
    old, new = _flatten(baseline["scenario_shape"]), _flatten(scenario_shape(scenario))
    return {key: (old.get(key), new.get(key)) for key in sorted(old.keys() | new.keys())
            if old.get(key) != new.get(key)}


def baseline_scenario(baseline: dict) -> dict:
    """The scenario a baseline was run from (its shape, seed and trial count), as a resolved scenario."""
    scenario = json.loads(json.dumps(baseline["scenario_shape"]))
    scenario["seed"] = baseline["seed"]
    if "workload" in scenario:  # a scenario of jobs has none of its own
        scenario["workload"]["trials"] = baseline["workload_trials"]
    return scenario


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def parse_tolerances(text: str) -> dict[str, float]:
    """'p50=2%,p99=5%' -> {'p50': 0.02, 'p99': 0.05}; keys are metric labels (p99.9 or p999)."""
    names = {label.replace(".", ""): label for label, _ in METRICS}
    tolerances = {}
    for item in text.split(","):
        key, _, value = item.strip().partition("=")
        label = names.get(key.replace(".", ""))
        try:
            fraction = float(value.removesuffix("%")) / 100 if value.endswith("%") else -1.0
        except ValueError:
            fraction = -1.0
        if label is None or fraction < 0:
            raise ValueError(f"expected METRIC=N% pairs such as p50=2%,p99=5% with METRIC one of "
                             f"{', '.join(names.values())}, got {item.strip()!r}")
        tolerances[label] = fraction
    return tolerances


def check_exact(baseline: dict, now: Sample, tolerances: dict[str, float] | None = None) -> CheckResult:
    """Every metric's change against its tolerance (0 for all when none are given); without
    tolerances, any trial whose completion time moved fails the check too."""
    old = baseline_sample(baseline)
    old_values, now_values = old.metric_values(), now.metric_values()
    trials = min(old.ok_latency_us.size, now.ok_latency_us.size)
    metrics = [_metric(label, unit, old_values[label], now_values[label], None, tolerances, trials)
               for label, unit in METRICS]
    notes = []
    if tolerances is None:
        moved = int(np.sum((old.trial_latency_ps != now.trial_latency_ps) | (old.failed != now.failed)))
        if moved:
            notes.append(f"{moved} of {old.trial_latency_ps.size} trials differ from the baseline")
    passed = not notes and all(m.status in _PASSING for m in metrics)
    return CheckResult("exact" if tolerances is None else "tolerance", metrics,
                       _unjudged_notes(metrics, old, now) + notes, passed)


def check_stat(baseline: dict, now: Sample, tolerances: dict[str, float] | None = None) -> CheckResult:
    """Two independent samples: the KS test, and bootstrap intervals of the gated percentiles."""
    old = baseline_sample(baseline)
    tolerances = tolerances if tolerances is not None else {f"p{GUARDED_PERCENTILE:g}": 0.0}
    old_us, now_us = old.ok_latency_us, now.ok_latency_us
    old_values, now_values = old.metric_values(), now.metric_values()
    trials = min(old_us.size, now_us.size)
    metrics = [_metric(label, unit, old_values[label], now_values[label], _relative_interval(label, old_us, now_us),
                       tolerances, trials)
               for label, unit in METRICS]
    if not old_us.size or not now_us.size:
        return CheckResult("statistical", metrics, ["no successful trial to compare on one side"], False)
    from scipy.stats import ks_2samp  # here: scipy.stats takes longer to import than a small run takes

    test = ks_2samp(old_us, now_us)
    same = test.pvalue >= KS_ALPHA
    notes = _unjudged_notes(metrics, old, now) + [
        f"Kolmogorov-Smirnov: D = {test.statistic:.3f}, p = {test.pvalue:.3g} "
        f"({'no evidence the distributions differ' if same else 'the distributions differ'} "
        f"at alpha {KS_ALPHA:g}; {old_us.size} vs {now_us.size} trials)"]
    return CheckResult("statistical", metrics, notes, same and all(m.status in _PASSING for m in metrics))


_PASSING = ("ok", "-", "n/a")


def _unjudged_notes(metrics: list[MetricCheck], old: Sample, now: Sample) -> list[str]:
    """One line naming the percentiles too few trials could not judge, and what they need."""
    unjudged = [m.label for m in metrics if m.status == "n/a"]
    if not unjudged:
        return []
    needs = ", ".join(f"{label} needs {stats.trials_needed(_PERCENTILE_OF[label])}" for label in unjudged)
    return [f"not judged: {needs} successful trials on each side, got {old.ok_latency_us.size} (baseline) "
            f"and {now.ok_latency_us.size} (now)"]


def _relative_interval(label: str, old_us: np.ndarray, now_us: np.ndarray):
    """Bootstrap interval of a percentile's relative change, or None for max and busbw."""
    if label not in _PERCENTILE_OF or min(old_us.size, now_us.size) < stats.trials_needed(_PERCENTILE_OF[label]):
        return None
    base_us = float(np.percentile(old_us, _PERCENTILE_OF[label]))
    low_us, high_us = stats.bootstrap_difference_ci(old_us, now_us, _PERCENTILE_OF[label], CONFIDENCE)
    return low_us / base_us, high_us / base_us


def _metric(label: str, unit: str, base: float | None, current: float | None, interval,
            tolerances: dict[str, float] | None, trials: int) -> MetricCheck:
    if label in _PERCENTILE_OF and trials < stats.trials_needed(_PERCENTILE_OF[label]):
        tolerance = None if tolerances is None else tolerances.get(label)
        return MetricCheck(label, unit, base, current, None, tolerance, "n/a")
    worse_sign = -1 if label == "busbw" else 1
    if base is None or current is None:
        change = None
    elif interval is not None:
        low, high = sorted(worse_sign * bound for bound in interval)
        change = (low, high)
    else:
        point = worse_sign * (current / base - 1) + 0.0 if base else 0.0  # + 0.0: no -0.000%
        change = (point, point)
    tolerance = 0.0 if tolerances is None else tolerances.get(label)
    return MetricCheck(label, unit, base, current, change, tolerance, _status(base, current, change, tolerance))


def _status(base, current, change, tolerance) -> str:
    if tolerance is None:
        return "-"
    if change is None:
        return "ok" if base is None and current is None else ("regressed" if current is None else "improved")
    low, high = change
    if low > tolerance:
        return "regressed"
    if high < -tolerance:
        return "improved"
    return "ok"


def format_check(result: CheckResult, title: str) -> str:
    """The check as a table: each metric's baseline, value now, change, tolerance and verdict."""
    header = ["metric", "baseline", "now", "change (worse +)", "tolerance", "status"]
    rows = [header]
    p50 = next((m.baseline for m in result.metrics if m.label == "p50" and m.baseline is not None), 1.0)
    time = TimeUnit.for_typical(p50)
    for m in result.metrics:
        text = time.number if m.unit == "us" else "{:.2f}".format
        rows.append([f"{m.label} ({time.name if m.unit == 'us' else m.unit})",
                     *("-" if value is None else text(value) for value in (m.baseline, m.now)), _change_text(m.change),
                     "not gated" if m.tolerance is None else f"{m.tolerance * 100:g}%", m.status])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [title] + ["  ".join(cell.ljust(w) if i in (0, 5) else cell.rjust(w)
                                 for i, (cell, w) in enumerate(zip(row, widths))).rstrip() for row in rows]
    return "\n".join(lines + result.notes)


def _change_text(change: tuple[float, float] | None) -> str:
    if change is None:
        return "-"
    low, high = change
    if low == high:
        return f"{low * 100:+.3f}%"
    return f"[{low * 100:+.2f}%, {high * 100:+.2f}%]"
