"""What the commands share: exit codes, the scenario arguments, overrides, and running the trials.

Exit codes: 0 success, 1 a check failed, 2 bad input, 3 an internal error, 130 interrupted,
143 terminated. The command modules import the runner, the engine and the plots inside the commands
that use them, so that ``fabricsim --help`` and a bad argument are answered at once.
"""

from __future__ import annotations

import argparse
import gc
import re
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from fabricsim.config import Scenario, ScenarioError, load_scenario
from fabricsim.output.result_folder import check_target

if TYPE_CHECKING:
    from fabricsim.records import TrialRecord
    from fabricsim.runner.simulation import Simulation

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT, EXIT_INTERNAL_ERROR = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_TERMINATED = 128 + 2, 128 + 15  # the shell's codes for SIGINT and SIGTERM
EXIT_BROKEN_PIPE = 128 + 13  # SIGPIPE's: the reader of stdout went away (fabricsim run ... | head)
_SCHEDULER_ADDRESS = re.compile(r"^(tcp|tls|ws|wss|ucx)://[A-Za-z0-9_.\-\[\]:]+:[0-9]{1,5}$")


def add_scenario_arguments(parser: argparse.ArgumentParser, nargs: str | None = None) -> None:
    parser.add_argument("scenario", nargs=nargs, help="scenario YAML file")
    parser.add_argument("--trials", type=positive_int, metavar="N", help="override the trial count")
    parser.add_argument("--seed", type=non_negative_int, metavar="S", help="override the seed")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override any scenario key (repeatable)")
    parser.add_argument("--workers", type=positive_int, default=1, metavar="N",
                        help="local worker processes for the trials (results do not depend on it)")
    parser.add_argument("--executor", choices=("local", "dask"), default="local",
                        help="where trials run: local processes, or a Dask distributed cluster")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="the Dask scheduler (--executor dask)")
    parser.add_argument("--allow-large", action="store_true",
                        help="run work past fabricsim's size limits (GPUs, trials, transfers, flaps)")


@contextmanager
def lasting_objects() -> Iterator[Callable[[], None]]:
    """Around a command: the garbage collector pauses while the command imports its modules and builds
    what lasts all run (the simulation), until it calls the function given (``loaded()``); what was made
    is then frozen, out of the collector's walks, until the command ends. The collector would otherwise
    walk those few hundred thousand objects again and again as they load, and at each full collection
    after: a tenth of a short run's time. The engine then leaves the freezing to the command
    (``engine.models``); a caller that froze objects or paused the collector itself is left alone."""
    if gc.get_freeze_count() or not gc.isenabled():
        yield lambda: None
        return

    def loaded() -> None:
        if not gc.isenabled():
            gc.freeze()
            gc.enable()

    gc.disable()
    try:
        yield loaded
    finally:
        loaded()
        gc.unfreeze()


def load_checked(path: str, args: argparse.Namespace, extra_overrides: tuple[str, ...] = ()) -> Scenario:
    """The scenario at path with the command line's overrides, its work within limits unless --allow-large."""
    from fabricsim.runner.work_limits import check_work

    scenario = load_scenario(path, scenario_overrides(args) + extra_overrides)
    check_work(scenario, path, args.allow_large)
    return scenario


def run_records(simulation: Simulation, args: argparse.Namespace, source: str | None = None) -> Iterator[TrialRecord]:
    """The simulation's trials, run where the command line says, their records in trial order as they
    come; `source` names the scenario file when the command takes several (default args.scenario)."""
    from fabricsim.runner.parallel import run_trials
    from fabricsim.runner.work_limits import MAX_WORKERS

    if args.scheduler and args.executor != "dask":
        raise ScenarioError("--scheduler: expected --executor dask with it (trials run locally otherwise)")
    if args.executor == "dask" and not args.scheduler:
        raise ScenarioError("--executor dask: expected --scheduler tcp://HOST:PORT")
    if args.executor == "dask" and not _SCHEDULER_ADDRESS.match(args.scheduler):
        raise ScenarioError(f"--scheduler: expected a Dask scheduler address such as tcp://HOST:PORT, "
                            f"got {args.scheduler!r}")
    if args.workers > MAX_WORKERS and not args.allow_large:
        raise ScenarioError(f"--workers: expected at most {MAX_WORKERS} local worker processes, got {args.workers}; "
                            "--allow-large runs it anyway")
    scheduler = args.scheduler if args.executor == "dask" else None
    return run_trials(simulation, source or args.scenario, args.workers, scheduler)


def scenario_overrides(args: argparse.Namespace) -> tuple[str, ...]:
    extra = []
    if args.trials is not None:
        extra.append(f"workload.trials={args.trials}")
    if args.seed is not None:
        extra.append(f"seed={args.seed}")
    return tuple(args.overrides) + tuple(extra)


def refuse_foreign_file(path: Path, header: str, flag: str) -> None:
    """Refuse (ScenarioError) a file path outside an existing folder, or anything at ``path`` but a file
    whose first line starts with ``header``: one this command wrote."""
    if not path.parent.is_dir():
        raise ScenarioError(f"{flag} {path}: expected a file in an existing folder")
    if not path.exists():
        return
    try:
        with path.open() as handle:
            ours = path.is_file() and handle.readline().startswith(header)
    except (OSError, UnicodeDecodeError):
        ours = False
    if not ours:
        raise ScenarioError(f"{flag} {path}: expected a new file or one that {header.lstrip('# ')} wrote; "
                            "refusing to replace it")


def write_file(path: Path, text: str, flag: str) -> None:
    """Write a command's output file; a folder that refuses it is bad input (ScenarioError)."""
    try:
        path.write_text(text)
    except OSError as error:
        raise ScenarioError(f"{flag} {path}: cannot write the file ({error.strerror})") from None


def default_result_dir(scenario: Scenario) -> Path:
    return Path(scenario.output.dir or Path("results") / scenario.name)


def result_folder(args: argparse.Namespace, scenario: Scenario, suffix: str = "", flag: str = "-o") -> Path:
    """The folder a command writes its results to (its ``flag``, -o or --output, else output.dir or
    results/<name>, plus suffix), checked before any work: fabricsim replaces only a result folder it
    wrote itself."""
    if args.output:
        out_dir, where = Path(args.output), f"{flag} {args.output}"
    else:
        key = "output.dir" if scenario.output.dir else "name"
        out_dir, where = Path(f"{default_result_dir(scenario)}{suffix}"), f"{args.scenario}: {key}"
    check_target(out_dir, where, [args.scenario])
    return out_dir


def positive_int(text: str) -> int:
    value = non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value
