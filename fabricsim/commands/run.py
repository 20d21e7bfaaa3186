"""``fabricsim run SCENARIO``: run a scenario's trials, write its results, print its percentiles."""

from __future__ import annotations

import argparse

from fabricsim.commands.common import EXIT_OK, add_scenario_arguments, load_checked, result_folder, run_records
from fabricsim.config import Scenario
from fabricsim.results import collect
from fabricsim.runner import Simulation
from fabricsim.units import format_bytes


def register(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="run a scenario's trials and write its results")
    add_scenario_arguments(run)
    run.add_argument("-o", "--output", metavar="DIR", help="result folder (default results/<name>)")
    run.set_defaults(handler=command_run)


def command_run(args: argparse.Namespace) -> int:
    scenario = load_checked(args.scenario, args)
    out_dir = result_folder(args, scenario)
    simulation = Simulation(scenario, source=args.scenario)
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
    tail = [f"{label} trial {cause['trial']} ({cause['latency_us']:.2f} us): {cause['cause']} "
            f"{100 * cause['share']:.1f}%, ideal {100 * cause['ideal_share']:.1f}%"
            for label, cause in summary.get("tail_causes", {}).items()]
    tail_line = "dominant cause: " + "; ".join(tail)
    if latency is None:
        lines.append("every trial failed")
        return "\n".join(lines + [tail_line] * bool(tail))
    keys = ("min", "p50", "p90", "p99", "p999", "max", "mean")
    lines.append("latency (us) " + "".join(f"{key:>12}" for key in keys))
    lines.append(" " * 13 + "".join(f"{latency[key]:>12.2f}" for key in keys))
    lines.append(f"at p50: algbw {summary['algbw_GBps']:.2f} GB/s, busbw {summary['busbw_GBps']:.2f} GB/s")
    return "\n".join(lines + [tail_line] * bool(tail))
