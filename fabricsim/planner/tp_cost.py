"""Tensor-parallel cost per TP degree: seed 001's compute-to-communication arithmetic, and a step estimate.

Seed 001: a GPU computing Q, K and V for h / tp of the hidden dimensions does 2 x 3 x (h / tp) FLOPs
for every input element it receives (B bytes each), a ratio of 6 h / (tp B) FLOP/B. The link keeps up
while that ratio reaches what the GPU needs, peak FLOP/s / one-way bandwidth (half the bidirectional
figure), so it can feed at most tp = 6 h / (B x needed) GPUs.

Step estimate (the ``megatron`` workload rule, one micro-batch of batch x seq tokens, no overlap):
compute = training FLOPs / (tp x peak); wire bytes = what rank 0 sends in its TP calls under the ring
algorithm (2 (tp - 1) / tp x S per all-reduce); comm = wire bytes / one-way bandwidth.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from fabricsim.collectives import build_schedule
from fabricsim.collectives.sizes import size_bytes_of
from fabricsim.config import DTYPE_BYTES, ParallelismSpec, ScenarioError, TransformerSpec, WorkloadSpec
from fabricsim.config.devices import Device, Link
from fabricsim.models.transformer import parameter_count, tp_degree_problem, training_flops
from fabricsim.planner.memory import memory_per_gpu
from fabricsim.workload.megatron import megatron_step
from fabricsim.workload.placement import Mesh

QKV_FLOPS_PER_ELEMENT = 2 * 3  # 2 FLOPs per multiply-add, for each of Q, K and V


@dataclass(frozen=True, slots=True)
class TpCost:
    """One TP degree: per GPU and per step, unless named otherwise."""

    tp: int
    heads_per_gpu: int
    compute_s: float
    wire_bytes: int
    comm_s: float
    flop_per_byte: float  # seed 001's 6 h / (tp B)
    keeps_up: bool
    memory_bytes: int  # weights, gradients, optimizer state and activations (planner.memory)
    fits: bool  # in the device's memory


@dataclass(frozen=True, slots=True)
class TpPlan:
    model: TransformerSpec
    parameters: int
    device: Device
    link: Link
    peak_flops: float
    batch_size: int
    seq_len: int
    needed_flop_per_byte: float
    max_tp: float
    rows: tuple[TpCost, ...]


def needed_flop_per_byte(peak_flops: float, link: Link) -> float:
    """FLOPs the GPU must do per byte received for the link not to be the bottleneck."""
    return peak_flops / link.one_way_Bps


def seed_flop_per_byte(model: TransformerSpec, tp: int) -> float:
    return QKV_FLOPS_PER_ELEMENT * model.hidden_size / (tp * DTYPE_BYTES[model.dtype])


def max_tp_degree(model: TransformerSpec, needed: float) -> float:
    """The largest (fractional) TP degree whose seed-001 ratio still meets ``needed``."""
    return QKV_FLOPS_PER_ELEMENT * model.hidden_size / (DTYPE_BYTES[model.dtype] * needed)


def check_tp_degrees(model: TransformerSpec, tps: tuple[int, ...]) -> None:
    for tp in tps:
        if problem := tp_degree_problem(model, tp):
            raise ScenarioError(f"plan: --tp {tp}: {problem}")


def plan_tp(model: TransformerSpec, device: Device, link: Link, tps: tuple[int, ...], batch_size: int,
            seq_len: int, peak_flops: float) -> TpPlan:
    check_tp_degrees(model, tps)
    needed = needed_flop_per_byte(peak_flops, link)
    step_flops = training_flops(model, batch_size * seq_len, seq_len)
    parameters = parameter_count(model)
    rows = []
    for tp in tps:
        wire_bytes = tp_wire_bytes(model, tp, batch_size, seq_len)
        ratio = seed_flop_per_byte(model, tp)
        memory_bytes = memory_per_gpu(model, parameters, tp, batch_size, seq_len).total_bytes
        rows.append(TpCost(tp, model.heads // tp, step_flops / tp / peak_flops, wire_bytes,
                           wire_bytes / link.one_way_Bps, ratio, ratio >= needed, memory_bytes,
                           memory_bytes <= device.memory_bytes))
    return TpPlan(model, parameters, device, link, peak_flops, batch_size, seq_len, needed,
                  max_tp_degree(model, needed), tuple(rows))


def tp_wire_bytes(model: TransformerSpec, tp: int, batch_size: int, seq_len: int) -> int:
    """Bytes rank 0 sends in one step's TP calls (Megatron rule, ring algorithm)."""
    workload = WorkloadSpec(rule="megatron", transformer=model, batch_size=batch_size, seq_len=seq_len,
                            trials=1, parallelism=ParallelismSpec(tp=tp))
    calls, _ = megatron_step(workload, Mesh(tp, 1, 1))
    return sum(_ring_bytes_sent(call.op, len(call.group), call.per_rank_bytes) for call in calls)


@lru_cache(maxsize=64)
def _ring_bytes_sent(op: str, ranks: int, per_rank_bytes: int) -> int:
    schedule = build_schedule(op, "ring", ranks, size_bytes_of(op, ranks, per_rank_bytes))
    return schedule.bytes_sent_by(0)
