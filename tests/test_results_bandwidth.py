"""Bandwidth figures measure the collectives, not the compute between them (nccl-tests' algbw/busbw)."""

import csv
import json

import pytest

from fabricsim.cli import main

TRANSFORMER = ("{hidden_size: 1024, layers: 2, heads: 8, kv_heads: 8, head_dim: 128, ffn_size: 4096, "
               "vocab_size: 32000}")


def _rows(tmp_path, name, *sets):
    path = tmp_path / "s.yaml"
    path.write_text(f"""\
name: sp
fabric: {{hosts: 1, gpus_per_host: 4}}
workload:
  rule: megatron
  transformer: {TRANSFORMER}
  batch_size: 1
  seq_len: 512
  trials: 1
  parallelism: {{tp: 4, sequence_parallel: true}}
""")
    out = tmp_path / name
    assert main(["run", str(path), "-o", str(out), "--set", "output.plots=false", *sets]) == 0
    with (out / "trials.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_compute_time_changes_latency_not_bandwidth(tmp_path):
    (bare,) = _rows(tmp_path, "bare")
    (computed,) = _rows(tmp_path, "computed", "--set", "workload.device=h100")
    assert float(computed["latency_us"]) > float(bare["latency_us"])
    assert float(computed["busbw_GBps"]) == pytest.approx(float(bare["busbw_GBps"]), rel=1e-6)
    assert float(computed["algbw_GBps"]) == pytest.approx(float(bare["algbw_GBps"]), rel=1e-6)


def test_mixed_collectives_weight_their_busbw_factors(tmp_path):
    """Sequence parallel: all-gathers and reduce-scatters of one size over 4 ranks, factor 3/4 each
    (trials.csv holds six decimals)."""
    (row,) = _rows(tmp_path, "bare")
    assert float(row["busbw_GBps"]) == pytest.approx(0.75 * float(row["algbw_GBps"]), rel=1e-6)


def test_summary_sizes_are_each_calls_own(tmp_path):
    """Sequence parallel: an all-gather's S is its output, a reduce-scatter's its input; both are
    one micro-batch of activations, b s h B = 1 x 512 x 1024 x 2 bytes, whatever the op."""
    _rows(tmp_path, "bare")
    summary = json.loads((tmp_path / "bare" / "summary.json").read_text())
    assert len(summary["size_bytes"]) == len(summary["per_rank_bytes"]) > 1
    assert set(summary["size_bytes"]) == {1 * 512 * 1024 * 2}
    assert set(summary["per_rank_bytes"]) == {512 * 1024 * 2 // 4, 512 * 1024 * 2}  # AG's share, RS's input
