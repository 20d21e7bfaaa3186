"""Seed 000's sizing guidance, as a recommendation with its reason.

- Mode: split the batch ("batch mode", data parallel) when a layer's data tensors are larger than its
  weight tensors, the weights ("weight mode", tensor parallel) otherwise. Data = one layer's input
  activation, batch x seq x hidden x B; weights = the layer's parameters x B.
- TP degree by model size (seed 000's SN20 column): < 20B: 1; 20-40B: 2; 40-80B: 4; 80-176B: 8;
  beyond the table, 8 (one node) with pipeline stages for the rest. The degree is lowered to one that
  divides the heads and KV heads, and compared with what the link can feed (seed 001).
"""

from __future__ import annotations

from dataclasses import dataclass

from fabricsim.config import DTYPE_BYTES, TransformerSpec
from fabricsim.models.transformer import layer_tensors, tp_degree_problem
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
              max_tp: float) -> Recommendation:
    element_bytes = DTYPE_BYTES[model.dtype]
    data_bytes = batch_size * seq_len * model.hidden_size * element_bytes
    weight_bytes = sum(t.numel for t in layer_tensors(model)) * element_bytes
    mode = "batch" if data_bytes > weight_bytes else "weight"
    relation = ">" if mode == "batch" else "<="
    reasons = [f"{mode} mode: a layer's data tensors ({format_bytes(data_bytes)} for batch {batch_size} x "
               f"seq {seq_len}) {relation} its weight tensors ({format_bytes(weight_bytes)})"]
    band = next(((low, high, tp) for low, high, tp in SIZE_BANDS if low <= parameters < high), None)
    if band:
        low, high, tp = band
        span = f"{low / 1e9:.0f}B-{high / 1e9:.0f}B" if low else f"under {high / 1e9:.0f}B"
        reasons.append(f"TP {tp}: {parameters / 1e9:.1f}B parameters is in seed 000's {span} band")
    else:
        tp = NODE_GPUS
        reasons.append(f"TP {tp}: {parameters / 1e9:.1f}B parameters is beyond seed 000's table "
                       f"(176B); TP stays inside one {NODE_GPUS}-GPU node, add pipeline stages")
    while tp > 1 and tp_degree_problem(model, tp):
        tp -= 1
    if tp <= max_tp:
        reasons.append(f"the link feeds up to {max_tp:.1f} TP GPUs (seed 001), so TP {tp} keeps compute busy")
    else:
        reasons.append(f"the link feeds only {max_tp:.1f} TP GPUs (seed 001): at TP {tp} the network "
                       f"bounds the step; a faster link or fewer TP GPUs (with PP) would use the compute")
    return Recommendation(tp, mode, tuple(reasons))
