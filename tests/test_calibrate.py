"""`fabricsim calibrate`: link classes recovered from logs fabricsim wrote with known constants, the
preset file named by a scenario, the published log's held-out error, and bad input refused."""

import numpy as np
import pytest
import yaml

from fabricsim.cli import main
from fabricsim.config import load_scenario
from fabricsim.formats.calibrate import SweepModel, calibrate, link_parameters, split_sizes
from fabricsim.formats.measured import size_errors
from fabricsim.formats.nccl_tests_log import MeasuredRun, read_log
from tests.conftest import ROOT

NVLINK = {"name": "nvlink_truth", "fabric": {"hosts": 1, "gpus_per_host": 4,
                                             "nvlink": {"bandwidth": "200GB/s", "latency": "500ns"}},
          "collective": {"op": "all_gather", "algorithm": "ring"},
          "workload": {"rule": "data_sizes", "data_sizes": [1024]}, "output": {"plots": False}}
NIC = {"name": "nic_truth", "fabric": {"hosts": 4, "gpus_per_host": 1, "nic": {"preset": "roce_100g", "latency": "2us"}},
       "collective": {"op": "all_reduce", "algorithm": "ring", "protocol": "ll"},
       "workload": {"rule": "data_sizes", "data_sizes": [1024]}, "output": {"plots": False}}


def _write(path, raw):
    path.write_text(yaml.safe_dump(raw))
    return path


def _measured_by_fabricsim(tmp_path, capsys, truth):
    """The sweep table fabricsim prints for the true scenario, as a log file."""
    assert main(["sweep", str(_write(tmp_path / "truth.yaml", truth)), "-b", "1K", "-e", "256M", "-f", "4",
                 "--output", str(tmp_path / "truth-sweep")]) == 0
    log = tmp_path / "truth.log"
    log.write_text(capsys.readouterr().out)
    return log


@pytest.mark.parametrize("truth, start, recovered, held", [
    (NVLINK, {"nvlink": {"bandwidth": "100GB/s", "latency": "100ns"}},
     {"nvlink": {"bandwidth": 1.6e12, "latency": 500_000}}, []),  # only NVLink on the routes
    (NIC, {"nic": {"preset": "roce_100g", "bandwidth": "50Gbps", "latency": "1us"}},
     {"nic": {"bandwidth": 100e9, "latency": 2_000_000}}, ["pcie.bandwidth", "pcie.latency"]),
])
def test_calibration_recovers_the_constants_of_a_log_fabricsim_wrote(tmp_path, capsys, truth, start, recovered,
                                                                     held):
    log = _measured_by_fabricsim(tmp_path, capsys, truth)
    scenario = _write(tmp_path / "start.yaml", {**truth, "fabric": {**truth["fabric"], **start}})
    preset = tmp_path / "cluster.yaml"
    assert main(["calibrate", str(log), "--scenario", str(scenario), "-o", str(preset)]) == 0
    printed = capsys.readouterr().out
    held_line = [line for line in printed.splitlines() if "held at the scenario's values" in line]
    assert [name for line in held_line for name in line.split(": ")[1].split(", ")] == held
    assert "held-out sizes" in printed
    fitted = yaml.safe_load(preset.read_text())
    assert "the scenario sets these keys itself" in printed  # its own keys would win over the file
    own = {key: value for key, value in truth["fabric"].items() if key not in recovered}
    calibrated = load_scenario(_write(tmp_path / "calibrated.yaml", {
        **truth, "fabric": {**own, "preset_file": "cluster.yaml"}}))
    for section, values in recovered.items():
        assert set(fitted[section]) == set(values)
        spec = getattr(calibrated.fabric, section)
        assert spec.bandwidth_bps == pytest.approx(values["bandwidth"], rel=0.01)
        assert spec.latency_ps == pytest.approx(values["latency"], rel=0.01)
    errors = [float(line.split()[3]) for line in printed.splitlines() if line.endswith("-bound")]
    assert errors and max(map(abs, errors)) < 0.5  # percent, on the sizes held out of the fit


def test_several_logs_pool_their_sizes(tmp_path, capsys):
    log = _measured_by_fabricsim(tmp_path, capsys, NVLINK)
    lines = log.read_text().splitlines()
    rows = [index for index, line in enumerate(lines) if line and not line.startswith("#")]
    (tmp_path / "small.log").write_text("\n".join(lines[:rows[5]]) + "\n")  # header and the 5 smallest
    (tmp_path / "large.log").write_text("\n".join(lines[rows[5]:]) + "\n")
    scenario = _write(tmp_path / "start.yaml", {**NVLINK, "fabric": {"hosts": 1, "gpus_per_host": 4}})
    preset = tmp_path / "pooled.yaml"
    assert main(["calibrate", str(tmp_path / "small.log"), str(tmp_path / "large.log"), "--scenario", str(scenario),
                 "-o", str(preset)]) == 0
    assert "10 sizes from" in capsys.readouterr().out
    nvlink = load_scenario(_write(tmp_path / "c.yaml", {**NVLINK, "fabric": {
        "hosts": 1, "gpus_per_host": 4, "preset_file": "pooled.yaml"}})).fabric.nvlink
    assert (nvlink.bandwidth_bps, nvlink.latency_ps) == (pytest.approx(1.6e12, rel=0.01), pytest.approx(500_000, rel=0.01))


def test_preset_file_keys_lie_under_the_scenario_own_keys(tmp_path):
    _write(tmp_path / "cluster.yaml", {"nvlink": {"bandwidth": "123GB/s", "latency": "7ns"}, "hosts": 3})
    raw = {**NVLINK, "fabric": {"preset_file": "cluster.yaml", "hosts": 2, "nvlink": {"latency": "9ns"}}}
    scenario = load_scenario(_write(tmp_path / "s.yaml", raw))
    assert (scenario.fabric.hosts, scenario.fabric.nvlink.bandwidth_bps, scenario.fabric.nvlink.latency_ps) == (
        2, 123e9 * 8, 9_000)
    assert "preset_file" not in scenario.resolved()["fabric"]


def test_a_nic_named_by_preset_takes_the_preset_file_values_over_its_preset(tmp_path):
    _write(tmp_path / "cluster.yaml", {"nic": {"latency": "3us"}})
    raw = {**NVLINK, "fabric": {"preset_file": "cluster.yaml", "nic": "roce_200g"}}
    nic = load_scenario(_write(tmp_path / "s.yaml", raw)).fabric.nic
    assert (nic.latency_ps, nic.bandwidth_bps, nic.header_bytes) == (3_000_000, 200e9, 82)


def test_published_log_held_out_error_falls_by_calibration(capsys):
    """The published 2 x 8 H100 all-reduce (scenarios/measured): every other size, one round of fitting."""
    scenario_path = ROOT / "scenarios" / "measured" / "h100_2x8_allreduce.yaml"
    scenario = load_scenario(scenario_path)
    (full,) = read_log(ROOT / "scenarios" / "measured" / "h100_2x8_all_reduce.log")
    run = MeasuredRun(full.source, full.op, full.ranks, full.rows[::2])
    result = calibrate(scenario, str(scenario_path), run, holdout=3, rounds=1)
    _fitted, held_rows = split_sizes(list(run.rows), 3)
    model = SweepModel(scenario, str(scenario_path), "float32")
    before = size_errors(run, model.times_us(link_parameters(scenario, str(scenario_path)), [row.size_bytes for row in held_rows]))
    after_pct = np.mean([abs(e.error_pct) for e in result.holdout_errors])
    before_pct = np.mean([abs(e.error_pct) for e in before])
    print(f"published log, held-out mean |error|: {before_pct:.1f}% uncalibrated, {after_pct:.1f}% calibrated")
    assert {e.regime for e in result.holdout_errors} == {"latency-bound", "bandwidth-bound"}
    assert after_pct < before_pct / 1.5


@pytest.mark.parametrize("argv, expected", [
    (["--holdout", "1"], "--holdout: expected at least 2"),
    (["--scenario-log", "all_gather"], "expected a run of all_reduce"),
    (["--scenario", "missing.yaml"], "cannot read the file"),
    (["-o", "notes.txt"], "refusing to replace it"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch, argv, expected):
    monkeypatch.chdir(tmp_path)
    scenario = tmp_path / "s.yaml"
    scenario.write_text((ROOT / "scenarios" / "measured" / "h100_2x8_allreduce.yaml").read_text())
    (tmp_path / "notes.txt").write_text("mine\n")
    log = ROOT / "scenarios" / "measured" / "h100_2x8_all_reduce.log"
    if argv == ["--scenario-log", "all_gather"]:
        log, argv = ROOT / "tests" / "fixtures" / "nccl_tests_all_gather.json", []
    command = ["calibrate", str(log), "--scenario", str(scenario)] + argv
    if "--scenario" in argv:
        command = ["calibrate", str(log)] + argv
    before = sorted(path.name for path in tmp_path.iterdir())
    assert main(command) == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == before
    assert (tmp_path / "notes.txt").read_text() == "mine\n"


def test_missing_preset_file_is_one_line(tmp_path, capsys):
    path = _write(tmp_path / "s.yaml", {**NVLINK, "fabric": {"preset_file": "nowhere.yaml"}})
    assert main(["run", str(path), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "fabric.preset_file: expected a file path relative to the scenario" in err
