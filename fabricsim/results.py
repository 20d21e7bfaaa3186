"""Results: a run's records turned into summary.json, trials.csv, the resolved scenario and plots.

The folder is assembled under a temporary name beside its destination and moved into place in one
rename, so an interrupted run never leaves a half-written result folder.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import yaml

from fabricsim import __version__, breakdown, counters, plots, stats, usage
from fabricsim.runner import Simulation, TrialRecord, size_bytes_of
from fabricsim.workload import Call
from fabricsim.units import format_bytes


SLOWEST_TRIALS_PLOTTED = 20


def call_size_bytes(call: Call) -> int:
    """The nccl-tests S of one collective call, by its own op and group."""
    return size_bytes_of(call.op, len(call.group), call.per_rank_bytes)


def trial_size_bytes(simulation: Simulation, record: TrialRecord) -> int:
    """The nccl-tests S moved by one trial: the sum over its collectives."""
    return sum(call_size_bytes(call) for call in simulation.plan.trials[record.trial].calls)


def trial_busbw_factor(simulation: Simulation, record: TrialRecord) -> float:
    """busbw / algbw of a trial: its collective's nccl-tests factor, or for a trial of several kinds
    of collective, their factors weighted by the bytes each moves."""
    calls = simulation.plan.trials[record.trial].calls
    kinds = {(call.op, len(call.group)) for call in calls}
    if len(kinds) == 1:
        return stats.busbw_factor(*kinds.pop())
    sizes = [call_size_bytes(call) for call in calls]
    return sum(size * stats.busbw_factor(call.op, len(call.group)) for size, call in zip(sizes, calls)) / sum(sizes)


def trial_communication_us(simulation: Simulation, record: TrialRecord) -> float:
    """The trial's time less the compute between its collectives: the time bandwidth is measured over."""
    trial = simulation.plan.trials[record.trial]
    compute_ps = sum(call.compute_before_ps for call in trial.calls) + trial.compute_after_ps
    return (record.latency_ps - compute_ps) / 1e6


def summarize(simulation: Simulation, records: list[TrialRecord]) -> dict:
    scenario, plan = simulation.scenario, simulation.plan
    ok = [r for r in records if not r.failed]
    latency_us = np.array([r.latency_ps / 1e6 for r in ok])
    # each distinct list of per-rank sizes, with the calls of a trial that ran it
    calls_of = {}
    for record in records:
        calls_of.setdefault(record.per_rank_bytes, plan.trials[record.trial].calls)
    per_rank = sorted(calls_of)
    summary = {
        "scenario": scenario.name,
        "seed": scenario.seed,
        "trials": len(records),
        "failed_trials": len(records) - len(ok),
        "collective": {"op": plan.op, "algorithm": scenario.collective.algorithm,
                       "ranks": plan.ranks, "chunks": scenario.collective.chunks},
        "fabric": simulation.fabric.description,
        "per_rank_bytes": _one_or_list([list(p) if len(p) > 1 else p[0] for p in per_rank]),
        "size_bytes": _one_or_list([[call_size_bytes(call) for call in calls_of[p]] if len(p) > 1
                                    else call_size_bytes(calls_of[p][0]) for p in per_rank]),
        "latency_us": None, "algbw_GBps": None, "busbw_GBps": None,
        "tail_causes": breakdown.tail_causes(records),
        "fabricsim_version": __version__,
    }
    if scenario.collective.algorithm == "auto":  # what auto picked for each size S of the main op
        calls = {call for trial in plan.trials for call in trial.calls if call.op == plan.op}
        picks = {simulation.call_schedule(call).size_bytes: simulation.call_schedule(call).algorithm
                 for call in calls}
        summary["collective"]["picked"] = {str(size): picks[size] for size in sorted(picks)}
    if ok:
        summary["latency_us"] = stats.latency_summary(latency_us)
        median_size = float(np.median([trial_size_bytes(simulation, r) for r in ok]))
        compute_us = float(np.median([(r.latency_ps / 1e6) - trial_communication_us(simulation, r) for r in ok]))
        communication_us = summary["latency_us"]["p50"] - compute_us
        summary["algbw_GBps"] = float(stats.algbw_GBps(median_size, communication_us))
        summary["busbw_GBps"] = summary["algbw_GBps"] * float(np.median([trial_busbw_factor(simulation, r) for r in ok]))
    return summary


def _one_or_list(values: list):
    return values[0] if len(values) == 1 else values


def write_results(out_dir: Path, simulation: Simulation, records: list[TrialRecord], summary: dict) -> None:
    with staged_folder(out_dir) as stage:
        (stage / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        (stage / "scenario.resolved.yaml").write_text(
            yaml.safe_dump(simulation.scenario.resolved(), sort_keys=False))
        _write_trials_csv(stage / "trials.csv", simulation, records)
        if any(record.link_usage is not None for record in records):
            _write_csv(stage / "links.csv", usage.LINK_COLUMNS, usage.link_rows(simulation.fabric, records))
        if simulation.scenario.output.flows:
            _write_csv(stage / "flows.csv", usage.FLOW_COLUMNS, usage.flow_rows(simulation.fabric, records))
        if any(record.ports for record in records):
            _write_csv(stage / "ports.csv", counters.PORT_COLUMNS, counters.port_rows(records))
        if simulation.scenario.output.plots:
            _write_plots(stage, simulation, records)


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[list]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)


def _write_trials_csv(path: Path, simulation: Simulation, records: list[TrialRecord]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["trial", "per_rank_bytes", "latency_us", "algbw_GBps", "busbw_GBps", "failed",
                         *(f"{part}_us" for part in breakdown.PARTS)])
        for record in records:
            latency_us = record.latency_ps / 1e6
            algbw = stats.algbw_GBps(trial_size_bytes(simulation, record), trial_communication_us(simulation, record))
            bandwidth = ("", "") if record.failed else (
                f"{algbw:.6f}", f"{algbw * trial_busbw_factor(simulation, record):.6f}")
            writer.writerow([record.trial, ";".join(map(str, record.per_rank_bytes)), f"{latency_us:.6f}",
                             *bandwidth, int(record.failed),
                             *(f"{part_ps / 1e6:.6f}" for part_ps in breakdown.parts_ps(record))])


def plot_titles(simulation: Simulation, records: list[TrialRecord]) -> tuple[str, str]:
    scenario, plan = simulation.scenario, simulation.plan
    sizes = sorted({n for r in records for n in r.per_rank_bytes})
    size_text = format_bytes(sizes[0]) if len(sizes) == 1 else f"{format_bytes(sizes[0])}..{format_bytes(sizes[-1])}"
    title = f"{scenario.name}: {plan.op.replace('_', ' ')} ({scenario.collective.algorithm}), {plan.ranks} ranks"
    subtitle = f"{size_text} per rank, {len(records)} trials | {simulation.fabric.description}"
    return title, subtitle


def _write_plots(stage: Path, simulation: Simulation, records: list[TrialRecord]) -> None:
    title, subtitle = plot_titles(simulation, records)
    latency_us = np.array([r.latency_ps / 1e6 for r in records])
    failed = np.array([r.failed for r in records])
    if not failed.all():
        plots.plot_cdf(latency_us[~failed], stage / "cdf.png", title, subtitle)
    plots.plot_delay(np.array([r.trial for r in records]), latency_us, failed, stage / "delay.png", title, subtitle)
    slowest = sorted(records, key=lambda r: r.latency_ps, reverse=True)[:SLOWEST_TRIALS_PLOTTED]
    parts_us = np.array([breakdown.parts_ps(r) for r in slowest]).T / 1e6
    plots.plot_breakdown([r.trial for r in slowest], dict(zip(breakdown.CAUSES, parts_us[1:])), stage / "breakdown.png",
                         title, f"the {len(slowest)} slowest of {len(records)} trials, ideal "
                         + "-".join(dict.fromkeys(f"{us:.6g}" for us in (parts_us[0].min(), parts_us[0].max())))
                         + " us")


@contextmanager
def staged_folder(out_dir: Path) -> Iterator[Path]:
    out_dir = out_dir.resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        yield stage
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=out_dir.parent))
            os.replace(out_dir, old / out_dir.name)
            os.replace(stage, out_dir)
            shutil.rmtree(old)
        else:
            os.replace(stage, out_dir)
    finally:
        if stage.exists():
            shutil.rmtree(stage)
