"""The collective section: the operation, its algorithm, chunking, root and software latency."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from fabricsim.config.base import Spec

# the algorithms fabricsim builds for each op, by name (the builders: fabricsim.collectives.ALGORITHMS,
# which holds the same names; tests/test_collectives_algorithms.py keeps the two equal)
OP_ALGORITHMS = {
    "all_gather": ("flat_ring", "nvls", "pat", "recursive_doubling", "ring"),
    "reduce_scatter": ("flat_ring", "nvls", "pat", "recursive_halving", "ring"),
    "all_reduce": ("bidirectional_ring", "collnet_chain", "collnet_direct", "double_binary_tree", "flat_ring",
                   "halving_doubling", "hierarchical", "nvls", "nvls_tree", "recursive_doubling", "ring", "tree"),
    "broadcast": ("binomial_tree", "ring"),
    "reduce": ("binomial_tree", "ring"),
    "gather": ("direct",),
    "all_to_all": ("direct", "pxn"),
    "send_recv": ("direct",),
}
# NCCL's limits on GPUs per host (device.h): CollNet's direct arity, NVLS all-gather / reduce-scatter's arity
MAX_COLLNET_LOCAL_RANKS = 8  # NCCL_MAX_DIRECT_ARITY + 1
MAX_NVLS_ARITY = 32  # NCCL_MAX_NVLS_ARITY
# NCCL_ALGO's spellings (lower case) of fabricsim's names; multi_ring: an earlier name of ring
ALIASES = {"multi_ring": "ring", "nvlstree": "nvls_tree", "collnetdirect": "collnet_direct",
           "collnetchain": "collnet_chain", "collnet": "collnet_direct"}


class CollectiveSpec(Spec):
    op: Literal["all_gather", "reduce_scatter", "all_reduce", "broadcast", "reduce", "gather", "all_to_all",
                "send_recv"] = "all_gather"
    algorithm: Literal["ring", "flat_ring", "bidirectional_ring", "halving_doubling", "recursive_doubling",
                       "recursive_halving", "double_binary_tree", "hierarchical", "binomial_tree", "direct",
                       "pxn", "tree", "pat", "nvls", "nvls_tree", "collnet_direct", "collnet_chain",
                       "auto"] = Field(
        "ring", description="auto: as NCCL's tuning model picks, per call")
    chunks: int = Field(1, ge=1, description="pipelined pieces each step is cut into (pipelined algorithms)")
    channels: int = Field(0, ge=0, description="ring and tree: rings or trees at once (NCCL's channels); 0: as NCCL picks")
    root: int = Field(0, ge=0, description="broadcast, reduce and gather root; send_recv sender")
    protocol: Literal["none", "simple", "ll", "ll128", "auto"] = Field(
        "none", description="per-message software latency: NCCL's constants for this protocol; auto: as NCCL picks")

    @field_validator("algorithm", mode="before")
    @classmethod
    def _alias(cls, value: object) -> object:
        """NCCL_ALGO's spellings in any case (Ring, Tree, PAT, NVLS, NVLSTree, CollNetDirect, CollNetChain;
        CollNet is CollNetDirect); ``multi_ring``, an earlier name of ``ring``."""
        if not isinstance(value, str):
            return value
        name = value.lower()
        return ALIASES.get(name, name if name in ("ring", "tree", "pat", "nvls", "auto") else value)

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol_case(cls, value: object) -> object:
        """NCCL_PROTO's spellings in any case (LL, LL128, Simple)."""
        return value.lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_algorithm(self) -> CollectiveSpec:
        known = list(OP_ALGORITHMS[self.op])
        if self.algorithm != "auto" and self.algorithm not in known:
            raise ValueError(f"expected algorithm auto or one of {known} for op {self.op}, got {self.algorithm!r}")
        return self
