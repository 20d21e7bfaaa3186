"""fabricsim compare: fabrics side by side from files or from a scenario's matrix, runs reused from
disk, and p99 verdicts that say when the trial count cannot tell two fabrics apart."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from fabricsim.cli import main
from fabricsim.output.compare import compare_samples, format_table
from fabricsim.output.sample import Sample
from fabricsim.output.stats import latency_summary

SCENARIO_YAML = """\
name: {name}
seed: 5
fabric: {{hosts: 4, nic: {{bandwidth: {bandwidth}}}}}
workload: {{rule: data_sizes, data_sizes: [1MiB], trials: 10}}
output: {{plots: false}}
impairments:
  jitter: {{distribution: lognormal, median: 5us, sigma: 1.0}}
"""
OUTPUTS = ("compare.csv", "compare.md", "compare_cdf.png", "compare_tail.png", "compare_delay.png")


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_scenario(folder: Path, name: str, bandwidth: str = "100Gbps", extra: str = "") -> str:
    path = folder / f"{name}.yaml"
    path.write_text(SCENARIO_YAML.format(name=name, bandwidth=bandwidth) + extra)
    return str(path)


def read_rows(path: Path) -> list[dict]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_two_files_make_the_table_the_pictures_and_reuse_their_runs(workdir, capsys):
    slow, fast = write_scenario(workdir, "slow"), write_scenario(workdir, "fast", "400Gbps")
    assert main(["compare", slow, fast, "-o", "cmp"]) == 0
    output = capsys.readouterr().out
    assert output.count("running into results/runs/") == 2 and "p99 (us) [95% CI]" in output
    assert "p99 of fast vs slow: needs 100 successful trials each, got 10" in output
    assert all((workdir / "cmp" / name).stat().st_size > 0 for name in OUTPUTS)
    assert matplotlib.image.imread(workdir / "cmp" / "compare_delay.png").shape[0] > 600  # one panel each
    slow_row, fast_row = read_rows(workdir / "cmp" / "compare.csv")
    assert (slow_row["fabric"], fast_row["fabric"]) == ("slow", "fast")
    assert float(slow_row["p50_ratio"]) == 1 and float(fast_row["p50_ratio"]) < 0.6
    assert float(fast_row["busbw_ratio"]) > 1.5 and fast_row["distinguishable"] == "1"
    assert fast_row["verdict_percentile"] == "p90" and slow_row["p99_us"] == ""  # 10 trials: p90, no p99
    assert "| fast |" in (workdir / "cmp" / "compare.md").read_text()

    assert main(["compare", slow, fast, "-o", "cmp"]) == 0
    assert capsys.readouterr().out.count("reusing results/runs/") == 2
    assert main(["compare", slow, fast, "-o", "cmp", "--trials", "11"]) == 0  # another run, not reused
    assert capsys.readouterr().out.count("running into") == 2


def test_a_run_folder_written_by_fabricsim_run_is_reused(workdir, capsys):
    slow, fast = write_scenario(workdir, "slow"), write_scenario(workdir, "fast", "400Gbps")
    assert main(["run", slow]) == 0
    assert main(["compare", slow, fast]) == 0
    output = capsys.readouterr().out
    assert "slow: reusing results/slow/" in output and "results: results/compare/slow_vs_fast/" in output


def test_a_matrix_compares_every_combination_of_its_values(workdir, capsys):
    path = write_scenario(workdir, "grid", extra="matrix:\n  fabric.nic.bandwidth: [100Gbps, 200Gbps]\n"
                                                 "  seed: [5, 6]\n")
    assert main(["compare", path]) == 0
    rows = read_rows(workdir / "results" / "compare" / "grid" / "compare.csv")
    assert [row["fabric"] for row in rows] == ["nic.bandwidth=100Gbps, seed=5", "nic.bandwidth=100Gbps, seed=6",
                                               "nic.bandwidth=200Gbps, seed=5", "nic.bandwidth=200Gbps, seed=6"]
    assert float(rows[2]["p50_ratio"]) < 0.7 < float(rows[1]["p50_ratio"])


@pytest.mark.parametrize("extra, message", [
    ("", "expected two or more scenarios"),
    ("matrix:\n  impairments.loss_rate: [0, 1.0e-6]\n", "matrix: expected key paths of the scenario"),
    ("matrix:\n  fabric.nic.bandwidth: []\n", "matrix: expected a non-empty list"),
    ("matrix:\n  fabric.nic.bandwidth: [100Gbps, fast]\n", "fabric.nic.bandwidth"),
])
def test_bad_input_exits_2_with_one_line(workdir, capsys, extra, message):
    path = write_scenario(workdir, "grid", extra=extra)
    assert main(["compare", path]) == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1
    assert not (workdir / "results" / "compare").exists()


def test_a_folder_of_other_files_is_not_replaced(workdir, capsys):
    slow, fast = write_scenario(workdir, "slow"), write_scenario(workdir, "fast", "400Gbps")
    assert main(["compare", slow, fast, "-o", "."]) == 2
    assert "the current folder" in capsys.readouterr().err and (workdir / "slow.yaml").exists()


def sample(label: str, latency_us: np.ndarray) -> Sample:
    summary = {"trials": latency_us.size, "failed_trials": 0, "busbw_GBps": 1.0,
               "latency_us": latency_summary(latency_us)}
    return Sample(label, np.round(latency_us * 1e6).astype(np.int64), np.zeros(latency_us.size, bool), summary)


def test_p99_of_close_fabrics_is_not_distinguishable_and_a_trial_count_is_suggested():
    latency_us = np.random.default_rng(0).normal(1000, 50, 150)
    a, b = sample("a", latency_us), sample("b", latency_us + 2)  # b: a copy 2 us slower
    rows = compare_samples([a, b])
    verdict = rows[1].verdict
    assert verdict.percentile == 99 and not verdict.distinguishable and verdict.trials_to_separate > 150
    assert f"about {verdict.trials_to_separate} trials each would tell them apart" in format_table(rows)


def test_p99_of_distant_fabrics_is_distinguishable():
    rng = np.random.default_rng(0)
    a, b = sample("a", rng.normal(1000, 50, 150)), sample("b", rng.normal(2000, 50, 150))
    rows = compare_samples([a, b])
    assert rows[1].verdict.distinguishable and rows[1].ratios["p50"] == pytest.approx(2, rel=0.05)
    assert "p99 of b vs a: +" in format_table(rows) and "), distinguishable at 150 trials" in format_table(rows)


def test_too_few_trials_for_a_p99_compare_the_highest_supported_percentile():
    rng = np.random.default_rng(0)
    a, b = sample("a", rng.normal(1000, 50, 30)), sample("b", rng.normal(2000, 50, 30))
    rows = compare_samples([a, b])
    table = format_table(rows)
    assert rows[1].verdict.percentile == 90 and rows[1].values["p99"] is None and "p99" not in rows[1].ci_us
    assert "p99 of b vs a: needs 100 successful trials each, got 30" in table
    assert "p90 of b vs a: +" in table and "n/a" in table


def test_the_run_cache_is_keyed_by_version_and_reused_only_when_whole(workdir, capsys, monkeypatch):
    slow, fast = write_scenario(workdir, "slow"), write_scenario(workdir, "fast", "400Gbps")
    assert main(["compare", slow, fast, "-o", "cmp"]) == 0
    runs = sorted((workdir / "results" / "runs").iterdir())
    assert len(runs) == 2 and all((run / ".fabricsim").is_file() for run in runs)
    fast_run = next(run for run in runs if run.name.startswith("fast-"))
    (fast_run / "summary.json").write_text("{\"latency_us\": ")  # damaged: run again, into the same folder
    capsys.readouterr()
    assert main(["compare", slow, fast, "-o", "cmp"]) == 0
    output = capsys.readouterr().out
    assert "slow: reusing" in output and f"fast: running into results/runs/{fast_run.name}/" in output
    assert "latency_us" in (fast_run / "summary.json").read_text() and len(list(fast_run.parent.iterdir())) == 2

    monkeypatch.setattr("fabricsim.commands.compare.__version__", "99.0")  # another version: other folders
    assert main(["compare", slow, fast, "-o", "cmp"]) == 0
    assert capsys.readouterr().out.count("running into results/runs/") == 2
    assert len(list(fast_run.parent.iterdir())) == 4
