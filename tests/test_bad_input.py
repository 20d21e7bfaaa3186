"""Bad input: one line naming the file, the key and what was expected; exit 2; nothing written."""

import os
import subprocess
import sys
import textwrap

import pytest

import fabricsim.commands.run as run_command
from fabricsim.cli import main
from fabricsim.config import load_scenario
from tests.conftest import ROOT, SCENARIOS
from tests.folder_snapshot import TINY

GOOD = """\
name: bad
fabric: {hosts: 4, nic: {bandwidth: 100Gbps}}
collective: {op: all_gather}
workload: {rule: data_sizes, data_sizes: [1MiB]}
"""

CASES = {
    "malformed_yaml": ("name: bad\nfabric: {hosts: 4\n", "malformed YAML"),
    "not_a_mapping": ("- just\n- a list\n", "expected a mapping"),
    "unknown_key": (GOOD.replace("hosts: 4", "hostz: 4"), "fabric.hostz: unknown key"),
    "wrong_unit": (GOOD.replace("100Gbps", "100GB"), "fabric.nic.bandwidth: expected a rate"),
    "unitless_time": (GOOD + "impairments: {jitter: {distribution: constant, value: 5}}\n",
                      "impairments.jitter.value: expected a time"),
    "wrong_type": (GOOD.replace("hosts: 4", "hosts: four"), "fabric.hosts: expected a valid integer"),
    "impossible_topology": (GOOD.replace("hosts: 4", "hosts: 1"), "fabric: expected at least 2 GPUs"),
    "unknown_op": (GOOD.replace("all_gather", "all_scatter"), "collective.op: expected one of"),
    "missing_name": (GOOD.replace("name: bad\n", ""), "name: required key is missing"),
    "loss_rate_above_one": (GOOD + "impairments: {loss: {rate: 1.5}}\n", "impairments.loss.rate: expected less than 1"),
    "tp_not_the_rank_count": (
        GOOD.replace("workload: {rule: data_sizes, data_sizes: [1MiB]}",
                     "workload: {rule: tensor_parallel, model: models/fashion_mnist_mlp.yaml, "
                     "dataset_samples: 60000, batch_size: 8192, parallelism: {tp: 8}}"),
        "workload.parallelism.tp: expected the collective's rank count 4"),
    "missing_model_file": (
        GOOD.replace("workload: {rule: data_sizes, data_sizes: [1MiB]}",
                     "workload: {rule: data_parallel, model: models/nope.yaml, dataset_samples: 1, batch_size: 1}"),
        "workload.model: expected a file path relative to the scenario"),
    "rule_without_its_inputs": (GOOD.replace("rule: data_sizes, data_sizes: [1MiB]", "rule: tensor_parallel"),
                                "workload: rule tensor_parallel needs workload.model"),
    "packet_model_with_launch_skew": (
        GOOD.replace("hosts: 4,", "hosts: 4, model: packet,")
        + "impairments: {launch_skew: {distribution: exponential, mean: 1us}}\n",
        "impairments.launch_skew: expected fabric.model flow"),
    "jitter_with_wrong_parameters": (GOOD + "impairments: {jitter: {distribution: normal, mean: 1us}}\n",
                                     "impairments.jitter: expected distribution normal to take exactly"),
}


def _scenario_file(tmp_path, text):
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    (tmp_path / "models").symlink_to(SCENARIOS / "models")
    return path


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_scenario_is_one_clear_line(name, tmp_path, capsys):
    text, expected = CASES[name]
    path = _scenario_file(tmp_path, text)
    out = tmp_path / "out"
    assert main(["run", str(path), "-o", str(out)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert str(path) in lines[0] and expected in lines[0], lines[0]
    assert "Traceback" not in captured.err and captured.out == ""
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name not in ("scenario.yaml", "models")] == []


@pytest.mark.parametrize("argv, expected", [
    (["run", "missing.yaml"], "missing.yaml: cannot read the file"),
    (["run", str(SCENARIOS / "tp4_ring_allgather.yaml"), "--set", "fabric.nic.bandwidth"], "expected key.path=value"),
    (["run", str(SCENARIOS / "tp4_ring_allgather.yaml"), "--set", "fabric.nic.speed=1Gbps"],
     "fabric.nic.speed: unknown key"),
    (["run", str(SCENARIOS / "tp4_ring_allgather.yaml"), "--trials", "0"], "expected a positive integer"),
    (["run", str(SCENARIOS / "tp4_ring_allgather.yaml"), "--seed", "x"], "expected an integer"),
    (["fly"], "invalid choice"),
])
def test_bad_command_line_is_one_clear_line(argv, expected, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err


def test_the_installed_command_exits_2_without_a_traceback(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent(CASES["unknown_key"][0]))
    result = subprocess.run([sys.executable, "-m", "fabricsim.cli", "run", str(path)],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "results").exists()


def test_a_reader_that_goes_away_ends_the_command_quietly_with_sigpipes_code(tmp_path):
    """fabricsim run ... | head: the table has nowhere to go once the reader is gone; the results are
    written, and the command ends as a command in a pipe does (141, nothing on stderr), not as a bug (3)."""
    (tmp_path / "tiny.yaml").write_text(TINY)
    process = subprocess.Popen([sys.executable, "-m", "fabricsim.cli", "run", "tiny.yaml", "-o", "out"], cwd=tmp_path,
                               env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    process.stdout.close()  # the reader is gone before the table is printed
    stderr = process.stderr.read()
    assert process.wait() == 141 and stderr == b""
    assert (tmp_path / "out" / "summary.json").exists()


def test_an_internal_error_is_exit_3_in_one_line_and_debug_adds_the_traceback(monkeypatch, capsys):
    def broken(args):
        raise RuntimeError("an invariant broke")

    monkeypatch.setattr(run_command, "register", _register_with(broken, run_command.register))
    argv = ["run", str(SCENARIOS / "tp4_ring_allgather.yaml")]
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert err.splitlines() == ["fabricsim: internal error: RuntimeError: an invariant broke "
                                "(--debug prints the traceback)"]
    assert main(argv + ["--debug"]) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and err.splitlines()[-1] == "fabricsim: internal error: RuntimeError: an invariant broke"


def _register_with(handler, register):
    def registered(commands):
        register(commands)
        commands.choices["run"].set_defaults(handler=handler)
    return registered


def test_an_n_to_1_oversubscription_is_n_not_a_base_60_number(tmp_path):
    """YAML 1.1 reads 2:1 as 2 x 60 + 1 = 121; fabricsim reads it as the ratio it means."""
    text = GOOD.replace("hosts: 4,", "hosts: 4, topology: leaf_spine, clos: {hosts_per_leaf: 2, oversubscription: 2:1},")
    path = tmp_path / "ratio.yaml"
    path.write_text(text)
    assert load_scenario(path).fabric.clos.oversubscription == 2.0
    assert load_scenario(path, ("fabric.clos.oversubscription=3:2",)).fabric.clos.oversubscription == 1.5
    assert load_scenario(path, ("fabric.clos.oversubscription=4",)).fabric.clos.oversubscription == 4.0
