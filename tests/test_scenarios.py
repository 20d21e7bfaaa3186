"""Every shipped scenario loads and runs two trials, and writes the result files it promises."""

import json

import pytest

from fabricsim.cli import main
from tests.conftest import SCENARIOS

SHIPPED = sorted(SCENARIOS.glob("*.yaml"))


def test_scenarios_are_shipped():
    assert any(path.name == "tp4_ring_allgather.yaml" for path in SHIPPED)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.stem)
def test_scenario_runs_two_trials(path, tmp_path, capsys):
    out = tmp_path / path.stem
    assert main(["run", str(path), "--trials", "2", "-o", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    rows = (out / "trials.csv").read_text().splitlines()
    assert len(rows) - 1 == summary["trials"] >= 2  # two per data size
    assert summary["latency_us"] is None or summary["latency_us"]["p50"] > 0
    for name in ("trials.csv", "scenario.resolved.yaml", "delay.png"):
        assert (out / name).stat().st_size > 0
    assert "latency (" in capsys.readouterr().out or summary["failed_trials"] == 2
