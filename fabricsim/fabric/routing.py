"""Routing: the path a transfer takes between two GPUs.

Paths are least-latency (link propagation plus the forwarding latency of each device crossed), so
costs are integer picoseconds and equal-cost paths are exactly equal. Where several next hops lie on
a least-cost path, the choice is ECMP-style: made at each hop from a per-flow hash, as switches do.
With ``flow_hash = 0`` the first next hop (in link order) is taken, so routes are deterministic.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from fabricsim.fabric.graph import Fabric


@dataclass(frozen=True, slots=True)
class Route:
    links: tuple[int, ...]
    latency_ps: int
    bottleneck_bps: float


class NoRouteError(ValueError):
    """Two GPUs that no chain of links joins: an impossible topology."""


class Router:
    def __init__(self, fabric: Fabric) -> None:
        self.fabric = fabric
        self._in: dict[str, list] = {name: [] for name in fabric.devices}
        for link in fabric.links:
            self._in[link.dst].append(link)
        self._cost_to: dict[str, dict[str, int]] = {}
        self._routes: dict[tuple[str, str, int], Route] = {}

    def route(self, src: str, dst: str, flow_hash: int = 0) -> Route:
        key = (src, dst, flow_hash)
        route = self._routes.get(key)
        if route is None:
            route = self._routes[key] = self._walk(src, dst, flow_hash)
        return route

    def _walk(self, src: str, dst: str, flow_hash: int) -> Route:
        cost = self._costs_to(dst)
        if src not in cost:
            raise NoRouteError(f"no path from {src} to {dst}")
        links, node, hop = [], src, 0
        while node != dst:
            choices = [link for link in self.fabric.out_links(node)
                       if link.dst in cost and cost[node] == self._hop_cost(link) + cost[link.dst]]
            link = choices[_mix(flow_hash, hop) % len(choices)] if flow_hash else choices[0]
            links.append(link.index)
            node, hop = link.dst, hop + 1
        bottleneck = min(self.fabric.links[i].bandwidth_bps for i in links)
        return Route(tuple(links), cost[src], bottleneck)

    def _hop_cost(self, link) -> int:
        return link.latency_ps + self.fabric.devices[link.dst].latency_ps

    def _costs_to(self, dst: str) -> dict[str, int]:
        """Least latency from every device to ``dst`` (Dijkstra on the reversed graph), cached."""
        cost = self._cost_to.get(dst)
        if cost is not None:
            return cost
        cost = {dst: 0}
        frontier = [(0, dst)]
        while frontier:
            so_far, node = heapq.heappop(frontier)
            if so_far > cost[node]:
                continue
            for link in self._in[node]:
                candidate = so_far + self._hop_cost(link)
                if candidate < cost.get(link.src, candidate + 1):
                    cost[link.src] = candidate
                    heapq.heappush(frontier, (candidate, link.src))
        self._cost_to[dst] = cost
        return cost


def _mix(flow_hash: int, hop: int) -> int:
    """A per-hop hash of the flow (splitmix64 finaliser), so each switch picks independently."""
    x = (flow_hash + 0x9E3779B97F4A7C15 * (hop + 1)) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)
