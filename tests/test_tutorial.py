"""The KCCB tutorial's numbers come out of the model and the rules, not typed in."""

from fabricsim.config import load_scenario
from fabricsim.runner.simulation import Simulation
from tests.conftest import SCENARIOS


def _plan(**overrides):
    sets = tuple(f"{key}={value}" for key, value in overrides.items())
    scenario = load_scenario(SCENARIOS / "tp4_ring_allgather.yaml", sets)
    return Simulation(scenario).plan


def test_tensor_parallel_size_and_trials_match_the_tutorial():
    plan = _plan()
    assert plan.op == "all_gather" and plan.ranks == 4
    assert len(plan.trials) == 8  # ceil(60000 / 8192) batches x 1 epoch
    assert {trial.per_rank_bytes for trial in plan.trials} == {(6438912,)}


def test_trials_scale_with_epochs_and_the_override_wins():
    assert len(_plan(**{"workload.epochs": 3}).trials) == 24
    assert len(_plan(**{"workload.trials": 5}).trials) == 5


def test_data_parallel_moves_every_gradient_once():
    # (784*256 + 256) + (256*128 + 128) + (128*64 + 64) + (64*10 + 10) float32 parameters
    plan = _plan(**{"workload.rule": "data_parallel", "workload.parallelism": "{dp: 4}"})
    assert plan.trials[0].per_rank_bytes == (971048,)


def test_layerwise_data_parallel_goes_last_layer_first():
    plan = _plan(**{"workload.rule": "data_parallel_layerwise", "workload.parallelism": "{dp: 4}"})
    assert plan.trials[0].per_rank_bytes == (2600, 33024, 131584, 803840)
