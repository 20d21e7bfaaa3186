"""Command line: ``fabricsim run SCENARIO [-o DIR] [--trials N] [--seed S] [--set key.path=value ...]``.

Exit codes: 0 success, 1 a check failed, 2 bad input. Bad input is reported as one line on stderr,
naming the file, the key and what was expected; nothing is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fabricsim import __version__
from fabricsim.config import Scenario, ScenarioError, load_scenario
from fabricsim.results import summarize, write_results
from fabricsim.runner import Simulation
from fabricsim.units import format_bytes

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        print(f"fabricsim: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fabricsim", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"fabricsim {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("run", help="run a scenario's trials and write its results")
    add_scenario_arguments(run)
    run.add_argument("-o", "--output", metavar="DIR", help="result folder (default results/<name>)")
    run.set_defaults(handler=command_run)
    return parser


def add_scenario_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", help="scenario YAML file")
    parser.add_argument("--trials", type=_positive_int, metavar="N", help="override the trial count")
    parser.add_argument("--seed", type=_non_negative_int, metavar="S", help="override the seed")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override any scenario key (repeatable)")


def scenario_overrides(args: argparse.Namespace) -> tuple[str, ...]:
    extra = []
    if args.trials is not None:
        extra.append(f"workload.trials={args.trials}")
    if args.seed is not None:
        extra.append(f"seed={args.seed}")
    return tuple(args.overrides) + tuple(extra)


def command_run(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.scenario, scenario_overrides(args))
    simulation = Simulation(scenario, source=args.scenario)
    out_dir = Path(args.output or scenario.output.dir or Path("results") / scenario.name)
    records = simulation.run()
    summary = summarize(simulation, records)
    write_results(out_dir, simulation, records, summary)
    print(format_summary(scenario, simulation, summary))
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
    latency = summary["latency_us"]
    if latency is None:
        lines.append("every trial failed")
        return "\n".join(lines)
    keys = ("min", "p50", "p90", "p99", "p999", "max", "mean")
    lines.append("latency (us) " + "".join(f"{key:>12}" for key in keys))
    lines.append(" " * 13 + "".join(f"{latency[key]:>12.2f}" for key in keys))
    lines.append(f"at p50: algbw {summary['algbw_GBps']:.2f} GB/s, busbw {summary['busbw_GBps']:.2f} GB/s")
    return "\n".join(lines)


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except ScenarioError as error:
        print(f"fabricsim: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
