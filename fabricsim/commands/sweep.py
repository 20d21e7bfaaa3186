"""``fabricsim sweep SCENARIO [-b MIN] [-e MAX] [-f FACTOR] [-n ITERS] [-w WARMUP] [-d TYPE] [-o OP] [-c 0|1]
[-I 0|1] [-a ALGO,...] [--output DIR]``: run the scenario's collective over a range of sizes, as nccl-tests
does, print its table (nccl-tests' own layout, for its log parsers) and write sweep.csv, sweep.png (busbw
and time against size, one line per algorithm) and, per algorithm, sweep-<algorithm>.json (nccl-tests'
-J layout). -I 1 adds nccl-tests' per-iteration columns (i_min i_max i_p99 i_cv%) to the table.

-b/-e take nccl-tests sizes (8, 64K, 1G: K, M, G are powers of 1024) or fabricsim ones (1.5MB, 64MiB);
without them the scenario's ``workload.data_sizes`` (per-rank sizes, a list or a start/end/step range)
are swept. -a names the algorithms to compare, auto included (default: the scenario's). -d takes
nccl-tests' type names (float, half, bfloat16, ...) or fabricsim's (float32, ...); -o the reduction
printed for reducing collectives; -c is accepted for nccl-tests' command lines: no data is checked,
so ``#wrong`` is N/A.
--measured LOG (nccl-tests text or -J JSON) draws the measurement on sweep.png, prints the error of
every algorithm at each measured size, and sweeps the log's sizes and type unless -b/-e/-d say otherwise.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

from fabricsim.commands.common import (EXIT_OK, add_scenario_arguments, load_checked, non_negative_int,
                                      result_folder, run_records)
from fabricsim.config import DTYPE_BYTES, Scenario, ScenarioError
from fabricsim.config.size_range import size_range
from fabricsim.formats.measured import format_errors, log_dtype, measured_run, size_errors
from fabricsim.formats.nccl_tests_log import NCCL_DTYPES, REDOPS, MeasuredRun, nccl_tests_program
from fabricsim.output.result_folder import staged_folder
from fabricsim.units import UnitError, parse_bytes

if TYPE_CHECKING:
    from fabricsim.output.sweep import SweepRow

_NCCL_SIZE = re.compile(r"^([0-9]+)([KMGkmg]?)$")


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("sweep", help="nccl-tests style size sweep: table, sweep.csv, sweep.png")
    add_scenario_arguments(parser)
    parser.add_argument("-b", "--minbytes", metavar="SIZE", help="smallest size S (nccl-tests -b)")
    parser.add_argument("-e", "--maxbytes", metavar="SIZE", help="largest size S (nccl-tests -e)")
    parser.add_argument("-f", "--stepfactor", type=float, default=2.0, metavar="F",
                        help="multiplicative step between sizes (default 2)")
    parser.add_argument("-n", "--iters", type=int, metavar="N",
                        help="runs per size, out of place and again in place (default --trials, else 1; "
                             "runs differ only under impairments)")
    parser.add_argument("-w", "--warmup_iters", type=non_negative_int, default=0, metavar="N",
                        help="runs per size left out before the timed ones (default 0)")
    parser.add_argument("-a", "--algorithms", metavar="ALGO,...", help="algorithms to compare, auto included")
    parser.add_argument("-d", "--datatype", type=_datatype, metavar="TYPE",
                        help=f"element type: {', '.join(NCCL_DTYPES)} or {', '.join(DTYPE_BYTES)} "
                             "(default: the measured log's, else float)")
    parser.add_argument("-o", "--op", default="sum", choices=REDOPS, help="reduction operation (default sum)")
    parser.add_argument("-c", "--check", type=int, choices=(0, 1), default=0, metavar="0|1",
                        help="accepted for nccl-tests' command lines; no data is checked (default 0)")
    parser.add_argument("-I", "--per_iter_timing", type=int, choices=(0, 1), default=0, metavar="0|1",
                        help="add the spread of each size's iterations: i_min, i_max, i_p99 (from 100 "
                             "iterations), i_cv%% (default 0)")
    parser.add_argument("--measured", metavar="LOG", help="nccl-tests output (text or -J JSON) to compare with")
    parser.add_argument("--output", metavar="DIR", help="result folder (default results/<name>-sweep)")
    parser.set_defaults(handler=command_sweep)


def command_sweep(args: argparse.Namespace) -> int:
    from fabricsim.output.sweep import format_table, nccl_tests_json, run_sweep
    from fabricsim.runner.work_limits import MAX_TRIALS

    scenario = load_checked(args.scenario, args)
    iterations = args.iters if args.iters is not None else args.trials or 1
    if iterations < 1:
        raise ScenarioError(f"-n: expected a positive number of iterations, got {iterations}")
    if iterations > MAX_TRIALS and not args.allow_large:
        raise ScenarioError(f"-n: expected at most {MAX_TRIALS} iterations per size, got {iterations}; "
                            "--allow-large runs it anyway")
    algorithms = args.algorithms.split(",") if args.algorithms else [scenario.collective.algorithm]
    out_dir = result_folder(args, scenario, "-sweep", "--output")
    measured = measured_run(args.measured, scenario, args.scenario) if args.measured else None
    sizes = measured.sizes_bytes() if measured and args.minbytes is None and args.maxbytes is None \
        else _sizes(args, scenario)
    dtype = args.datatype or (log_dtype(measured) if measured else "float32")
    rows = run_sweep(scenario, args.scenario, algorithms, sizes, iterations, dtype,
                     lambda simulation: list(run_records(simulation, args)), args.warmup_iters, args.op)
    per_iteration = bool(args.per_iter_timing)
    with staged_folder(out_dir) as stage:
        _write_csv(stage / "sweep.csv", rows)
        for algorithm in algorithms:
            document = nccl_tests_json([row for row in rows if row.algorithm == algorithm], scenario.fabric.gpus,
                                       nccl_tests_program(scenario.collective.op), args.warmup_iters, per_iteration)
            (stage / f"sweep-{algorithm}.json").write_text(json.dumps(document, allow_nan=False) + "\n")
        if scenario.output.plots:
            from fabricsim.output.sweep_plot import plot_sweep

            series = {algorithm: tuple(zip(*[(row.size_bytes, row.time_us, row.busbw_GBps)
                                             for row in rows if row.algorithm == algorithm]))
                      for algorithm in algorithms}
            collective = scenario.collective
            plot_sweep(series, stage / "sweep.png", f"{scenario.name}: {collective.op.replace('_', ' ')}, "
                       f"{scenario.fabric.gpus} ranks, {dtype}", f"protocol {collective.protocol}",
                       measured=_measured_series(measured, args.measured) if measured else None)
    print(format_table(rows, scenario.fabric.gpus, args.warmup_iters, bool(args.check), per_iteration))
    for algorithm in algorithms if measured else ():
        simulated_us = {row.size_bytes: row.time_us for row in rows if row.algorithm == algorithm}
        print(format_errors(size_errors(measured, simulated_us), f"{algorithm} ({measured.source})"))
    print(f"results: {out_dir}/")
    return EXIT_OK


def _measured_series(run: MeasuredRun, path: str) -> tuple[str, tuple[list[int], list[float], list[float]]]:
    rows = sorted(run.rows, key=lambda row: row.size_bytes)
    return (f"measured: {Path(path).name}", ([row.size_bytes for row in rows], [row.time_us for row in rows],
                                             [row.busbw_GBps for row in rows]))


def _sizes(args: argparse.Namespace, scenario: Scenario) -> list[int]:
    """The sizes S to sweep: -b/-e/-f, or the scenario's data_sizes."""
    if args.minbytes is None and args.maxbytes is None:
        if scenario.workload.rule != "data_sizes":
            raise ScenarioError(f"{args.scenario}: workload.data_sizes: expected sizes to sweep, "
                                "or -b MIN -e MAX on the command line")
        from fabricsim.collectives.sizes import size_bytes_of

        op, ranks = scenario.collective.op, scenario.fabric.gpus
        return [size_bytes_of(op, ranks, per_rank) for per_rank in scenario.workload.data_sizes]
    start = _nccl_size(args.minbytes or args.maxbytes, "-b")
    end = _nccl_size(args.maxbytes or args.minbytes, "-e")
    try:
        return size_range(start, end, args.stepfactor)
    except ValueError as error:
        raise ScenarioError(f"-b/-e/-f: {error}") from None


def _datatype(text: str) -> str:
    """A data type by nccl-tests' name or fabricsim's, as fabricsim's."""
    if text in NCCL_DTYPES or text in DTYPE_BYTES:
        return NCCL_DTYPES.get(text, text)
    raise argparse.ArgumentTypeError(f"expected one of {', '.join(NCCL_DTYPES)} or {', '.join(DTYPE_BYTES)}, "
                                     f"got {text!r}")


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
    from fabricsim.output.sweep import SweepRow

    names = [field.name for field in dataclasses.fields(SweepRow)]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        for row in rows:
            writer.writerow([f"{value:.6f}" if isinstance(value, float) else value
                             for value in dataclasses.astuple(row)])
