"""The KCCB tutorial's data-size rules (reference/kccb_tutorial.md) for layer-list models.

A tensor's size is ``nelement * element_size``; every collective spans all the fabric's GPUs.
- tensor_parallel: one collective of (one batch of input + its labels) / TP degree per rank;
- data_parallel: one collective of the sum of every layer's weight + bias gradients;
- data_parallel_layerwise: one collective per layer, last layer first (backward order).
"""

from __future__ import annotations

import math

from fabricsim.config import DTYPE_BYTES, Scenario, ScenarioError, TensorSpec
from fabricsim.models.layers import layer_gradient_bytes


def tensor_bytes(tensor: TensorSpec) -> int:
    return math.prod(tensor.shape) * DTYPE_BYTES[tensor.dtype]


def collective_bytes(scenario: Scenario, ranks: int, source: str) -> tuple[int, ...]:
    """The per-rank bytes of each collective in one trial under the scenario's rule."""
    workload = scenario.workload
    model = workload.model
    match workload.rule:
        case "tensor_parallel":
            tp = _degree(workload.parallelism.tp, ranks, f"{source}: workload.parallelism.tp")
            batch_bytes = workload.batch_size * (tensor_bytes(model.input) + tensor_bytes(model.label))
            if batch_bytes % tp:
                raise ScenarioError(f"{source}: workload.parallelism.tp: expected a degree that divides "
                                    f"the batch's {batch_bytes} bytes, got {tp}")
            return (batch_bytes // tp,)
        case "data_parallel":
            _degree(workload.parallelism.dp, ranks, f"{source}: workload.parallelism.dp")
            return (sum(layer_gradient_bytes(layer) for layer in model.layers),)
        case "data_parallel_layerwise":
            _degree(workload.parallelism.dp, ranks, f"{source}: workload.parallelism.dp")
            return tuple(layer_gradient_bytes(layer) for layer in reversed(model.layers))
    raise AssertionError(workload.rule)


def _degree(given: int | None, ranks: int, where: str) -> int:
    if given is not None and given != ranks:
        raise ScenarioError(f"{where}: expected the collective's rank count {ranks} "
                            f"(fabric.hosts x fabric.gpus_per_host), got {given}")
    return ranks
