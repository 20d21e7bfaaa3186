"""--help is plain text: no markup, every option with its help, defaults shown."""

import argparse

from fabricsim.cli import build_parser, main


def test_help_is_plain_and_every_option_says_what_it_does(capsys):
    parser = build_parser()
    commands = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    for name, subparser in commands.choices.items():
        for action in subparser._actions:
            assert action.help, f"fabricsim {name} {action.option_strings or action.dest}: no help"
        assert main([name, "--help"]) == 0
        text = capsys.readouterr().out
        assert "``" not in text and "  -h, --help" in text
    assert main(["--help"]) == 0
    assert "``" not in capsys.readouterr().out


def test_defaults_are_shown_once(capsys):
    assert main(["run", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "(results do not depend on it) (default 1)" in text and "(default local)" in text
    assert main(["sweep", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert text.count("(default 2)") == 1 and "(default None)" not in text
