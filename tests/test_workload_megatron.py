"""The megatron rule: Megatron TP, sequence parallel, pipeline and DP calls of rank 0's step, checked
against their formulas; placement of groups on hosts; bad plans are one clear line."""

from collections import Counter

import pytest

from fabricsim.config import DTYPE_BYTES, ScenarioError, TransformerSpec, load_scenario, validate_scenario
from fabricsim.config.devices import DEVICES
from fabricsim.models.transformer import (ParamTensor, embedding_tensors, head_tensors, layer_tensors,
                                          training_flops)
from fabricsim.workload import plan_workload
from fabricsim.workload.megatron import gradient_buckets
from fabricsim.workload.placement import Mesh
from tests.conftest import SCENARIOS

MIB = 2**20
TINY = {"name": "tiny", "hidden_size": 256, "layers": 4, "heads": 8, "kv_heads": 4, "ffn_size": 512,
        "vocab_size": 1000, "dtype": "bfloat16"}


def _plan(gpus_per_host=8, hosts=1, **workload):
    raw = {"name": "t", "fabric": {"hosts": hosts, "gpus_per_host": gpus_per_host},
           "workload": {"rule": "megatron", "transformer": TINY, "batch_size": 2, "seq_len": 64, "trials": 1}
           | workload}
    return plan_workload(validate_scenario(raw, "<t>"), hosts * gpus_per_host, "<t>")


def test_llama2_70b_tp8_is_4_allreduces_per_layer_of_b_s_h_bytes():
    scenario = load_scenario(SCENARIOS / "llama2_70b_tp8.yaml")
    plan = plan_workload(scenario, 8, "llama2_70b_tp8.yaml")
    (trial, *_) = plan.trials
    assert (plan.op, plan.ranks, len(plan.trials)) == ("all_reduce", 8, 4)
    assert Counter((c.op, c.group, c.per_rank_bytes) for c in trial.calls) == {
        ("all_reduce", tuple(range(8)), 1 * 4096 * 8192 * 2): 4 * 80}
    assert 1 * 4096 * 8192 * 2 == 64 * MIB
    # the compute between calls adds up to the step's training FLOPs / (tp x peak)
    compute_ps = sum(c.compute_before_ps for c in trial.calls) + trial.compute_after_ps
    expected_ps = training_flops(scenario.workload.transformer, 4096, 4096) / 8 / DEVICES["h100"].peak_flops() * 1e12
    assert compute_ps == pytest.approx(expected_ps, rel=1e-6)


def test_sequence_parallel_swaps_each_allreduce_for_allgather_and_reduce_scatter():
    activation = 2 * 64 * 256 * 2
    calls = _plan(gpus_per_host=4, parallelism={"tp": 4, "sequence_parallel": True}).trials[0].calls
    assert [c.op for c in calls[:4]] == ["all_gather", "reduce_scatter"] * 2
    assert Counter((c.op, c.per_rank_bytes) for c in calls) == {
        ("all_gather", activation // 4): 4 * 4, ("reduce_scatter", activation): 4 * 4}


def test_pipeline_sends_activations_forward_and_receives_gradients_back():
    # tp 2 x pp 2 x dp 2 on 8 GPUs: stage 1 of rank 0's pipeline is global rank tp x dp = 4
    parallelism = {"tp": 2, "pp": 2, "dp": 2, "micro_batches": 3}
    calls = _plan(parallelism=parallelism, scope="rank0").trials[0].calls  # GPipe order
    sends = [c for c in calls if c.op == "send_recv"]
    assert [c.group for c in sends] == [(0, 4)] * 3 + [(4, 0)] * 3
    # the whole job's step: each stage in 1F1B order, stage 0 with one warm-up forward, stage 1 with none
    first, last = _plan(parallelism=parallelism).trials[0].stages
    assert [c.group for c in first[0] if c.op == "send_recv"] == [(0, 4), (0, 4), (4, 0), (0, 4), (4, 0), (4, 0)]
    assert [c.group for c in last[0] if c.op == "send_recv"] == [(0, 4), (4, 0)] * 3
    assert Counter(first[0]) == Counter(calls)  # the same calls as rank 0's, reordered
    assert {c.per_rank_bytes for c in sends} == {2 * 64 * 256 * 2}
    # stage 0 holds 2 of the 4 layers: 2 TP all-reduces x 2 layers x 2 directions x 3 micro-batches
    assert sum(1 for c in calls if c.op == "all_reduce" and c.group == (0, 1)) == 2 * 2 * 2 * 3


def test_ddp_buckets_hold_rank0s_gradient_shard_last_layer_first():
    calls = _plan(parallelism={"tp": 2, "dp": 4, "bucket": "100KiB"}).trials[0].calls
    buckets = [c for c in calls if c.group == (0, 2, 4, 6)]
    assert {(c.stream, c.blocking) for c in buckets} == {("dp", False)}  # they overlap the rest of backward
    # the first goes out after the head's backward, before the last layer's backward TP all-reduces
    tp_calls = [i for i, c in enumerate(calls) if c.group == (0, 1)]
    assert tp_calls[len(tp_calls) // 2 - 1] < calls.index(buckets[0]) < tp_calls[len(tp_calls) // 2]
    assert calls[-1] == buckets[-1]
    model = TransformerSpec.model_validate(TINY)
    tensors = (*embedding_tensors(model), *layer_tensors(model) * 4, *head_tensors(model))
    assert tuple(c.per_rank_bytes for c in buckets) == gradient_buckets(tensors, 2, 2, 100 * 1024)
    shard_bytes = 2 * sum(t.numel // 2 if t.tp_split else t.numel for t in tensors)
    assert sum(c.per_rank_bytes for c in buckets) == shard_bytes
    assert all(c.per_rank_bytes >= 100 * 1024 for c in buckets[:-1])
    # the LM head's gradient shard (vocab x hidden / tp), the model's last tensor, fills the first bucket alone
    assert buckets[0].per_rank_bytes == 2 * 1000 * 256 // 2


def test_gradient_buckets_close_once_they_reach_the_cap():
    tensors = tuple(ParamTensor(f"t{i}", 10, False) for i in range(5))
    assert gradient_buckets(tensors, tp=1, element_bytes=1, bucket_bytes=25) == (30, 20)


def test_fsdp_gathers_parameters_and_reduce_scatters_gradients_per_layer():
    calls = _plan(gpus_per_host=4, parallelism={"tp": 1, "dp": 4, "dp_mode": "fsdp"}).trials[0].calls
    model = TransformerSpec.model_validate(TINY)
    layer_bytes = 2 * sum(t.numel for t in layer_tensors(model))
    root_bytes = 2 * sum(t.numel for t in (*embedding_tensors(model), *head_tensors(model)))
    assert Counter((c.op, c.per_rank_bytes) for c in calls) == {
        ("all_gather", layer_bytes // 4): 2 * 4, ("reduce_scatter", layer_bytes): 4,
        ("all_gather", root_bytes // 4): 2, ("reduce_scatter", root_bytes): 1}
    assert [c.op for c in calls[-2:]] == ["reduce_scatter"] * 2  # layer 0's gradients, then the root unit's


def test_tp_groups_sit_inside_a_host_first():
    mesh = Mesh(tp=4, dp=4, pp=1)
    gpus_per_host = 8
    for dp_index in range(4):
        group = mesh.tp_group(dp_index)
        assert len({rank // gpus_per_host for rank in group}) == 1
    assert mesh.dp_group() == (0, 4, 8, 12)


def test_trials_are_batches_of_the_dataset_tokens_times_epochs():
    plan = _plan(gpus_per_host=4, trials=None, dataset_tokens=64 * 100, epochs=2,
                 parallelism={"tp": 2, "dp": 2, "micro_batches": 5})
    assert len(plan.trials) == 2 * -(-100 // (2 * 5 * 2))  # samples / (batch x micro-batches x dp)


@pytest.mark.parametrize("parallelism, message", [
    ({"tp": 16}, "workload.parallelism.tp: expected a TP degree dividing the 8 attention heads and 4 KV heads"),
    ({"tp": 2, "dp": 2}, "workload.parallelism: expected tp x pp x dp = the fabric's 8 GPUs, got 2 x 1 x 2"),
    ({"tp": 2, "pp": 3}, "workload.parallelism.pp: expected a degree dividing the 4 layers, got 3"),
])
def test_bad_parallelism_is_one_clear_line(parallelism, message):
    with pytest.raises(ScenarioError, match=message.replace("(", r"\(")) as error:
        _plan(parallelism=parallelism)
    assert "\n" not in str(error.value)


def test_dtype_bytes_of_the_shipped_llama_configs():
    scenario = load_scenario(SCENARIOS / "llama2_70b_tp8.yaml")
    assert DTYPE_BYTES[scenario.workload.transformer.dtype] == 2
