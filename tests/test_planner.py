"""``fabricsim plan``: seed 001's arithmetic for LLaMA-2 70B, seed 000's recommendation, and the
table, JSON, plot and bad-input behaviour of the command."""

import json

import pytest

from fabricsim.cli import main
from fabricsim.config import load_transformer
from fabricsim.config.devices import DEVICES, LINKS
from fabricsim.models.transformer import parameter_count
from fabricsim.planner.memory import memory_per_gpu
from fabricsim.planner.simulate import simulated_comm_s
from fabricsim.planner.sizing import recommend
from fabricsim.planner.tp_cost import plan_tp
from tests.conftest import SCENARIOS

LLAMA2_70B = load_transformer(SCENARIOS / "models" / "llama-2-70b.json")


def _plan(device, link, sparse=False, tflops=None, tps=(1, 2, 4, 8), model=LLAMA2_70B):
    peak = tflops * 1e12 if tflops else DEVICES[device].peak_flops(sparse=sparse)
    return plan_tp(model, DEVICES[device], LINKS[link], tps, 1, 4096, peak)


def test_a100_over_pcie4_feeds_at_most_2_tp_gpus():
    """Seed 001: 330T / (64 GB/s / 2) ~ 10,000 FLOP/B -> tp <= 2.4: 'at most 2 GPUs'."""
    seed = _plan("a100", "pcie4", tflops=330)
    assert seed.needed_flop_per_byte == pytest.approx(10_312, rel=1e-3)
    assert seed.max_tp == pytest.approx(2.4, abs=0.05)
    datasheet = _plan("a100", "pcie4")  # 312 TFLOPS dense BF16
    assert int(datasheet.max_tp) == 2
    assert [row.keeps_up for row in datasheet.rows] == [True, True, False, False]


def test_h100_over_nvlink_feeds_about_5_5_tp_gpus():
    """Seed 001: 1979T / (900 GB/s / 2) ~ 4400 FLOP/B -> tp <= 5.5: TP 8 makes the network the bottleneck."""
    plan = _plan("h100", "nvlink4", sparse=True)
    assert plan.needed_flop_per_byte == pytest.approx(4398, rel=1e-3)
    assert plan.max_tp == pytest.approx(5.5, abs=0.1)
    assert [row.keeps_up for row in plan.rows] == [True, True, True, False]


def test_h800_feeds_about_2_4_tp_gpus():
    """Seed 001: NVLink cut to 400 GB/s -> ~10,000 FLOP/B -> tp <= 2.4."""
    plan = _plan("h800", "nvlink4-h800", sparse=True)
    assert plan.max_tp == pytest.approx(2.45, abs=0.05)


def test_h100_over_pcie5_cannot_feed_even_one():
    """Seed 001: 1979T / (128 GB/s / 2) ~ 30,000 FLOP/B -> tp <= 0.8."""
    assert _plan("h100", "pcie5", sparse=True).max_tp == pytest.approx(0.8, abs=0.02)


def test_step_estimate_follows_megatron_ring_volumes():
    plan = _plan("h100", "nvlink4")
    activation_bytes = 4096 * 8192 * 2
    for row in plan.rows:
        # 4 all-reduces per layer (2 forward, 2 backward), ring: 2 (tp - 1) / tp x S sent per GPU
        assert row.wire_bytes == 4 * 80 * 2 * (row.tp - 1) * activation_bytes // row.tp
        assert row.compute_s == pytest.approx(plan.rows[0].compute_s / row.tp)
        assert row.comm_s == row.wire_bytes / 450e9


def test_simulated_communication_matches_the_estimate():
    model = load_transformer(SCENARIOS / "models" / "llama-2-7b.json").model_copy(update={"layers": 2})
    plan = _plan("h100", "nvlink4", tps=(1, 2), model=model)
    simulated = simulated_comm_s(plan)
    assert simulated[0] == 0
    assert simulated[1] == pytest.approx(plan.rows[1].comm_s, rel=0.02)  # + per-step latencies only
    assert simulated[1] > plan.rows[1].comm_s


@pytest.mark.parametrize("name, tp, mode", [
    ("llama-2-7b", 1, "weight"),
    ("llama-2-70b", 4, "weight"),
    ("llama-3.1-405b", 8, "weight"),
])
def test_seed_000_recommendation_by_model_size(name, tp, mode):
    model = load_transformer(SCENARIOS / "models" / f"{name}.json")
    plan = _plan("h100", "nvlink4", model=model)
    recommendation = recommend(model, plan.parameters, 1, 4096, plan.max_tp)
    assert (recommendation.tp, recommendation.mode) == (tp, mode)


def test_large_batches_of_a_small_model_recommend_batch_mode():
    model = load_transformer(SCENARIOS / "models" / "llama-2-7b.json")
    # data 64 x 4096 x 4096 x 2 B = 2 GiB per layer > 386 MiB of weights
    assert recommend(model, 6.7e9, 64, 4096, 5.5).mode == "batch"


def test_plan_command_prints_the_table_and_recommendation(capsys, tmp_path):
    plot = tmp_path / "plan.png"
    assert main(["plan", "llama-2-70b", "--device", "h100", "--link", "nvlink4", "--sparse",
                 "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "feeds at most 5.59 TP GPUs" in out
    assert "recommended: TP 4, split the weights (tensor parallel)" in out
    assert "seed 0" not in out and "mode" not in out  # plain words
    assert "sizing one training step (forward and backward) of batch 1 x 4096 tokens" in out
    assert "no TP degree up to 8 fits: add pipeline stages" in out  # 69B with Adam needs more than 8 x 80 GB
    assert f"plot: {plot}" in out and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_memory_per_gpu_by_hand():
    """LLaMA-2 7B (6.74e9 parameters, h 4096, 32 heads, 32 layers), batch 1 x 4096 at TP 4: 16-bit weights
    and gradients, 12 B of Adam state a parameter, and Korthikanti et al.'s s b h (10 + 24/t + 5 a s / (h t))
    bytes of activations per layer."""
    model = load_transformer(SCENARIOS / "models" / "llama-2-7b.json")
    parameters = parameter_count(model)
    use = memory_per_gpu(model, parameters, 4, 1, 4096)
    assert use.weights_bytes == use.gradients_bytes == parameters * 2 // 4
    assert use.optimizer_bytes == parameters * 12 // 4
    assert use.activations_bytes == 32 * 4096 * 4096 * (10 + 6 + 5 * 32 / 4)  # 56 B per element and layer
    assert use.total_bytes == pytest.approx(57.1e9, rel=0.01)


def test_recommendation_raises_tp_until_a_training_step_fits():
    model = load_transformer(SCENARIOS / "models" / "llama-2-7b.json")
    parameters = parameter_count(model)
    assert recommend(model, parameters, 1, 4096, 5.6).tp == 1  # by size alone
    fitted = recommend(model, parameters, 1, 4096, 5.6, memory_bytes=80 * 10**9)
    assert fitted.tp == 4 and "TP 4, not 1: a training step needs 57 GB per GPU at TP 4" in " ".join(fitted.reasons)
    assert recommend(model, parameters, 1, 4096, 5.6, memory_bytes=250 * 10**9).tp == 1  # TP 1 needs 212 GB


def test_plan_command_json(capsys):
    assert main(["plan", str(SCENARIOS / "models" / "llama-2-70b.json"), "--device", "a100", "--link", "pcie4",
                 "--tp", "1,2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [row["tp"] for row in result["rows"]] == [1, 2]
    assert int(result["max_tp"]) == 2 and result["parameters"] == 68_976_648_192


def test_tp_not_dividing_heads_is_one_line_and_exit_2(capsys):
    assert main(["plan", "llama-2-70b", "--tp", "1,3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("fabricsim: plan: --tp 3: expected a TP degree dividing the 64 attention heads and 8 KV heads "
                   "of meta-llama/Llama-2-70b-hf, got 3")
