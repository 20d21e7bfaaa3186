"""``algorithm: auto``: pick, per call, the algorithm with the least predicted time, as NCCL's tuner
picks ring or tree from its cost model.

The prediction is the algorithm's alpha-beta formula (``fabricsim.collectives.cost``) with alpha the
per-message time (path latency plus the protocol's per-hop latency, and the base latency once) and
beta the time per byte of a route's bottleneck. Flat algorithms are priced on the slowest of the
routes from rank 0 (a conservative flat view of the fabric); when the ranks are whole hosts of L GPUs
(numbered host first), the host-aware ones are priced on two levels: the slowest routes from rank 0
to ranks 1..L-1 (inside its host) and to the others (across hosts). Ties go to the first name in
alphabetical order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fabricsim.collectives import algorithms_for
from fabricsim.collectives.cost import COSTS, TWO_LEVEL_COSTS, predicted_time
from fabricsim.collectives.protocol import base_latency_ps, hop_latency_ps
from fabricsim.fabric.graph import Link
from fabricsim.fabric.routing import Route

PS_PER_S = 10**12


@dataclass(frozen=True, slots=True)
class Level:
    """The slowest per-message time and the least bandwidth among some routes."""

    alpha_ps: float
    bandwidth_bps: float

    @property
    def beta_ps_per_byte(self) -> float:
        return 8 * PS_PER_S / self.bandwidth_bps


def choose_algorithm(op: str, ranks: int, size_bytes: int, chunks: int, flat: Level, protocol: str = "none",
                     local_ranks: int = 1, inside: Level | None = None, across: Level | None = None) -> str:
    """The priced algorithm of ``op`` with the least predicted time for this size; the host-aware ones
    compete when ``inside`` and ``across`` describe hosts of ``local_ranks`` GPUs."""
    prices = {}
    for name in algorithms_for(op):
        if (op, name) in TWO_LEVEL_COSTS and inside and across:
            prices[name] = TWO_LEVEL_COSTS[(op, name)](
                ranks // local_ranks, local_ranks, size_bytes, inside.alpha_ps, inside.beta_ps_per_byte,
                across.alpha_ps, across.beta_ps_per_byte, chunks)
        elif (op, name) in COSTS:
            prices[name] = predicted_time(op, name, ranks, size_bytes, flat.alpha_ps, flat.beta_ps_per_byte, chunks)
    if not prices:
        raise ValueError(f"algorithm auto has no priced algorithm for {op}")
    return min(prices, key=lambda name: prices[name] + base_latency_ps(protocol, name))


def choose_for_routes(op: str, ranks: int, size_bytes: int, chunks: int, protocol: str,
                      routes: Sequence[Route], links: Sequence[Link], local_ranks: int = 1) -> str:
    """``choose_algorithm`` on these routes from rank 0 to ranks 1..p-1."""
    def level(some: Sequence[Route]) -> Level:
        return Level(max(route.latency_ps + hop_latency_ps(protocol, {links[i].kind for i in route.links})
                         for route in some), min(route.bottleneck_bps for route in some))

    two_level = 1 < local_ranks < ranks and ranks % local_ranks == 0
    inside, across = (level(routes[:local_ranks - 1]), level(routes[local_ranks - 1:])) if two_level else (None, None)
    return choose_algorithm(op, ranks, size_bytes, chunks, level(routes), protocol, local_ranks, inside, across)
