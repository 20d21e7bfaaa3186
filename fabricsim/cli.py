"""Command line: ``fabricsim run | compare | check | sweep | plan | calibrate | export-fabric``; ``fabricsim COMMAND -h`` for each.

Exit codes: 0 success, 1 a check failed, 2 bad input. Bad input is reported as one line on stderr,
naming the file, the key and what was expected; nothing is written.
"""

from __future__ import annotations

import argparse
import sys

from fabricsim import __version__
from fabricsim.commands import calibrate, check, compare, export_fabric, plan, run, sweep
from fabricsim.commands.common import EXIT_BAD_INPUT
from fabricsim.config import ScenarioError


DESCRIPTION = ("Emulate a GPU cluster's network fabric for collective communication. "
               "Commands: run, compare, check, sweep, plan; fabricsim COMMAND -h for each.")


class _HelpFormatter(argparse.HelpFormatter):
    """Each option's help ends with its default, unless the help already says it or there is none."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False, [], argparse.SUPPRESS) or "default" in text or not action.option_strings:
            return text
        return f"{text} (default %(default)s)"


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # one line, not usage + message
        print(f"fabricsim: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fabricsim", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"fabricsim {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for command in (run, compare, check, sweep, plan, calibrate, export_fabric):
        command.register(commands)
    return parser


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
