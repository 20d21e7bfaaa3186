"""Sizing guidance (seed 000), as a recommendation with its reasons in plain words.

- What to split: the batch (data parallel; seed 000's "batch mode") when a layer's data tensors are
  larger than its weight tensors, the weights (tensor parallel; "weight mode") otherwise. Data = one
  layer's input activation, batch x seq x hidden x B; weights = the layer's parameters x B.
- TP degree by model size (seed 000's SN20 column): < 20B: 1; 20-40B: 2; 40-80B: 4; 80-176B: 8;
  beyond the table, 8 (one node) with pipeline stages for the rest. The degree is lowered to one that
  divides the heads and KV heads, raised (up to a node) until a training step fits the GPU's memory
  (``planner.memory``), and compared with what the link can feed (seed 001).
"""

from __future__ import annotations

from dataclasses import dataclass

from fabricsim.config import DTYPE_BYTES, TransformerSpec
from fabricsim.models.transformer import layer_tensors, tp_degree_problem
from fabricsim.planner.memory import gigabytes, memory_per_gpu
from fabricsim.units import format_bytes

# (from, below) parameters -> TP degree: seed 000 "Model-specific size guidance", SN20 column
SIZE_BANDS = ((0, 20e9, 1), (20e9, 40e9, 2), (40e9, 80e9, 4), (80e9, 176e9, 8))
NODE_GPUS = 8


@dataclass(frozen=True, slots=True)
class Recommendation:
    tp: int
    mode: str  # "weight" or "batch"
    reasons: tuple[str, ...]


def recommend(model: TransformerSpec, parameters: int, batch_size: int, seq_len: int,
              max_tp: float, memory_bytes: int | None = None) -> Recommendation:
    """`memory_bytes`: the GPU's memory, when the recommendation should make a training step fit it."""
    element_bytes = DTYPE_BYTES[model.dtype]
    data_bytes = batch_size * seq_len * model.hidden_size * element_bytes
    weight_bytes = sum(t.numel for t in layer_tensors(model)) * element_bytes
    mode = "batch" if data_bytes > weight_bytes else "weight"
    relation = ">" if mode == "batch" else "<="
    split = "the batch (data parallel)" if mode == "batch" else "the weights (tensor parallel)"
    reasons = [f"split {split}: a layer's data tensors ({format_bytes(data_bytes)} for batch {batch_size} x "
               f"seq {seq_len}) {relation} its weight tensors ({format_bytes(weight_bytes)})"]
    band = next(((low, high, tp) for low, high, tp in SIZE_BANDS if low <= parameters < high), None)
    if band:
        low, high, tp = band
        span = f"{low / 1e9:.0f}B-{high / 1e9:.0f}B" if low else f"under {high / 1e9:.0f}B"
        reasons.append(f"TP {tp}: {parameters / 1e9:.1f}B parameters is in the {span} band of the sizing table")
    else:
        tp = NODE_GPUS
        reasons.append(f"TP {tp}: {parameters / 1e9:.1f}B parameters is beyond the sizing table "
                       f"(176B); TP stays inside one {NODE_GPUS}-GPU node, add pipeline stages")
    while tp > 1 and tp_degree_problem(model, tp):
        tp -= 1
    if memory_bytes is not None:
        tp = _fitting_tp(model, parameters, tp, batch_size, seq_len, memory_bytes, reasons)
    if tp <= max_tp:
        reasons.append(f"the link feeds up to {max_tp:.1f} TP GPUs, so TP {tp} keeps compute busy")
    else:
        reasons.append(f"the link feeds only {max_tp:.1f} TP GPUs: at TP {tp} the network "
                       f"bounds the step; a faster link or fewer TP GPUs (with pipeline stages) would use the compute")
    return Recommendation(tp, mode, tuple(reasons))


def _fitting_tp(model: TransformerSpec, parameters: int, tp: int, batch_size: int, seq_len: int,
                memory_bytes: int, reasons: list[str]) -> int:
    """The smallest TP degree from `tp` up to a node that splits the heads and fits a training step in
    `memory_bytes`; `tp` itself, with the reason, when none does."""
    for degree in range(tp, NODE_GPUS + 1):
        if tp_degree_problem(model, degree):
            continue
        need = memory_per_gpu(model, parameters, degree, batch_size, seq_len).total_bytes
        if need <= memory_bytes:
            if degree > tp:
                reasons.append(f"TP {degree}, not {tp}: a training step needs {gigabytes(need)} per GPU at "
                               f"TP {degree}, within the GPU's {gigabytes(memory_bytes)}")
            else:
                reasons.append(f"a training step needs {gigabytes(need)} per GPU at TP {tp}, within the GPU's "
                               f"{gigabytes(memory_bytes)}")
            return degree
    need = memory_per_gpu(model, parameters, tp, batch_size, seq_len).total_bytes
    reasons.append(f"a training step needs {gigabytes(need)} per GPU at TP {tp}, more than the GPU's "
                   f"{gigabytes(memory_bytes)}, and no TP degree up to {NODE_GPUS} fits: add pipeline stages "
                   "or shard the optimizer state over data-parallel GPUs")
    return tp
