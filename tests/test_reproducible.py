"""Same scenario and seed: the same bytes on disk; another seed: other latencies."""

import csv

from fabricsim.cli import main
from tests.conftest import SCENARIOS

MAIN = str(SCENARIOS / "tp4_ring_allgather.yaml")


def _run(tmp_path, name, *extra):
    out = tmp_path / name
    assert main(["run", MAIN, "-o", str(out), "--set", "output.plots=false", *extra]) == 0
    return out


def _latencies(folder):
    with (folder / "trials.csv").open() as handle:
        return [row["latency_us"] for row in csv.DictReader(handle)]


def test_same_seed_same_files(tmp_path):
    a, b = _run(tmp_path, "a"), _run(tmp_path, "b")
    for name in ("summary.json", "trials.csv", "scenario.resolved.yaml"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_another_seed_other_latencies(tmp_path):
    a, c = _run(tmp_path, "a"), _run(tmp_path, "c", "--seed", "5")
    assert _latencies(a) != _latencies(c)
    assert len(_latencies(a)) == len(_latencies(c)) == 8


def test_a_trial_does_not_depend_on_the_trials_before_it(tmp_path):
    """Trial i draws from its own stream: running 8 trials or 3, the first 3 agree."""
    eight, three = _run(tmp_path, "eight"), _run(tmp_path, "three", "--trials", "3")
    assert _latencies(eight)[:3] == _latencies(three)


def test_resolved_scenario_reruns_to_the_same_numbers(tmp_path):
    a = _run(tmp_path, "a")
    again = tmp_path / "again"
    assert main(["run", str(a / "scenario.resolved.yaml"), "-o", str(again)]) == 0
    assert _latencies(a) == _latencies(again)
