"""The collective section: the operation, its algorithm, chunking, root and software latency."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from fabricsim.collectives import algorithms_for
from fabricsim.config.base import Spec


class CollectiveSpec(Spec):
    op: Literal["all_gather", "reduce_scatter", "all_reduce", "broadcast", "reduce", "gather", "all_to_all",
                "send_recv"] = "all_gather"
    algorithm: Literal["ring", "bidirectional_ring", "halving_doubling", "recursive_doubling",
                       "recursive_halving", "double_binary_tree", "hierarchical", "binomial_tree", "direct",
                       "pxn", "multi_ring", "auto"] = Field("ring", description="auto: the least predicted time, per call")
    chunks: int = Field(1, ge=1, description="pipelined pieces each step is cut into (pipelined algorithms)")
    root: int = Field(0, ge=0, description="broadcast, reduce and gather root; send_recv sender")
    protocol: Literal["none", "simple", "ll", "ll128"] = Field(
        "none", description="per-message software latency: NCCL's constants for this protocol")

    @model_validator(mode="after")
    def _check_algorithm(self) -> CollectiveSpec:
        known = algorithms_for(self.op)
        if self.algorithm != "auto" and self.algorithm not in known:
            raise ValueError(f"expected algorithm auto or one of {known} for op {self.op}, got {self.algorithm!r}")
        return self
