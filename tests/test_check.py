"""fabricsim check: an identical run passes, an engine change fails with a table naming what moved,
a changed scenario is reported as changed, bad input exits 2, and every shipped scenario has a
baseline."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fabricsim.cli import main
from fabricsim.config import load_scenario
from fabricsim.output.baseline import check_exact, make_baseline
from fabricsim.output.sample import Sample
from fabricsim.runner.simulation import Simulation

ROOT = Path(__file__).resolve().parent.parent
SCENARIO_YAML = """\
name: check_test
seed: 3
fabric: {hosts: 4}
workload: {rule: data_sizes, data_sizes: [1MiB], trials: 24}
impairments:
  jitter: {distribution: lognormal, median: 5us, sigma: 1.0}
"""


@pytest.fixture
def scenario_path(tmp_path, monkeypatch):
    """A small scenario in a scratch folder that is also the working directory (results/ lands there)."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "check_test.yaml"
    path.write_text(SCENARIO_YAML)
    return str(path)


@pytest.fixture
def baseline(scenario_path):
    assert main(["check", scenario_path, "--update", "--trials", "12"]) == 0
    return Path("results/baselines/check_test.json")


def slow_engine(monkeypatch, factor: float) -> None:
    """Stand-in for an engine change: every trial takes `factor` times as long."""
    run_trial = Simulation.run_trial

    def slowed(self, trial):
        record = run_trial(self, trial)
        return replace(record, latency_ps=round(record.latency_ps * factor))

    monkeypatch.setattr(Simulation, "run_trial", slowed)


def metric_line(output: str, label: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(f"{label} ("))


def test_baseline_records_the_run(baseline):
    data = json.loads(baseline.read_text())
    assert data["trials"] == len(data["trial_latency_ps"]) == data["workload_trials"] == 12
    assert data["seed"] == 3 and data["fabricsim_version"]
    assert set(data["latency_us"]) >= {"p50", "p90", "p99", "p999", "max"} and data["busbw_GBps"] > 0


def test_an_identical_run_passes(scenario_path, baseline, capsys):
    assert main(["check", scenario_path]) == 0  # the baseline's 12 trials, not the scenario's 24
    assert "check_test: ok, 12 trials identical to results/baselines/check_test.json" in capsys.readouterr().out


def test_a_slowed_engine_fails_naming_the_regressed_percentiles(scenario_path, baseline, monkeypatch, capsys):
    slow_engine(monkeypatch, 1.10)
    assert main(["check", scenario_path]) == 1
    output = capsys.readouterr().out
    for label in ("p50", "p90", "max"):
        assert metric_line(output, label).endswith("regressed")
    assert "+10.000%" in metric_line(output, "p90")
    assert metric_line(output, "p99").endswith("n/a") and "not judged: p99 needs 100" in output  # 12 trials
    assert metric_line(output, "busbw").endswith("regressed")
    assert "FAILED" in output and "--update" in output


def test_a_faster_engine_is_reported_as_improved_and_fails_until_reblessed(scenario_path, baseline,
                                                                            monkeypatch, capsys):
    slow_engine(monkeypatch, 0.9)
    assert main(["check", scenario_path]) == 1
    assert metric_line(capsys.readouterr().out, "p90").endswith("improved")


def test_tolerances_gate_only_the_metrics_named(scenario_path, baseline, monkeypatch, capsys):
    slow_engine(monkeypatch, 1.01)
    assert main(["check", scenario_path, "--tolerance", "p50=2%,p99=2%"]) == 0
    output = capsys.readouterr().out
    assert metric_line(output, "p50").endswith("ok") and "not gated" in metric_line(output, "p90")
    assert main(["check", scenario_path, "--tolerance", "p50=0.5%"]) == 1


def test_a_changed_scenario_is_reported_not_compared(scenario_path, baseline, capsys):
    Path(scenario_path).write_text(SCENARIO_YAML.replace("fabric: {hosts: 4}", "fabric: {hosts: 4, nic: {bandwidth: 200Gbps}}"))
    assert main(["check", scenario_path]) == 1
    output = capsys.readouterr().out
    assert "CHANGED" in output and "  fabric.nic.bandwidth: 100Gbps -> 200Gbps\n" in output and "p50 (" not in output
    command = next(line for line in output.splitlines() if line.startswith("to see the difference: "))
    assert command.endswith(f"fabricsim compare results/check/check_test/baseline.yaml {scenario_path} "
                            "--seed 3 --trials 12")
    assert main(command.removeprefix("to see the difference: fabricsim ").split() + ["-o", "cmp"]) == 0
    old, new = read_csv_rows(Path("cmp/compare.csv"))
    assert old["trials"] == new["trials"] == "12" and float(new["p50_us"]) < 0.6 * float(old["p50_us"])


def test_a_changed_scenario_leaves_a_folder_of_the_users_where_it_would_write(scenario_path, baseline, capsys):
    Path(scenario_path).write_text(SCENARIO_YAML.replace("fabric: {hosts: 4}", "fabric: {hosts: 4, nic: {bandwidth: 200Gbps}}"))
    users = Path("results/check/check_test")
    users.mkdir(parents=True)
    (users / "baseline.yaml").write_text("the user's own file\n")
    assert main(["check", scenario_path]) == 1
    output = capsys.readouterr().out
    assert "the baseline's scenario was not written: results/check: expected a new folder" in output
    assert "to see the difference" not in output
    assert sorted(path.name for path in users.iterdir()) == ["baseline.yaml"]
    assert (users / "baseline.yaml").read_text() == "the user's own file\n"


def read_csv_rows(path: Path) -> list[dict]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_statistical_mode_accepts_another_seed_and_catches_a_slowdown(scenario_path, baseline,
                                                                      monkeypatch, capsys):
    assert main(["check", scenario_path, "--stat", "--seed", "11"]) == 0
    assert "Kolmogorov-Smirnov" in capsys.readouterr().out
    slow_engine(monkeypatch, 1.5)
    assert main(["check", scenario_path, "--stat", "--seed", "11"]) == 1
    output = capsys.readouterr().out
    assert "the distributions differ" in output and metric_line(output, "p99").endswith("n/a")
    assert "not judged: p99 needs 100, p99.9 needs 1000 successful trials on each side, got 12" in output
    assert main(["check", scenario_path, "--stat", "--seed", "11", "--tolerance", "p90=0%"]) == 1
    assert metric_line(capsys.readouterr().out, "p90").endswith("regressed")


@pytest.mark.parametrize("arguments, message", [
    (["--seed", "11"], "expected the baseline's seed 3 and 12 trials"),
    (["--trials", "5"], "expected the baseline's seed 3 and 12 trials"),
    (["--tolerance", "p50=2"], "expected METRIC=N% pairs"),
    (["--tolerance", "p42=2%"], "expected METRIC=N% pairs"),
    (["--baseline", "missing.json"], "missing.json: cannot read the baseline"),
])
def test_bad_input_exits_2_with_one_line(scenario_path, baseline, capsys, arguments, message):
    assert main_exit_code(["check", scenario_path, *arguments]) == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1


def main_exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exit_:  # argparse's own errors
        return exit_.code


def test_exact_check_fails_when_trials_move_but_percentiles_do_not(scenario_path):
    scenario = load_scenario(scenario_path)
    latency_ps = np.arange(1, 11, dtype=np.int64) * 1_000_000
    summary = {"trials": 10, "failed_trials": 0, "seed": 3, "busbw_GBps": 1.0,
               "latency_us": {"p50": 5.5, "p90": 9.1, "p99": 9.91, "p999": 9.991, "max": 10.0}}
    baseline = make_baseline(scenario, Sample("then", latency_ps, np.zeros(10, dtype=bool), summary))
    swapped = latency_ps[[1, 0, *range(2, 10)]]
    result = check_exact(baseline, Sample("now", swapped, np.zeros(10, dtype=bool), summary))
    assert not result.passed and result.notes[-1] == "2 of 10 trials differ from the baseline"
    assert [metric.status for metric in result.metrics] == ["ok", "ok", "n/a", "n/a", "ok", "ok"]


def test_every_shipped_scenario_has_a_baseline():
    """(Whether each baseline still matches its scenario is the check in .ci/run.)"""
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        scenario = load_scenario(path)
        baseline_file = ROOT / "results" / "baselines" / f"{scenario.name}.json"
        assert baseline_file.exists(), f"no baseline for {path.name}: fabricsim check {path} --update --trials N"
