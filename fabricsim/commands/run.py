"""``fabricsim run SCENARIO``: run a scenario's trials, write its results, print its percentiles."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from fabricsim.commands.common import (EXIT_OK, add_scenario_arguments, lasting_objects, load_checked, result_folder,
                                      run_records)
from fabricsim.config import Scenario
from fabricsim.units import format_bytes

if TYPE_CHECKING:
    from fabricsim.runner.simulation import Simulation


def register(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="run a scenario's trials and write its results")
    add_scenario_arguments(run)
    run.add_argument("-o", "--output", metavar="DIR", help="result folder (default results/<name>)")
    run.set_defaults(handler=command_run)


def command_run(args: argparse.Namespace) -> int:
    from fabricsim.output.painters import RUN_PICTURE_MODULES, RUN_WARM_UP, Painters

    with lasting_objects() as loaded:
        scenario = load_checked(args.scenario, args)
        out_dir = result_folder(args, scenario)
        # forked before the modules below load: the workers import matplotlib while this process imports
        # the runner and runs the trials, then draw the pictures side by side
        with Painters(RUN_PICTURE_MODULES if scenario.output.plots else (), RUN_WARM_UP) as painters:
            from fabricsim.formats.trace import check_trace_trials
            from fabricsim.output.results import collect
            from fabricsim.runner.simulation import Simulation

            simulation = Simulation(scenario, source=args.scenario)
            check_trace_trials(simulation, args.scenario)
            loaded()
            results = collect(simulation, run_records(simulation, args), out_dir, painters.draw)
    print(format_summary(scenario, simulation, results.summary))
    print(f"results: {out_dir}/")
    return EXIT_OK


def format_summary(scenario: Scenario, simulation: Simulation, summary: dict) -> str:
    from fabricsim.output.summary_text import call_kind_lines, job_lines, latency_table, step_lines, tail_lines

    collective = summary["collective"]
    per_rank = summary["per_rank_bytes"]
    size_text = format_bytes(per_rank) if isinstance(per_rank, int) else f"{len(per_rank)} sizes"
    lines = [
        f"{scenario.name}: {collective['op']} ({collective['algorithm']}), {collective['ranks']} ranks, "
        f"{size_text} per rank, {summary['trials']} trials ({summary['failed_trials']} failed)",
        f"fabric: {simulation.fabric.description}",
    ]
    if "picked" in collective:
        lines.append("auto picked: " + ", ".join(f"{name}/{collective['picked_protocol'][size]} for "
                                                 f"{format_bytes(int(size))}"
                                                 for size, name in collective["picked"].items()))
    if summary["latency_us"] is None:
        return "\n".join(lines + ["every trial failed"] + bottleneck_lines(summary) + tail_lines(summary))
    return "\n".join(lines + latency_table(summary) + job_lines(summary) + call_kind_lines(summary)
                     + step_lines(summary) + bottleneck_lines(summary) + tail_lines(summary))


def bottleneck_lines(summary: dict) -> list[str]:
    """The busiest link of the run and the fabric's warnings."""
    lines = []
    if summary.get("bottleneck"):
        busiest = summary["bottleneck"]
        lines.append(f"bottleneck: {busiest['link']} ({busiest['kind']}, {busiest['capacity_Gbps']:.6g} Gbps), "
                     f"{100 * busiest['utilization']:.1f}% utilized")
    return lines + [f"warning: {warning}" for warning in summary.get("warnings", ())]
