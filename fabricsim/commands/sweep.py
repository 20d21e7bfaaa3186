"""``fabricsim sweep SCENARIO [-b MIN] [-e MAX] [-f FACTOR] [-n ITERS] [-a ALGO,...] [-d TYPE] [-o DIR]``:
run the scenario's collective over a range of sizes, as nccl-tests does, print its table and write
sweep.csv and sweep.png (busbw and time against size, one line per algorithm).

-b/-e take nccl-tests sizes (8, 64K, 1G: K, M, G are powers of 1024) or fabricsim ones (1.5MB, 64MiB);
without them the scenario's ``workload.data_sizes`` (per-rank sizes, a list or a start/end/step range)
are swept. -a names the algorithms to compare, auto included (default: the scenario's).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import re
from pathlib import Path

from fabricsim.commands.common import EXIT_OK, add_scenario_arguments, load_checked, result_folder, run_records
from fabricsim.config import DTYPE_BYTES, Scenario, ScenarioError
from fabricsim.result_folder import staged_folder
from fabricsim.runner import size_bytes_of
from fabricsim.size_range import size_range
from fabricsim.sweep import SweepRow, format_table, run_sweep
from fabricsim.sweep_plot import plot_sweep
from fabricsim.units import UnitError, parse_bytes
from fabricsim.work_limits import MAX_TRIALS

_NCCL_SIZE = re.compile(r"^([0-9]+)([KMGkmg]?)$")


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("sweep", help="nccl-tests style size sweep: table, sweep.csv, sweep.png")
    add_scenario_arguments(parser)
    parser.add_argument("-b", "--minbytes", metavar="SIZE", help="smallest size S (nccl-tests -b)")
    parser.add_argument("-e", "--maxbytes", metavar="SIZE", help="largest size S (nccl-tests -e)")
    parser.add_argument("-f", "--stepfactor", type=float, default=2.0, metavar="F",
                        help="multiplicative step between sizes (default 2)")
    parser.add_argument("-n", "--iters", type=int, metavar="N",
                        help="runs per size (default --trials, else 1; runs differ only under impairments)")
    parser.add_argument("-a", "--algorithms", metavar="ALGO,...", help="algorithms to compare, auto included")
    parser.add_argument("-d", "--datatype", default="float32", choices=sorted(DTYPE_BYTES),
                        help="element type (default float32)")
    parser.add_argument("-o", "--output", metavar="DIR", help="result folder (default results/<name>-sweep)")
    parser.set_defaults(handler=command_sweep)


def command_sweep(args: argparse.Namespace) -> int:
    scenario = load_checked(args.scenario, args)
    iterations = args.iters if args.iters is not None else args.trials or 1
    if iterations < 1:
        raise ScenarioError(f"-n: expected a positive number of iterations, got {iterations}")
    if iterations > MAX_TRIALS and not args.allow_large:
        raise ScenarioError(f"-n: expected at most {MAX_TRIALS} iterations per size, got {iterations}; "
                            "--allow-large runs it anyway")
    algorithms = args.algorithms.split(",") if args.algorithms else [scenario.collective.algorithm]
    out_dir = result_folder(args, scenario, "-sweep")
    rows = run_sweep(scenario, args.scenario, algorithms, _sizes(args, scenario), iterations, args.datatype,
                     lambda simulation: list(run_records(simulation, args)))
    with staged_folder(out_dir) as stage:
        _write_csv(stage / "sweep.csv", rows)
        if scenario.output.plots:
            series = {algorithm: tuple(zip(*[(row.size_bytes, row.time_us, row.busbw_GBps)
                                             for row in rows if row.algorithm == algorithm]))
                      for algorithm in algorithms}
            collective = scenario.collective
            plot_sweep(series, stage / "sweep.png", f"{scenario.name}: {collective.op.replace('_', ' ')}, "
                       f"{scenario.fabric.gpus} ranks, {args.datatype}", f"protocol {collective.protocol}")
    print(format_table(rows))
    print(f"results: {out_dir}/")
    return EXIT_OK


def _sizes(args: argparse.Namespace, scenario: Scenario) -> list[int]:
    """The sizes S to sweep: -b/-e/-f, or the scenario's data_sizes."""
    if args.minbytes is None and args.maxbytes is None:
        if scenario.workload.rule != "data_sizes":
            raise ScenarioError(f"{args.scenario}: workload.data_sizes: expected sizes to sweep, "
                                "or -b MIN -e MAX on the command line")
        op, ranks = scenario.collective.op, scenario.fabric.gpus
        return [size_bytes_of(op, ranks, per_rank) for per_rank in scenario.workload.data_sizes]
    start = _nccl_size(args.minbytes or args.maxbytes, "-b")
    end = _nccl_size(args.maxbytes or args.minbytes, "-e")
    try:
        return size_range(start, end, args.stepfactor)
    except ValueError as error:
        raise ScenarioError(f"-b/-e/-f: {error}") from None


def _nccl_size(text: str, flag: str) -> int:
    """nccl-tests' parsesize (K, M, G = 1024^n), or any size fabricsim's units accept."""
    match = _NCCL_SIZE.match(text)
    if match:
        number, suffix = match.groups()
        return int(number) * 1024 ** " KMG".index(suffix.upper() or " ")
    try:
        return parse_bytes(text)
    except UnitError as error:
        raise ScenarioError(f"{flag}: expected {error}") from None


def _write_csv(path: Path, rows: list[SweepRow]) -> None:
    names = [field.name for field in dataclasses.fields(SweepRow)]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        for row in rows:
            writer.writerow([f"{value:.6f}" if isinstance(value, float) else value
                             for value in dataclasses.astuple(row)])
