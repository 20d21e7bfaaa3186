"""Trials give the same records however they are split: one process, a pool, a Dask cluster."""

import pytest

from fabricsim.cli import main
from fabricsim.config import load_scenario
from fabricsim.parallel import batches, run_trials
from fabricsim.runner import Simulation
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
