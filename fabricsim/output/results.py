"""Results: a run's records, as they arrive, turned into summary.json, trials.csv, links.csv, flows.csv,
ports.csv, the resolved scenario, plots and trace-<trial>.json timelines (fabricsim/formats/trace.py).

Records stream through and are never held: each is written out at once (its rows of trials.csv,
flows.csv and ports.csv; its link usage added to links.csv's totals) and kept only as a few numbers
in ``TrialColumns``, so a run of any length holds a bounded amount of memory per trial and its
percentiles stay exact. The folder is written whole or not at all (``fabricsim.output.result_folder``).
"""

from __future__ import annotations

import csv
import dataclasses
import json
from contextlib import ExitStack
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import yaml

from fabricsim.collectives.sizes import size_bytes_of
from fabricsim.engine import counters
from fabricsim.formats.trace import write_traces
from fabricsim.output import report, stats, summary_text, tail, usage
from fabricsim.output.columns import TrialColumns
from fabricsim.output.painters import RUN_PICTURE_MODULES, Picture, draw_here
from fabricsim.output.result_folder import staged_folder
from fabricsim.records import PARTS, TrialRecord
from fabricsim.runner.simulation import Simulation
from fabricsim.units import PS_PER_US, TimeUnit, format_bytes
from fabricsim.version import __version__
from fabricsim.workload import Call, Trial
from fabricsim.records import CriticalPath


SLOWEST_TRIALS_PLOTTED = 20
SLOWEST_PATHS_NAMED = 3  # the whole job's step: the critical paths summary.json names, slowest first
TRIALS_COLUMNS = ("trial", "per_rank_bytes", "latency_us", "algbw_GBps", "busbw_GBps", "failed",
                  *(f"{part}_us" for part in PARTS), "exposed_comm_us")


def trials_columns(jobs: int) -> tuple[str, ...]:
    """trials.csv's columns: with scenario jobs, each job's step time in the shared step, then alone."""
    return (*TRIALS_COLUMNS, *(f"job{index}_us" for index in range(jobs)),
            *(f"job{index}_alone_us" for index in range(jobs)))


def call_size_bytes(call: Call) -> int:
    """The nccl-tests S of one collective call, by its own op and group."""
    return size_bytes_of(call.op, len(call.group), call.per_rank_bytes)


@dataclass(frozen=True, slots=True)
class Shape:
    """What every trial of one shape of the plan shares: its calls, and the figures that follow."""

    per_rank_bytes: tuple[int, ...]
    calls: tuple[Call, ...]
    size_bytes: int  # the nccl-tests S it moves: the sum over its collectives
    busbw_factor: float  # busbw / algbw
    compute_ps: int  # compute between its collectives and after them: left out of the bandwidth time

    @classmethod
    def of(cls, trial: Trial) -> Shape:
        """A trial's shape. Its busbw factor is its collective's nccl-tests factor, or for a trial of
        several kinds of collective, their factors weighted by the bytes each moves."""
        sizes = [call_size_bytes(call) for call in trial.calls]
        kinds = {(call.op, len(call.group)) for call in trial.calls}
        factor = stats.busbw_factor(*kinds.pop()) if len(kinds) == 1 else sum(
            size * stats.busbw_factor(call.op, len(call.group)) for size, call in zip(sizes, trial.calls)) / sum(sizes)
        compute_ps = sum(call.compute_before_ps for call in trial.calls) + trial.compute_after_ps
        return cls(trial.per_rank_bytes, trial.calls, sum(sizes), factor, compute_ps)


def communication_us(latency_ps, compute_ps):
    """A trial's time less its compute: the time bandwidth is measured over, and in a training step the
    communication compute did not hide, its compute being one chain on each rank (element-wise on arrays)."""
    return (latency_ps - compute_ps) / PS_PER_US


class RunResults:
    """A run's records folded in, in trial order, and let go: their columns and the shapes they ran."""

    def __init__(self, simulation: Simulation) -> None:
        self.simulation = simulation
        self.columns = TrialColumns(len(simulation.plan.trials))
        self.shapes: list[Shape] = []  # in order of first trial; columns.shape indexes this list
        self._shape_ids: dict[int, int] = {}  # the plan's shape index -> index in shapes
        self.links = usage.LinkTotals(simulation.fabric)  # links.csv's totals and the bottleneck
        self.call_latency_ps: dict[str, list[np.ndarray]] = {}  # the whole job's step: per kind of call
        self.job_ps: list[tuple[tuple[int, ...], tuple[int, ...]]] = []  # scenario jobs: (shared, alone) per trial
        # (latency, trial, path), slowest first (of equal latency, the later trial, as tail_causes' slowest)
        self.slowest_paths: list[tuple[int, int, CriticalPath]] = []

    def add(self, record: TrialRecord) -> Shape:
        """Fold one record in; its shape, for the rows written of it."""
        trials = self.simulation.plan.trials
        shape_id = self._shape_ids.setdefault(trials.shape_of(record.trial), len(self.shapes))
        if shape_id == len(self.shapes):
            shape = Shape.of(trials[record.trial])
            if self.simulation.plan.mesh is not None:  # the compute the step cannot hide: its longest chain
                shape = dataclasses.replace(shape, compute_ps=self.simulation.step_compute(trials[record.trial])
                                            .critical_ps)
            self.shapes.append(shape)
        self.columns.append(record, shape_id)
        if record.link_usage is not None:
            self.links.add(record.link_usage, record.latency_ps)
        for kind, latency_ps in (record.call_latency_ps or {}).items():
            self.call_latency_ps.setdefault(kind, []).append(latency_ps)
        if record.job_latency_ps:
            self.job_ps.append((record.job_latency_ps, record.job_alone_ps))
        if record.critical_path is not None:
            self.slowest_paths = sorted([*self.slowest_paths, (record.latency_ps, record.trial, record.critical_path)],
                                        key=lambda row: row[:2], reverse=True)[:SLOWEST_PATHS_NAMED]
        return self.shapes[shape_id]

    @cached_property
    def summary(self) -> dict:
        """summary.json, once every record is in."""
        simulation, columns = self.simulation, self.columns
        scenario, plan = simulation.scenario, simulation.plan
        ok = ~columns.failed
        calls_of = {}  # each distinct list of per-rank sizes, with the calls of a trial that ran it
        for shape in self.shapes:
            calls_of.setdefault(shape.per_rank_bytes, shape.calls)
        per_rank = sorted(calls_of)
        summary = {
            "scenario": scenario.name,
            "seed": scenario.seed,
            "trials": columns.count,
            "failed_trials": columns.count - int(ok.sum()),
            "collective": {"op": plan.op, "algorithm": scenario.collective.algorithm,
                           "ranks": plan.ranks, "chunks": scenario.collective.chunks},
            "fabric": simulation.fabric.description,
            "per_rank_bytes": _one_or_list([list(p) if len(p) > 1 else p[0] for p in per_rank]),
            "size_bytes": _one_or_list([[call_size_bytes(call) for call in calls_of[p]] if len(p) > 1
                                        else call_size_bytes(calls_of[p][0]) for p in per_rank]),
            "latency_us": None, "exposed_comm_us": None, "algbw_GBps": None, "busbw_GBps": None,
            "tail_causes": tail.tail_causes(columns.trial, columns.latency_ps, columns.failed, columns.parts_ps),
            "bottleneck": self.links.busiest() if self.links.trials else None,
            "warnings": list(simulation.fabric.warnings),
            "fabricsim_version": __version__,
        }
        if "auto" in (scenario.collective.algorithm, scenario.collective.protocol):  # auto's picks per size S
            calls = {call for shape in self.shapes for call in shape.calls if call.op == plan.op}
            picks = {simulation.call_schedule(call).size_bytes: (simulation.call_schedule(call).algorithm,
                                                                 simulation.call_pick(call)) for call in calls}
            summary["collective"]["picked"] = {str(size): picks[size][0] for size in sorted(picks)}
            summary["collective"]["picked_protocol"] = {str(size): picks[size][1].protocol for size in sorted(picks)}
            summary["collective"]["why"] = {str(size): picks[size][1].reason for size in sorted(picks)}
        if ok.any():
            latency_ps, shape_ids = columns.latency_ps[ok], columns.shape[ok]
            summary["latency_us"] = stats.latency_summary(latency_ps / PS_PER_US)
            summary["percentiles_unsupported"] = stats.unsupported_percentiles(latency_ps.size)
            median_size = float(np.median(self._by_shape("size_bytes")[shape_ids]))
            compute_ps = self._by_shape("compute_ps")[shape_ids]
            exposed_us = communication_us(latency_ps, compute_ps)
            summary["exposed_comm_us"] = stats.latency_summary(exposed_us)
            compute_us = float(np.median(latency_ps / PS_PER_US - exposed_us))
            median_communication_us = summary["latency_us"]["p50"] - compute_us
            summary["algbw_GBps"] = float(stats.algbw_GBps(median_size, median_communication_us))
            summary["busbw_GBps"] = summary["algbw_GBps"] * float(np.median(self._by_shape("busbw_factor")[shape_ids]))
        if self.call_latency_ps:  # every group's call of each kind, in every successful trial
            summary["call_latency_us"] = {kind: stats.latency_summary(np.concatenate(parts) / PS_PER_US)
                                          | {"calls": int(sum(len(part) for part in parts))}
                                          for kind, parts in sorted(self.call_latency_ps.items())}
        if simulation.jobs:
            summary["jobs"] = self._jobs_summary()
        if plan.mesh is not None:
            compute = simulation.step_compute(plan.trials[0])
            summary["bubble_us"] = compute.bubble_ps / PS_PER_US
            summary["bubble_fraction"] = compute.bubble_ps / compute.critical_ps if compute.critical_ps else 0.0
        if self.slowest_paths:
            summary["critical_path"] = [critical_path_summary(trial, latency_ps, path)
                                        for latency_ps, trial, path in self.slowest_paths]
        return summary

    def _jobs_summary(self) -> list[dict]:
        """Per scenario job, over the successful trials: its step time shared and alone, and its slowdown
        (the median over trials of shared over alone, both with the trial's seed)."""
        shared_ps, alone_ps = (np.array([row[k] for row in self.job_ps], dtype=np.int64).reshape(-1, len(
            self.simulation.jobs)) for k in (0, 1))
        return [{"name": job.name, "gpus": list(job.gpus),
                 "latency_us": stats.latency_summary(shared_ps[:, index] / PS_PER_US) if len(shared_ps) else None,
                 "alone_us": stats.latency_summary(alone_ps[:, index] / PS_PER_US) if len(alone_ps) else None,
                 "slowdown": float(np.median(shared_ps[:, index] / alone_ps[:, index])) if len(shared_ps) else None}
                for index, job in enumerate(self.simulation.jobs)]

    def _by_shape(self, name: str) -> np.ndarray:
        return np.array([getattr(shape, name) for shape in self.shapes])

    def plot_titles(self) -> tuple[str, str]:
        simulation = self.simulation
        scenario, plan = simulation.scenario, simulation.plan
        sizes = sorted({n for shape in self.shapes for n in shape.per_rank_bytes})
        size_text = format_bytes(sizes[0]) if len(sizes) == 1 else f"{format_bytes(sizes[0])}..{format_bytes(sizes[-1])}"
        title = f"{scenario.name}: {plan.op.replace('_', ' ')} ({scenario.collective.algorithm}), {plan.ranks} ranks"
        subtitle = f"{size_text} per rank, {self.columns.count} trials | {simulation.fabric.description}"
        return title, subtitle


def critical_path_summary(trial: int, latency_ps: int, path: CriticalPath) -> dict:
    """summary.json's account of one trial's critical path."""
    return {"trial": trial, "latency_us": latency_ps / PS_PER_US, "compute_us": path.compute_ps / PS_PER_US,
            "by_kind_us": {kind: kind_ps / PS_PER_US for kind, kind_ps in path.kinds_ps},
            "group": path.group, "gpus": list(path.gpus), "group_us": path.group_ps / PS_PER_US,
            "call": path.call, "call_us": path.call_ps / PS_PER_US,
            "link": path.link, "link_utilization": path.link_utilization}


def _one_or_list(values: list):
    return values[0] if len(values) == 1 else values


def collect(simulation: Simulation, records: Iterable[TrialRecord], out_dir: Path | None = None,
            draw: Callable[[list[Picture]], None] = draw_here) -> RunResults:
    """Fold a run's records (in trial order) into its RunResults; given out_dir, write the result
    folder too: the per-trial tables as the records arrive, the rest once they are all in, the
    pictures by `draw` (in this process, or ``Painters.draw``: by workers)."""
    results = RunResults(simulation)
    if out_dir is None:
        for record in records:
            results.add(record)
        return results
    with staged_folder(out_dir) as stage:
        with _Tables(stage, simulation) as tables:
            for record in records:
                tables.write(record, results.add(record))
        if results.links.trials:
            _write_csv(stage / "links.csv", usage.LINK_COLUMNS, results.links.rows())
        (stage / "summary.json").write_text(json.dumps(results.summary, indent=2) + "\n")
        (stage / "scenario.resolved.yaml").write_text(
            yaml.safe_dump(simulation.scenario.resolved(), sort_keys=False))
        if simulation.scenario.output.plots:
            draw(pictures(stage, results))
        write_traces(stage, simulation, results.columns.latency_ps, results.columns.trial)
        (stage / "report.html").write_text(run_report(stage, results))
    return results


class _Tables:
    """The per-trial tables of a result folder, written row by row: trials.csv, flows.csv (with
    ``output.flows``) and ports.csv (from the first trial with port counters)."""

    def __init__(self, stage: Path, simulation: Simulation) -> None:
        self.stage, self.fabric = stage, simulation.fabric
        self._files = ExitStack()
        self._jobs = len(simulation.jobs)
        self._trials = self._table("trials.csv", trials_columns(self._jobs))
        self._flows = self._table("flows.csv", usage.FLOW_COLUMNS) if simulation.scenario.output.flows else None
        self._ports = None

    def __enter__(self) -> _Tables:
        return self

    def __exit__(self, *exc_info) -> None:
        self._files.close()

    def _table(self, name: str, columns: tuple[str, ...]):
        writer = csv.writer(self._files.enter_context((self.stage / name).open("w", newline="")))
        writer.writerow(columns)
        return writer

    def write(self, record: TrialRecord, shape: Shape) -> None:
        self._trials.writerow(trial_row(record, shape, self._jobs))
        if self._flows is not None:
            self._flows.writerows(usage.flow_rows(self.fabric, record))
        if record.ports:
            if self._ports is None:
                self._ports = self._table("ports.csv", counters.PORT_COLUMNS)
            self._ports.writerows(counters.port_rows(record))


def trial_row(record: TrialRecord, shape: Shape, jobs: int = 0) -> list:
    """A trial's row of trials.csv (``jobs``: the scenario's, blank in a failed trial)."""
    exposed_us = communication_us(record.latency_ps, shape.compute_ps)
    algbw = stats.algbw_GBps(shape.size_bytes, exposed_us)
    bandwidth = ("", "") if record.failed else (f"{algbw:.6f}", f"{algbw * shape.busbw_factor:.6f}")
    return [record.trial, ";".join(map(str, record.per_rank_bytes)), f"{record.latency_ps / PS_PER_US:.6f}",
            *bandwidth, int(record.failed), *(f"{part_ps / PS_PER_US:.6f}" for part_ps in record.breakdown.parts_ps()),
            f"{exposed_us:.6f}",
            *((f"{ps / PS_PER_US:.6f}" for ps in record.job_latency_ps + record.job_alone_ps) if record.job_latency_ps
              else [""] * (2 * jobs))]


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[list]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)


def pictures(stage: Path, results: RunResults) -> list[Picture]:
    """The run's pictures to draw into `stage`, the costliest first (the CCDF's log axis, the breakdown's
    bars and labels), so that workers drawing them side by side finish together."""
    plots, breakdown_plot = RUN_PICTURE_MODULES
    title, subtitle = results.plot_titles()
    columns = results.columns
    latency_us, failed, parts_ps = columns.latency_ps / PS_PER_US, columns.failed, columns.parts_ps
    reference = tail.median_row(columns.latency_ps, failed)
    if reference is None:  # every trial failed: no median to measure against
        return [(plots, "plot_delay", (columns.trial, latency_us, failed, stage / "delay.png", title, subtitle))]
    excess_ps = parts_ps - parts_ps[reference]
    causes = np.where(excess_ps.max(axis=1) > 0, np.array(PARTS)[excess_ps.argmax(axis=1)], "none")
    ok = ~failed
    slower = np.flatnonzero((columns.latency_ps > columns.latency_ps[reference]) | failed)
    # the slowest of them, ties in trial order
    slowest = slower[np.argsort(-columns.latency_ps[slower], kind="stable")][:SLOWEST_TRIALS_PLOTTED]
    return [
        (plots, "plot_ccdf", (latency_us[ok], stage / "ccdf.png", title, subtitle, causes[ok], int(failed.sum()))),
        (breakdown_plot, "plot_breakdown", (
            int(columns.trial[reference]), parts_ps[reference] / PS_PER_US, columns.trial[slowest], latency_us[slowest],
            excess_ps[slowest] / PS_PER_US, failed[slowest], stage / "breakdown.png", title,
            f"the {len(slowest)} slowest of {columns.count} trials, against the median trial")),
        (plots, "plot_cdf", (latency_us[ok], stage / "cdf.png", title, subtitle, causes[ok], int(failed.sum()))),
        (plots, "plot_delay", (columns.trial, latency_us, failed, stage / "delay.png", title, subtitle, causes)),
    ]


def run_report(stage: Path, results: RunResults) -> str:
    """report.html of a result folder being written in `stage` (its pictures inline)."""
    title, subtitle = results.plot_titles()
    summary, columns = results.summary, results.columns
    words = summary_text.latency_table(summary) + summary_text.call_kind_lines(summary) \
        + summary_text.step_lines(summary) if summary["latency_us"] \
        else ["every trial failed"]
    slowest = np.argsort(-columns.latency_ps, kind="stable")[:SLOWEST_TRIALS_PLOTTED]
    unit = TimeUnit.for_typical(summary["latency_us"]["p50"] if summary["latency_us"] else 1.0)
    rows = [[str(columns.trial[row]), unit.number(columns.latency_ps[row] / PS_PER_US),
             "yes" if columns.failed[row] else "",
             *(unit.number(part_ps / PS_PER_US) for part_ps in columns.parts_ps[row])] for row in slowest]
    return report.page(title, subtitle, [
        ("Summary", report.preformatted("\n".join(words + summary_text.tail_lines(summary)))),
        ("Pictures", report.pictures([stage / name for name in ("cdf.png", "ccdf.png", "delay.png", "breakdown.png")])),
        (f"The {len(rows)} slowest trials",
         report.table(["trial", f"latency ({unit.name})", "failed",
                       *(f"{tail.PART_WORDS[part]} ({unit.name})" for part in PARTS)],
                      rows, [bool(columns.failed[row]) for row in slowest])),
        ("Scenario", report.preformatted((stage / "scenario.resolved.yaml").read_text())),
    ])

