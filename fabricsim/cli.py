"""Command line: ``fabricsim run SCENARIO [-o DIR] [--trials N] [--seed S] [--set key.path=value ...]``.

The other subcommands (compare, check) live in ``fabricsim.commands``, one module each.

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
from fabricsim.parallel import run_trials
from fabricsim.runner import Simulation, TrialRecord
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
    from fabricsim.commands import check, compare  # imported here: they build on this module's helpers
    compare.register(commands)
    check.register(commands)
    __import__("fabricsim.commands.plan").commands.plan.register(commands)
    __import__("fabricsim.commands.sweep").commands.sweep.register(commands)
    return parser


def add_scenario_arguments(parser: argparse.ArgumentParser, nargs: str | None = None) -> None:
    parser.add_argument("scenario", nargs=nargs, help="scenario YAML file")
    parser.add_argument("--trials", type=_positive_int, metavar="N", help="override the trial count")
    parser.add_argument("--seed", type=_non_negative_int, metavar="S", help="override the seed")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override any scenario key (repeatable)")
    parser.add_argument("--workers", type=_positive_int, default=1, metavar="N",
                        help="local worker processes for the trials (results do not depend on it)")
    parser.add_argument("--executor", choices=("local", "dask"), default="local",
                        help="where trials run: local processes, or a Dask distributed cluster")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="the Dask scheduler (--executor dask)")


def run_records(simulation: Simulation, args: argparse.Namespace, source: str | None = None) -> list[TrialRecord]:
    """The simulation's trials, run where the command line says; `source` names the scenario file
    when the command takes several (default args.scenario)."""
    if args.executor == "dask" and not args.scheduler:
        raise ScenarioError("--executor dask: expected --scheduler tcp://HOST:PORT")
    scheduler = args.scheduler if args.executor == "dask" else None
    return list(run_trials(simulation, source or args.scenario, args.workers, scheduler))


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
    out_dir = Path(args.output or default_result_dir(scenario))
    records = run_records(simulation, args)
    summary = summarize(simulation, records)
    write_results(out_dir, simulation, records, summary)
    print(format_summary(scenario, simulation, summary))
    print(f"results: {out_dir}/")
    return EXIT_OK


def default_result_dir(scenario: Scenario) -> Path:
    return Path(scenario.output.dir or Path("results") / scenario.name)


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
    """Run one command and return its exit code (argparse's own exits, --help included, too)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:
        return stop.code
    try:
        return args.handler(args)
    except ScenarioError as error:
        print(f"fabricsim: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
