"""Per-call ops and groups in the runner: a trial's calls run one after another on their own GPUs,
TP groups stay inside a host, compute time adds up, and the tutorial's scenarios keep their sizes."""

import dataclasses

import pytest

from fabricsim.config import load_scenario, validate_scenario
from fabricsim.runner.simulation import Simulation
from tests.conftest import SCENARIOS

TINY = {"name": "tiny", "hidden_size": 256, "layers": 2, "heads": 8, "kv_heads": 4, "ffn_size": 512,
        "vocab_size": 1000}


def _simulation(hosts, gpus_per_host, **workload):
    raw = {"name": "t", "fabric": {"hosts": hosts, "gpus_per_host": gpus_per_host},
           "workload": {"rule": "megatron", "transformer": TINY, "batch_size": 1, "seq_len": 128, "trials": 1}
           | workload}
    return Simulation(validate_scenario(raw, "<t>"), "<t>")


@pytest.mark.parametrize("name, per_rank_bytes", [
    ("tp4_ring_allgather", (6438912,)),
    ("dp4_ring_allreduce", (971048,)),
    ("dp4_layerwise_allreduce", (2600, 33024, 131584, 803840)),
])
def test_tutorial_scenarios_keep_their_sizes_and_8_trials(name, per_rank_bytes):
    plan = Simulation(load_scenario(SCENARIOS / f"{name}.yaml")).plan
    assert {trial.per_rank_bytes for trial in plan.trials} == {per_rank_bytes}
    assert len(plan.trials) == 8


def test_tp_calls_stay_on_their_host_and_dp_calls_cross_hosts():
    simulation = _simulation(2, 4, parallelism={"tp": 4, "dp": 2})
    links = simulation.fabric.links
    kinds = {}
    for call in simulation.plan.trials[0].calls:
        schedule = simulation.call_schedule(call)
        kinds[call.group] = {links[i].kind for t in schedule.transfers
                             for i in simulation.route(call.group[t.src], call.group[t.dst]).links}
    assert kinds == {(0, 1, 2, 3): {"nvlink"}, (0, 4): {"pcie", "roce"}}


def test_a_trial_runs_its_calls_back_to_back_on_their_groups():
    """On an ideal fabric, n identical TP all-reduces take n times one of them, wherever the group sits."""
    step = _simulation(2, 4, parallelism={"tp": 4, "dp": 2})
    trial = step.plan.trials[0]
    tp_calls = tuple(c for c in trial.calls if len(c.group) == 4)
    only_tp = dataclasses.replace(trial, calls=tp_calls)
    one = dataclasses.replace(trial, calls=tp_calls[:1])
    assert len(tp_calls) == 2 * 2 * 2  # 2 layers x 2 blocks x forward and backward
    assert step.run_trial(only_tp).latency_ps == len(tp_calls) * step.run_trial(one).latency_ps
    assert step.run_trial(trial).latency_ps > step.run_trial(only_tp).latency_ps  # + the DP buckets


def test_compute_time_adds_to_the_trial():
    without = _simulation(1, 4, parallelism={"tp": 4})
    with_device = _simulation(1, 4, parallelism={"tp": 4}, device="a100")
    trial = with_device.plan.trials[0]
    compute_ps = sum(c.compute_before_ps for c in trial.calls) + trial.compute_after_ps
    assert compute_ps > 0
    assert with_device.run()[0].latency_ps == without.run()[0].latency_ps + compute_ps


def test_pipeline_sends_run_between_stages():
    simulation = _simulation(2, 1, parallelism={"pp": 2})
    record = simulation.run()[0]
    send_bytes = 128 * 256 * 2
    pcie_bps = simulation.scenario.fabric.pcie.bandwidth_bps
    assert not record.failed
    assert record.latency_ps >= 2 * send_bytes * 8 / pcie_bps * 1e12  # a send forward, a gradient back
