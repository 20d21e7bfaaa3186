"""Trials give the same records however they are split: one process, a pool, a Dask cluster."""

import io

import pytest

from fabricsim.cli import main
from fabricsim.config import load_scenario
from fabricsim.runner.parallel import ProgressLines, batches, run_trials
from fabricsim.runner.simulation import Simulation
from tests.conftest import SCENARIOS

MAIN = SCENARIOS / "tp4_ring_allgather.yaml"


@pytest.fixture(scope="module")
def simulation():
    scenario = load_scenario(MAIN, ("workload.trials=24", "impairments.loss.rate=0.001"))
    return Simulation(scenario, str(MAIN))


@pytest.fixture(scope="module")
def serial(simulation):
    return list(run_trials(simulation, str(MAIN), workers=1))


def test_batches_cover_every_trial_once_in_order():
    for count, workers in [(1, 1), (7, 2), (100, 3), (1000, 8)]:
        flat = [i for batch in batches(count, workers) for i in batch]
        assert flat == list(range(count))


def test_process_pool_gives_the_serial_records(simulation, serial):
    assert list(run_trials(simulation, str(MAIN), workers=2)) == serial
    assert len({r.latency_ps for r in serial}) > 1  # impairments on: the trials differ


def test_dask_cluster_gives_the_serial_records(simulation, serial):
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        assert list(run_trials(simulation, str(MAIN), scheduler=cluster.scheduler_address)) == serial


def test_dask_without_a_scheduler_is_bad_input(capsys):
    assert main(["run", str(MAIN), "--executor", "dask"]) == 2
    assert "expected --scheduler" in capsys.readouterr().err


def test_progress_lines_come_every_few_percent_with_rate_and_time_left():
    """Not on a terminal: nothing for a short run, then one line per 5% of the trials."""
    now = [0.0]
    stream = io.StringIO()
    lines = ProgressLines(1000, "tp4", clock=lambda: now[0], stream=stream)
    for _ in range(10):  # 100 trials in 1 s: too early to speak
        now[0] += 0.1
        lines.update(10)
    assert stream.getvalue() == ""
    for _ in range(89):
        now[0] += 0.1
        lines.update(10)
    printed = stream.getvalue().splitlines()
    assert len(printed) == 16  # at 200, 250, ..., 950 of 1000 trials: every 50 from 2 s on
    assert printed[0] == "tp4: 200/1000 trials (20%), 100 trials/s, about 8 s left"
    assert printed[-1].startswith("tp4: 950/1000 trials (95%), 100 trials/s, about 0 s left")
