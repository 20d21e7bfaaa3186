"""``fabricsim plan``: seed 001's arithmetic for LLaMA-2 70B, seed 000's recommendation, and the
table, JSON, plot and bad-input behaviour of the command."""

import json

import pytest

from fabricsim.cli import main
from fabricsim.config import load_transformer
from fabricsim.models.devices import DEVICES, LINKS
from fabricsim.planner.sizing import recommend
from fabricsim.planner.simulate import simulated_comm_s
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
    assert "recommendation (seed 000): TP 4, weight mode" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


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
