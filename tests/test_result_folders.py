"""fabricsim replaces only a result folder it wrote itself: every other target is refused, exit 2, one
line, and the folder around it is left byte for byte as it was."""

import json
import os
import stat

import pytest

from fabricsim.cli import main
from fabricsim.output.result_folder import MARKER
from tests.folder_snapshot import snapshot, workspace

# (command line after the command, the words the one line must hold); run from the workspace
REFUSED = {
    "run_into_the_current_folder": (["run", "tiny.yaml", "-o", "."], "-o .: ", "the current folder"),
    "run_into_the_parent_folder": (["run", "tiny.yaml", "-o", ".."], "-o ..: ", "the current folder or one holding it"),
    "name_dot_dot": (["run", "dotdot.yaml"], "dotdot.yaml: name: ", "a plain file name"),
    "set_name_dot_dot": (["run", "tiny.yaml", "--set", "name=.."], "tiny.yaml: name: ", "a plain file name"),
    "name_dot": (["run", "tiny.yaml", "--set", "name=."], "tiny.yaml: name: ", "a plain file name"),
    "output_dir_of_the_user": (["run", "shared.yaml"], "shared.yaml: output.dir: ", "fabricsim did not write"),
    "output_dir_results": (["run", "tiny.yaml", "--set", "output.dir=results"], "tiny.yaml: output.dir: ",
                           "fabricsim did not write"),
    "run_onto_a_file": (["run", "tiny.yaml", "-o", "notes.txt"], "-o notes.txt: ", "an existing file"),
    "sweep_onto_a_file": (["sweep", "tiny.yaml", "--output", "notes.txt"], "--output notes.txt: ", "an existing file"),
    "compare_onto_a_file": (["compare", "tiny.yaml", "other.yaml", "-o", "notes.txt"], "-o notes.txt: ",
                            "an existing file"),
    "run_onto_a_folder": (["run", "tiny.yaml", "-o", "docs"], "-o docs: ", "fabricsim did not write"),
    "sweep_onto_a_folder": (["sweep", "tiny.yaml", "--output", "docs"], "--output docs: ", "fabricsim did not write"),
    "compare_onto_a_folder": (["compare", "tiny.yaml", "other.yaml", "-o", "docs"], "-o docs: ",
                              "fabricsim did not write"),
    "run_under_a_file": (["run", "tiny.yaml", "-o", "notes.txt/out"], "-o notes.txt/out: ", "under the file"),
    "run_into_the_scenarios_folder": (["run", "sub/inner.yaml", "-o", "sub"], "-o sub: ", "the folder holding"),
    "run_over_a_marked_folder_with_user_files": (["run", "tiny.yaml", "-o", "marked"], "-o marked: ",
                                                 "files fabricsim did not write (mine.txt)"),
    "compare_run_cache_not_fabricsims": (["compare", "tiny.yaml", "other.yaml", "-o", "cmp"],
                                         "tiny.yaml: name (the run cache): ", "fabricsim did not write"),
}


def _prepare(root):
    scenario = workspace(root)
    text = scenario.read_text()
    (root / "dotdot.yaml").write_text(text.replace("name: tiny", "name: '..'"))
    (root / "shared.yaml").write_text(text.replace("output: {plots: false}", "output: {dir: docs, plots: false}"))
    (root / "other.yaml").write_text(text.replace("name: tiny", "name: other"))
    (root / "sub").mkdir()
    (root / "sub" / "inner.yaml").write_text(text)
    (root / "marked").mkdir()
    (root / "marked" / MARKER).write_text(json.dumps({"written_by": "fabricsim", "files": ["summary.json"]}))
    (root / "marked" / "mine.txt").write_text("added by hand\n")
    return scenario


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_target_fabricsim_did_not_write_is_refused_and_left_alone(name, tmp_path, monkeypatch, capsys):
    argv, where, expected = REFUSED[name]
    root = tmp_path / "work"
    root.mkdir()
    _prepare(root)
    monkeypatch.chdir(root)
    if name == "compare_run_cache_not_fabricsims":  # a run cache folder someone made by hand
        from fabricsim.commands.compare import _run_dir
        from fabricsim.config import load_scenario
        cache = root / _run_dir(load_scenario("tiny.yaml"))
        cache.mkdir(parents=True)
        (cache / "keep.txt").write_text("mine\n")
    before = snapshot(tmp_path)
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"fabricsim: {where}") and expected in lines[0], lines[0]
    assert captured.out == ""
    assert snapshot(tmp_path) == before


def test_a_result_folder_fabricsim_wrote_is_replaced_and_marked(tmp_path, monkeypatch, capsys):
    scenario = workspace(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(scenario), "-o", "out/run"]) == 0
    marker = json.loads((tmp_path / "out" / "run" / MARKER).read_text())
    assert marker["written_by"] == "fabricsim"
    assert set(marker["files"]) == {entry.name for entry in (tmp_path / "out" / "run").iterdir()}
    assert main(["run", str(scenario), "-o", "out/run", "--seed", "3"]) == 0
    assert "seed: 3" in (tmp_path / "out" / "run" / "scenario.resolved.yaml").read_text()
    assert [entry.name for entry in (tmp_path / "out").iterdir()] == ["run"]  # no stage or old folder left
    assert main(["sweep", str(scenario), "-b", "1K", "-e", "2K", "--output", "out/sweep"]) == 0
    assert main(["sweep", str(scenario), "-b", "1K", "-e", "4K", "--output", "out/sweep"]) == 0
    assert len((tmp_path / "out" / "sweep" / "sweep.csv").read_text().splitlines()) == 4


def test_a_refused_target_makes_no_parent_folders(tmp_path, monkeypatch, capsys):
    scenario = workspace(tmp_path)
    (tmp_path / "docs" / "new").mkdir()
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    assert main(["run", str(scenario), "-o", "notes.txt/a/b"]) == 2
    assert main(["run", str(scenario), "-o", "docs"]) == 2
    assert snapshot(tmp_path) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_folder_is_refused(tmp_path, monkeypatch, capsys):
    scenario = workspace(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    assert main(["run", str(scenario), "-o", "locked/run"]) == 2
    assert "cannot be written" in capsys.readouterr().err
    assert snapshot(tmp_path) == before


def test_result_folders_follow_the_umask_not_the_parents_mode(tmp_path, monkeypatch, capsys):
    scenario = workspace(tmp_path)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    monkeypatch.chdir(tmp_path)
    old = os.umask(0o027)
    try:
        assert main(["run", str(scenario), "-o", "shared/run"]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((shared / "run").stat().st_mode) == 0o750
