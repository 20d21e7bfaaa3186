"""Command line: ``fabricsim run | compare | check | sweep | plan | calibrate | export-fabric``; ``fabricsim COMMAND -h`` for each.

Exit codes: 0 success, 1 a check failed, 2 bad input, 3 an internal error (a bug: one line, the
traceback with --debug), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM), 141 the reader of stdout
went away. Bad input is reported as
one line on stderr, naming the file, the key and what was expected; nothing is written. An interrupted
or terminated run stops its workers and leaves no result folder and no partial one.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
import traceback

from fabricsim.version import __version__
from fabricsim.commands.common import (EXIT_BAD_INPUT, EXIT_BROKEN_PIPE, EXIT_INTERNAL_ERROR, EXIT_INTERRUPTED,
                                      EXIT_TERMINATED)
from fabricsim.config import ScenarioError


COMMANDS = ("run", "compare", "check", "sweep", "plan", "calibrate", "export-fabric")  # in fabricsim.commands
DESCRIPTION = ("Emulate a GPU cluster's network fabric for collective communication. "
               f"Commands: {', '.join(COMMANDS)}; fabricsim COMMAND -h for each.")


class _HelpFormatter(argparse.HelpFormatter):
    """Each option's help ends with its default, unless the help already says it or there is none."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False, [], argparse.SUPPRESS) or "default" in text or not action.option_strings:
            return text
        return f"{text} (default %(default)s)"


class Terminated(BaseException):
    """SIGTERM, raised where the main thread is, so that it unwinds as Ctrl-C does."""


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # one line, not usage + message
        print(f"fabricsim: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; given the arguments, only the command they choose is imported and registered
    (each command imports what it needs: plots, scipy.optimize), else every command."""
    chosen = [word for word in (argv or ()) if word in COMMANDS][:1] or COMMANDS
    parser = _Parser(prog="fabricsim", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"fabricsim {__version__}")
    parser.add_argument("--debug", action="store_true", help="print the traceback of an internal error")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for command in chosen:
        importlib.import_module(f"fabricsim.commands.{command.replace('-', '_')}").register(commands)
    for subparser in commands.choices.values():  # also after the command: fabricsim run x.yaml --debug
        subparser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command and return its exit code (argparse's own exits, --help included, too)."""
    try:
        argv = sys.argv[1:] if argv is None else argv
        args = build_parser(argv).parse_args(argv)
    except SystemExit as stop:
        return stop.code
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if on_main_thread else None
    try:
        return args.handler(args)
    except ScenarioError as error:
        return _fail(f"{error}", EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        return _fail("interrupted; no result folder was written", EXIT_INTERRUPTED)
    except Terminated:
        return _fail("terminated; no result folder was written", EXIT_TERMINATED)
    except BrokenPipeError:  # the reader of stdout is gone: stop quietly, as a command in a pipe does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's own flush has nowhere to go
        return EXIT_BROKEN_PIPE
    except Exception as error:  # a bug: never exit 1, which means "a check failed"
        if args.debug:
            traceback.print_exc()
        hint = "" if args.debug else " (--debug prints the traceback)"
        return _fail(f"internal error: {type(error).__name__}: {error}{hint}".replace("\n", " "), EXIT_INTERNAL_ERROR)
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _fail(message: str, code: int) -> int:
    print(f"fabricsim: {message}", file=sys.stderr)
    return code


def _terminate(signum, frame) -> None:
    raise Terminated


if __name__ == "__main__":
    sys.exit(main())
