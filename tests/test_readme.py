"""README.md, executed: its examples are held to what they show, as SimPy and Ciw hold their docs.

- ``console`` blocks: each ``$ `` line is run (``fabricsim`` as this interpreter's ``-m fabricsim.cli``),
  in order, in one folder holding the shipped scenarios, as a reader would from the repository; its
  output (stdout, then stderr) must be the lines shown, a line ``...`` or ending in ``...`` standing for
  any lines or any rest of a line;
- ``yaml`` blocks: laid over a shipped scenario (``scenarios/tp4_ring_allgather.yaml``, or the one an
  ``<!-- over PATH -->`` line above the block names), each section the block gives replacing the
  scenario's, and validated as a scenario beside it;
- ``pycon`` blocks: run as doctests from the same folder;
- ``sh`` blocks (installing, running this suite) and ``text`` blocks (synopses, diagrams) are shown only.
"""

from __future__ import annotations

import doctest
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fabricsim.config import ScenarioError, load_scenario

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCK = re.compile(r"(?:<!-- over (?P<base>\S+) -->\n)?```(?P<lang>[\w-]*)\n(?P<body>.*?)```", re.S)
SHOWN_ONLY = {"sh", "text"}


def blocks(lang: str) -> list[tuple[int, str, str | None]]:
    """(line, body, base) of the README's blocks in ``lang``."""
    text = README.read_text()
    return [(text[:match.start()].count("\n") + 1, match["body"], match["base"])
            for match in BLOCK.finditer(text) if match["lang"] == lang]


@pytest.fixture(scope="module")
def repository_folder(tmp_path_factory) -> Path:
    """A folder a reader would run from: the shipped scenarios and the test fixtures they refer to, and
    nothing written yet."""
    folder = tmp_path_factory.mktemp("readme")
    for name in ("scenarios", "tests"):
        (folder / name).symlink_to(ROOT / name)
    return folder


def test_every_block_says_what_it_is():
    languages = {match["lang"] for match in BLOCK.finditer(README.read_text())}
    assert "" not in languages
    assert languages <= SHOWN_ONLY | {"console", "yaml", "pycon"}
    for _, body, _ in blocks("sh"):  # shown only: installing, and running this suite
        assert all(line.startswith("python3 -m pip install") for line in body.splitlines())


def _matches(expected: list[str], actual: list[str]) -> bool:
    if not expected:
        return not actual
    head = expected[0]
    if head == "...":
        return any(_matches(expected[1:], actual[skip:]) for skip in range(len(actual) + 1))
    if not actual:
        return False
    same = actual[0].startswith(head[:-3]) if head.endswith("...") else actual[0] == head
    return same and _matches(expected[1:], actual[1:])


def _commands(body: str) -> list[tuple[str, list[str]]]:
    commands: list[tuple[str, list[str]]] = []
    for line in body.splitlines():
        if line.startswith("$ "):
            commands.append((line[2:], []))
        else:
            commands[-1][1].append(line.rstrip())
    return commands


def test_console_blocks_print_what_they_show(repository_folder):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    ran = 0
    for line, body, _ in blocks("console"):
        for command, expected in _commands(body):
            words = shlex.split(command)
            assert words[0] == "fabricsim", f"README.md:{line}: {command}"
            result = subprocess.run([sys.executable, "-m", "fabricsim.cli", *words[1:]], cwd=repository_folder,
                                    env=env, capture_output=True, text=True, timeout=120)
            actual = [text.rstrip() for text in (result.stdout + result.stderr).splitlines()]
            assert _matches(expected, actual), f"README.md:{line}: $ {command}\n" + "\n".join(actual)
            ran += 1
    assert ran >= 3


def _laid_over(base: dict, block: dict) -> dict:
    """The scenario with each section the block gives replaced by the block's."""
    return {**base, **block}


def _load_laid_over(base: str, block: dict, tmp_path: Path):
    scenario = _laid_over(yaml.safe_load((ROOT / base).read_text()), block)
    folder = tmp_path / "scenarios"  # as if beside the shipped scenarios: their relative paths resolve
    folder.mkdir()
    for name in ("models", "measured"):
        (folder / name).symlink_to(ROOT / "scenarios" / name)
    (tmp_path / "tests").symlink_to(ROOT / "tests")
    (folder / "readme.yaml").write_text(yaml.safe_dump(scenario))
    return load_scenario(str(folder / "readme.yaml"))  # ScenarioError, naming the key, on a wrong example


@pytest.mark.parametrize("line, body, base", blocks("yaml"), ids=lambda value: str(value)[:20])
def test_yaml_blocks_are_valid_scenarios(line, body, base, tmp_path):
    block = yaml.safe_load(body)
    scenario = _load_laid_over(base or "scenarios/tp4_ring_allgather.yaml", block, tmp_path)
    assert set(block) <= set(scenario.resolved()) | {"matrix"}


def test_a_wrong_yaml_block_fails(tmp_path):
    with pytest.raises(ScenarioError, match="fabric.nic.bandwidth: expected a rate"):
        _load_laid_over("scenarios/tp4_ring_allgather.yaml", {"fabric": {"nic": {"bandwidth": "100Gbs"}}}, tmp_path)


def test_pycon_blocks_run_as_doctests(repository_folder, monkeypatch):
    monkeypatch.chdir(repository_folder)
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    found = blocks("pycon")
    assert found
    for line, body, _ in found:
        test = parser.get_doctest(body, {}, "README.md", str(README), line)
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def test_matching_takes_ellipses_for_lines_and_rests_of_lines():
    assert _matches(["a", "...", "d"], ["a", "b", "c", "d"])
    assert _matches(["run into x/..."], ["run into x/123/"])
    assert not _matches(["a", "d"], ["a", "b", "d"])
    assert not _matches(["a", "..."], ["b"])
