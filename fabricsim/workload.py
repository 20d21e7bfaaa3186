"""Workload: a model and a parallelism rule in, the collectives of every trial out.

The rules are those of the KCCB tutorial (reference/kccb_tutorial.md): a tensor's size is
``nelement * element_size``; trials = batch_count x epochs with batch_count = ceil(samples / batch);
- tensor_parallel: one collective of (one batch of input + its labels) / TP degree per rank;
- data_parallel: one collective of the sum of every layer's weight + bias gradients;
- data_parallel_layerwise: one collective per layer, last layer first (backward order);
- data_sizes: an explicit list of per-rank sizes (KCCB's "Data Size" list), each run ``trials`` times.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fabricsim.config import DTYPE_BYTES, LayerSpec, Scenario, ScenarioError, TensorSpec


@dataclass(frozen=True, slots=True)
class Trial:
    """One trial: its index and the per-rank bytes of each collective it runs, in order."""

    index: int
    per_rank_bytes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class WorkloadPlan:
    op: str
    ranks: int
    trials: tuple[Trial, ...]


def tensor_bytes(tensor: TensorSpec) -> int:
    return math.prod(tensor.shape) * DTYPE_BYTES[tensor.dtype]


def layer_gradient_bytes(layer: LayerSpec) -> int:
    """Weight + bias gradient bytes of a Linear layer (same shape and dtype as the parameters)."""
    params = layer.in_features * layer.out_features + (layer.out_features if layer.bias else 0)
    return params * DTYPE_BYTES[layer.dtype]


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


def plan_workload(scenario: Scenario, ranks: int, source: str) -> WorkloadPlan:
    workload = scenario.workload
    if workload.rule == "data_sizes":
        repeats = workload.trials or 1
        sizes = [size for size in workload.data_sizes for _ in range(repeats)]
        trials = tuple(Trial(i, (size,)) for i, size in enumerate(sizes))
    else:
        per_trial = collective_bytes(scenario, ranks, source)
        count = workload.trials or batch_count(workload.dataset_samples, workload.batch_size) * workload.epochs
        trials = tuple(Trial(i, per_trial) for i in range(count))
    return WorkloadPlan(scenario.collective.op, ranks, trials)


def batch_count(samples: int, batch_size: int) -> int:
    """Batches per epoch of a loader that keeps the last, partial batch (PyTorch's default)."""
    return -(-samples // batch_size)


def _degree(given: int | None, ranks: int, where: str) -> int:
    if given is not None and given != ranks:
        raise ScenarioError(f"{where}: expected the collective's rank count {ranks} "
                            f"(fabric.hosts x fabric.gpus_per_host), got {given}")
    return ranks
