"""--help is plain text: no markup, every option with its help, defaults shown."""

import argparse

from fabricsim.cli import build_parser, main
from tests.conftest import python_prints


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


def test_help_and_a_bad_argument_import_no_plots_nor_engine():
    """``fabricsim --help``, ``fabricsim run --help`` and an argument error are answered before the
    runner, the engine, scipy or matplotlib is imported (each command imports them when it runs)."""
    code = ("import sys\nfrom fabricsim.cli import main\n"
            "codes = [main(['--help']), main(['run', '--help']), main(['run', 'x.yaml', '--trials', 'many'])]\n"
            "heavy = ('matplotlib', 'scipy', 'simpy', 'fabricsim.runner.simulation', 'fabricsim.engine')\n"
            "print(codes, sorted(name for name in heavy if name in sys.modules))")
    assert python_prints(code).splitlines()[-1] == "[0, 0, 2] []"


def test_matplotlib_is_imported_only_to_draw():
    """Running trials and folding their records (``fabricsim check``) draws nothing, so imports no matplotlib."""
    code = ("import sys\nimport fabricsim.output.results, fabricsim.output.baseline, fabricsim.commands.check\n"
            "print('matplotlib' in sys.modules)")
    assert python_prints(code) == "False"


def test_numba_is_imported_only_by_a_contended_call():
    """The compiled instant loop's import (numba, some tenths of a second) is paid by runs that have a
    contended call routed in advance, never by a run whose flows never meet."""
    code = ("import sys\nfrom fabricsim.config import load_scenario\nfrom fabricsim.runner.simulation import Simulation\n"
            "def run(name):\n"
            "    Simulation(load_scenario('scenarios/' + name, ('workload.trials=2',))).run()\n"
            "    return 'numba' in sys.modules\n"
            "print(run('tp4_ring_allgather.yaml'), run('leaf_spine_ecmp.yaml'))")
    assert python_prints(code).splitlines()[-1] == "False True"


def test_a_kernel_compiles_where_no_cache_folder_can_be_written():
    """With a cache folder, numba keeps a kernel compiled once per machine; with none (a read-only
    install and home: numba finds no locator), the kernel is compiled afresh instead of failing."""
    code = ("import numba.core.caching as caching\nfrom fabricsim.compiler import compiled\n"
            "from fabricsim.collectives.schedule_times import longest_path\n"
            "def add_one(x):\n    return x + 1\n"
            "kept = compiled(longest_path)\ncaching.CacheImpl._locator_classes = []\nafresh = compiled(add_one)\n"
            "print(type(kept._cache).__name__, type(afresh._cache).__name__, afresh(2))")
    assert python_prints(code).splitlines()[-1] == "FunctionCache NullCache 3"
