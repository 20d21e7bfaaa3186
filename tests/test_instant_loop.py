"""The instant loop (engine/instant_loop.py, compiled in engine/instant_kernel.py) gives the event
loop's records exactly: end times, breakdowns, ideal times and link usage, to the picosecond and the
bit, on contended multi-hop fabrics (ECMP collisions on oversubscribed spine uplinks, all-to-all),
with several queue pairs a transfer, loss, chunks, software latency, random start delays and whole-job
steps; and it is taken where it applies."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fabricsim.engine.models as models
from fabricsim.config import load_scenario
from fabricsim.engine.models import FlowModel
from fabricsim.runner.simulation import Simulation
from tests.conftest import SCENARIOS, make_scenario

LEAF_SPINE = {"topology": "leaf_spine", "gpus_per_host": 1, "nic": "roce_100g",
              "clos": {"hosts_per_leaf": 4, "spines": 4, "oversubscription": 2, "ecmp": "hash"}}
LOSS = {"loss": {"rate": 1.0e-3, "timeout_exponent": 20, "retry_count": 7}}
CASES = {
    "leaf-spine ring, 4 queue pairs colliding": load_scenario(SCENARIOS / "leaf_spine_ecmp.yaml",
                                                               ("workload.trials=3",)),
    "all-to-all on a 2:1 leaf-spine, loss": make_scenario(
        fabric={**LEAF_SPINE, "hosts": 12, "qps_per_rankpair": 2}, impairments=LOSS,
        collective={"op": "all_to_all", "algorithm": "direct"},
        workload={"rule": "data_sizes", "data_sizes": ["3MiB", "100KiB"], "trials": 2}),
    "chunked ring, software latency": make_scenario(
        fabric={**LEAF_SPINE, "hosts": 8}, collective={"op": "all_gather", "algorithm": "ring", "chunks": 3,
                                                      "protocol": "simple"},
        workload={"rule": "data_sizes", "data_sizes": ["1MiB"], "trials": 2}),
    "recursive doubling, loss": make_scenario(
        fabric={**LEAF_SPINE, "hosts": 8, "qps_per_rankpair": 3}, impairments=LOSS,
        collective={"op": "all_gather", "algorithm": "recursive_doubling"},
        workload={"rule": "data_sizes", "data_sizes": ["256KiB"], "trials": 3}),
    "dgx a100": load_scenario(SCENARIOS / "dgx_a100_allreduce.yaml", ("workload.trials=2",)),
}


def _records(scenario, instant_loop: bool, monkeypatch) -> tuple[list, int]:
    """The run's records without the longest-path shortcut, on the instant loop or the event loop, and
    how many calls the instant loop ran."""
    monkeypatch.setattr(FlowModel, "uncontended_shortcut", False)
    monkeypatch.setattr(FlowModel, "instant_loop", instant_loop)
    taken = []

    class Noted(models.InstantRun):
        def run(self) -> None:
            super().run()
            taken.append(self)
    monkeypatch.setattr(models, "InstantRun", Noted)
    return Simulation(scenario).run(), len(taken)


def _same(fast: list, slow: list) -> bool:
    """Records equal field by field (a whole-job step's per-rank columns are arrays)."""
    return len(fast) == len(slow) and all(_equal(getattr(a, field.name), getattr(b, field.name))
                                          for a, b in zip(fast, slow) for field in dataclasses.fields(a))


def _equal(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[key], b[key]) for key in a)
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return a == b


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_instant_loop_gives_the_event_loops_records(case, monkeypatch):
    fast, taken = _records(CASES[case], True, monkeypatch)
    slow, not_taken = _records(CASES[case], False, monkeypatch)
    assert _same(fast, slow)  # latency, breakdown, ideal and link usage, to the picosecond and the bit
    assert taken and not not_taken


def _step(tmp_path, jitter: bool):
    """The shipped 16-GPU step, with or without its launch jitter (which keeps it on the event loop)."""
    text = (SCENARIOS / "llama2_7b_16gpu_step.yaml").read_text()
    text = text.replace("models/llama-2-7b.json", str(SCENARIOS / "models" / "llama-2-7b.json"))
    (tmp_path / "step.yaml").write_text(text if jitter else text.split("impairments:")[0])
    return load_scenario(tmp_path / "step.yaml", ("workload.trials=1",))


@pytest.mark.parametrize("jitter", [False, True])
def test_a_whole_job_step_on_the_instant_loop(jitter, tmp_path, monkeypatch):
    scenario = _step(tmp_path, jitter)
    fast, taken = _records(scenario, True, monkeypatch)
    slow, _ = _records(scenario, False, monkeypatch)
    assert _same(fast, slow)
    assert taken


@settings(max_examples=10, deadline=None)
@given(leaves=st.integers(1, 6), qps=st.integers(1, 3), spines=st.integers(1, 3),
       oversubscription=st.sampled_from([1, 2, 3]),
       collective=st.sampled_from([("all_reduce", "ring"), ("all_to_all", "direct"), ("all_gather", "ring"),
                                   ("reduce_scatter", "ring"), ("all_gather", "recursive_doubling")]),
       size=st.sampled_from(["7KiB", "1MiB", "3MiB"]), loss_rate=st.sampled_from([0.0, 2.0e-3]),
       seed=st.integers(0, 1000))
def test_instant_loop_equals_the_event_loop_on_random_leaf_spines(leaves, qps, spines, oversubscription, collective,
                                                                  size, loss_rate, seed):
    op, algorithm = collective
    hosts = 2 * leaves
    if algorithm == "recursive_doubling" and hosts & (hosts - 1):
        hosts = 8
    scenario = make_scenario(
        seed=seed, fabric={**LEAF_SPINE, "hosts": hosts, "qps_per_rankpair": qps,
                           "clos": {"hosts_per_leaf": 2, "spines": spines, "oversubscription": oversubscription,
                                    "ecmp": "hash"}},
        impairments={"loss": {"rate": loss_rate, "timeout_exponent": 20, "retry_count": 7}},
        collective={"op": op, "algorithm": algorithm}, workload={"rule": "data_sizes", "data_sizes": [size]})
    with pytest.MonkeyPatch.context() as monkeypatch:
        fast, taken = _records(scenario, True, monkeypatch)
    with pytest.MonkeyPatch.context() as monkeypatch:
        slow, _ = _records(scenario, False, monkeypatch)
    assert _same(fast, slow)
    assert taken


def test_random_start_delays_on_the_instant_loop(monkeypatch):
    """Launch skew scatters a call's moments: the instant loop runs it, with the event loop's records."""
    scenario = make_scenario(fabric={**LEAF_SPINE, "hosts": 8},
                             impairments={"launch_skew": {"distribution": "uniform", "low": "0us", "high": "20us"}},
                             collective={"op": "all_reduce", "algorithm": "ring"},
                             workload={"rule": "data_sizes", "data_sizes": ["1MiB", "64KiB"], "trials": 3})
    fast, taken = _records(scenario, True, monkeypatch)
    slow, _ = _records(scenario, False, monkeypatch)
    assert _same(fast, slow)
    assert taken
