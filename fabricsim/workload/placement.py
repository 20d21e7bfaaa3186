"""Placement: where the TP, DP and PP groups sit on the fabric's GPUs.

Global ranks are laid out TP fastest, then DP, then PP (Megatron-LM's default order; seed 003's
("dp", "tp") device mesh): rank = tp_index + tp x (dp_index + dp x pp_index). The fabric numbers
GPUs host first, so a TP group of consecutive ranks stays inside one host whenever the TP degree
divides the GPUs per host.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Mesh:
    tp: int
    dp: int
    pp: int

    @property
    def size(self) -> int:
        return self.tp * self.dp * self.pp

    def rank(self, tp_index: int = 0, dp_index: int = 0, pp_index: int = 0) -> int:
        return tp_index + self.tp * (dp_index + self.dp * pp_index)

    def tp_group(self, dp_index: int = 0, pp_index: int = 0) -> tuple[int, ...]:
        return tuple(self.rank(t, dp_index, pp_index) for t in range(self.tp))

    def dp_group(self, tp_index: int = 0, pp_index: int = 0) -> tuple[int, ...]:
        return tuple(self.rank(tp_index, d, pp_index) for d in range(self.dp))

    def pp_group(self, tp_index: int = 0, dp_index: int = 0) -> tuple[int, ...]:
        return tuple(self.rank(tp_index, dp_index, p) for p in range(self.pp))
