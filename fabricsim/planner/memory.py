"""Memory per GPU of one training step split over ``tp`` tensor-parallel GPUs: does it fit the device?

- weights: parameters / tp x the model's element bytes (TP splits every large matrix; the norms it
  repeats are negligible);
- gradients: the same;
- optimizer state: Adam under mixed precision, fp32 master weights and two fp32 moments, 12 bytes a
  parameter / tp (Megatron-LM without the distributed optimizer);
- activations kept for the backward pass, per layer s b h (10 + 24 / t + 5 a s / (h t)) bytes
  (Korthikanti et al., "Reducing Activation Recomputation in Large Transformer Models", MLSys 2023,
  eq. 2: 16-bit activations, tensor parallel without sequence parallelism, no recomputation).
"""

from __future__ import annotations

from dataclasses import dataclass

from fabricsim.config import DTYPE_BYTES, TransformerSpec

OPTIMIZER_BYTES_PER_PARAMETER = 12  # fp32 master weights + Adam's two fp32 moments


@dataclass(frozen=True, slots=True)
class MemoryUse:
    weights_bytes: int
    gradients_bytes: int
    optimizer_bytes: int
    activations_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.gradients_bytes + self.optimizer_bytes + self.activations_bytes


def memory_per_gpu(model: TransformerSpec, parameters: int, tp: int, batch_size: int, seq_len: int) -> MemoryUse:
    weights_bytes = parameters * DTYPE_BYTES[model.dtype] // tp
    h, a, s, b = model.hidden_size, model.heads, seq_len, batch_size
    per_layer = s * b * h * (10 + 24 / tp + 5 * a * s / (h * tp))
    return MemoryUse(weights_bytes, weights_bytes, parameters * OPTIMIZER_BYTES_PER_PARAMETER // tp,
                     round(model.layers * per_layer))


def gigabytes(nbytes: int) -> str:
    """Memory in decimal gigabytes, as GPU datasheets give it: 80000000000 -> '80 GB'."""
    return f"{nbytes / 1e9:,.{0 if nbytes >= 10e9 else 1}f} GB"
