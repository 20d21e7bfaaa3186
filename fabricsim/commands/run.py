"""``fabricsim run SCENARIO``: run a scenario's trials, write its results, print its percentiles."""

from __future__ import annotations

import argparse
from pathlib import Path

from fabricsim.commands.common import EXIT_OK, add_scenario_arguments, default_result_dir, run_records, scenario_overrides
from fabricsim.config import Scenario, load_scenario
from fabricsim.results import collect
from fabricsim.runner import Simulation
from fabricsim.breakdown import PART_WORDS
from fabricsim.units import TimeUnit, format_bytes


def register(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="run a scenario's trials and write its results")
    add_scenario_arguments(run)
    run.add_argument("-o", "--output", metavar="DIR", help="result folder (default results/<name>)")
    run.set_defaults(handler=command_run)


def command_run(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.scenario, scenario_overrides(args))
    simulation = Simulation(scenario, source=args.scenario)
    out_dir = Path(args.output or default_result_dir(scenario))
    results = collect(simulation, run_records(simulation, args), out_dir)
    print(format_summary(scenario, simulation, results.summary))
    print(f"results: {out_dir}/")
    return EXIT_OK


def format_summary(scenario: Scenario, simulation: Simulation, summary: dict) -> str:
    collective = summary["collective"]
    per_rank = summary["per_rank_bytes"]
    size_text = format_bytes(per_rank) if isinstance(per_rank, int) else f"{len(per_rank)} sizes"
    lines = [
        f"{scenario.name}: {collective['op']} ({collective['algorithm']}), {collective['ranks']} ranks, "
        f"{size_text} per rank, {summary['trials']} trials ({summary['failed_trials']} failed)",
        f"fabric: {simulation.fabric.description}",
    ]
    if "picked" in collective:
        lines.append("auto picked: " + ", ".join(f"{name} for {format_bytes(int(size))}"
                                                 for size, name in collective["picked"].items()))
    latency = summary["latency_us"]
    lines += tail_lines(summary)
    if latency is None:
        return "\n".join(lines[:2] + ["every trial failed"] + lines[2:])
    unit = TimeUnit.for_typical(latency["p50"])
    keys = ("min", "p50", "p90", "p99", "p999", "max", "mean")
    width = max(9, *(len(unit.number(value)) + 2 for value in latency.values() if value is not None))
    table = [f"latency ({unit.name})".ljust(13) + "".join(f"{_LABELS.get(key, key):>{width}}" for key in keys),
             " " * 13 + "".join(f"{'n/a' if latency[key] is None else unit.number(latency[key]):>{width}}"
                                for key in keys)]
    missing = summary.get("percentiles_unsupported", {})
    if missing:
        table.append(" " * 13 + "n/a: " + "; ".join(f"{_LABELS.get(key, key)} {reason}" for key, reason in missing.items()))
    table.append(f"at p50: algbw {summary['algbw_GBps']:.2f} GB/s, busbw {summary['busbw_GBps']:.2f} GB/s")
    return "\n".join(lines[:2] + table + lines[2:])


_LABELS = {"p999": "p99.9"}


def tail_lines(summary: dict) -> list[str]:
    """What made the slow trials slower than the median trial, and what stopped the failed ones."""
    causes = summary.get("tail_causes", {})
    median = causes.get("median")
    lines = []
    if median is not None:
        unit = TimeUnit.for_typical(median["latency_us"])
        part = max(median["parts_us"], key=median["parts_us"].get)
        lines.append(f"median trial {median['trial']}: {unit.text(median['latency_us'])}, mostly {PART_WORDS[part]} "
                     f"({unit.text(median['parts_us'][part])})" + (f"; ideal {unit.text(median['parts_us']['ideal'])}"
                                                                    if part != "ideal" else ""))
        lines.append("beyond the median:")
        for label, name in (("p99", "p99 trial"), ("max", "slowest trial")):
            if label not in causes:
                continue
            slow = causes[label]
            cause = (f"mostly {PART_WORDS[slow['cause']]} (+{unit.text(slow['cause_us'])})"
                     if slow["cause"] != "none" else "no part above the median trial's")
            lines.append(f"  {name} {slow['trial']}: {unit.text(slow['latency_us'])}, "
                         f"+{unit.text(slow['beyond_median_us'])}, {cause}")
        if "p99" not in causes:
            lines.append(f"  p99 trial: {summary.get('percentiles_unsupported', {}).get('p99', 'not named')}")
    if "failed" in causes:
        failed = causes["failed"]
        lines.append(f"  {failed['trials']} failed trial(s), never completed (first: trial {failed['first_trial']}): "
                     f"{PART_WORDS.get(failed['cause'], failed['cause'])}")
    return lines
