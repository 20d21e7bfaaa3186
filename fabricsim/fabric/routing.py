"""Routing: the path a transfer takes between two GPUs.

Paths are least-latency (link propagation plus the forwarding latency of each device crossed), then
fewest hops: costs are (picoseconds, hops), so equal-cost paths are exactly equal and a link of zero
latency can never make a path loop. Where several next hops lie on
a least-cost path, the choice is ECMP-style: made at each hop from a per-flow hash, as switches do.
With ``flow_hash = 0`` the first next hop (in link order) is taken, so routes are deterministic.
Adaptive routing picks the least-loaded next hop instead; spraying uses every equal-cost route.
Where several NICs are equally near (one PCIe switch), a GPU's traffic uses its own NIC.
Links taken down (failures) leave every route computed after ``set_down``.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Callable

from fabricsim.fabric.graph import Fabric, Link

MAX_SPRAY_ROUTES = 64


@dataclass(frozen=True, slots=True)
class Route:
    links: tuple[int, ...]
    latency_ps: int
    bottleneck_bps: float


class NoRouteError(ValueError):
    """Two GPUs that no chain of links joins: an impossible topology."""


class Router:
    """Least-latency routes over the links that are up; ECMP choices by hash or by least load."""

    def __init__(self, fabric: Fabric) -> None:
        self.fabric = fabric
        self._in: dict[str, list] = {name: [] for name in fabric.devices}
        for link in fabric.links:
            self._in[link.dst].append(link)
        self._down: set[int] = set()
        self._cost_to: dict[str, dict[str, tuple[int, int]]] = {}
        self._routes: dict[tuple[str, str], tuple[Route, bool]] = {}  # first route, and whether it is the only one
        self._next_hops: dict[tuple[str, str], list[Link]] = {}

    def set_down(self, links: tuple[int, ...], down: bool) -> None:
        """Take links out of (or back into) every route computed from now on."""
        (self._down.update if down else self._down.difference_update)(links)
        self._cost_to.clear()
        self._routes.clear()
        self._next_hops.clear()

    def route(self, src: str, dst: str, flow_hash: int = 0) -> Route:
        """The route of a flow whose 5-tuple hashes to ``flow_hash``; 0 takes the first choice at each hop."""
        route, only = self._first_route(src, dst)
        if not flow_hash or only:
            return route
        return self._walk(src, dst, lambda choices, hop: choices[_mix(flow_hash, hop) % len(choices)])[0]

    def _first_route(self, src: str, dst: str) -> tuple[Route, bool]:
        cached = self._routes.get((src, dst))
        if cached is None:
            cached = self._routes[(src, dst)] = self._walk(src, dst, lambda choices, hop: choices[0])
        return cached

    def least_loaded_route(self, src: str, dst: str, flows_on: Callable[[int], int], flow_hash: int) -> Route:
        """Adaptive routing: at each hop the next link carrying the fewest flows, ties broken by the hash."""
        def pick(choices, hop):
            fewest = min(flows_on(link.index) for link in choices)
            tied = [link for link in choices if flows_on(link.index) == fewest]
            return tied[_mix(flow_hash, hop) % len(tied)]
        route, only = self._first_route(src, dst)
        return route if only else self._walk(src, dst, pick)[0]

    def equal_cost_routes(self, src: str, dst: str) -> list[Route]:
        """Every least-latency route (per-packet spraying uses them all), at most MAX_SPRAY_ROUTES."""
        route, only = self._first_route(src, dst)
        if only:
            return [route]
        cost = self._costs_to(dst)
        routes, stack = [], [(src, ())]
        while stack and len(routes) < MAX_SPRAY_ROUTES:
            node, links = stack.pop()
            if node == dst:
                routes.append(self._make_route(links, cost[src][0]))
                continue
            for link in reversed(self._next_links(node, src, dst, cost)):
                stack.append((link.dst, links + (link.index,)))
        return routes

    def _walk(self, src: str, dst: str, pick: Callable[[list[Link], int], Link]) -> tuple[Route, bool]:
        """The route ``pick`` chooses hop by hop, and whether no hop had a choice."""
        cost = self._costs_to_checked(src, dst)
        links, node, hop, only = [], src, 0, True
        while node != dst:
            choices = self._next_links(node, src, dst, cost)
            only = only and len(choices) == 1
            link = pick(choices, hop)
            links.append(link.index)
            node, hop = link.dst, hop + 1
        return self._make_route(tuple(links), cost[src][0]), only

    def _make_route(self, links: tuple[int, ...], latency_ps: int) -> Route:
        return Route(links, latency_ps, min(self.fabric.links[i].bandwidth_bps for i in links))

    def _next_links(self, node: str, src: str, dst: str, cost: dict[str, tuple[int, int]]) -> list[Link]:
        """The choices at ``node``; where they include the source's or destination's own NIC, only it
        (several NICs under one PCIe switch are equally near, but each GPU uses its own)."""
        choices = self._choices(node, dst, cost)
        if len(choices) > 1:
            nics = (self.fabric.nic_of.get(src), self.fabric.nic_of.get(dst))
            own = [link for link in choices if link.dst in nics]
            return own or choices
        return choices

    def _choices(self, node: str, dst: str, cost: dict[str, tuple[int, int]]) -> list[Link]:
        """The next links that lie on a least-cost path to ``dst`` (whose costs are ``cost``), cached."""
        choices = self._next_hops.get((node, dst))
        if choices is None:
            choices = self._next_hops[(node, dst)] = [
                link for link in self.fabric.out_links(node)
                if link.index not in self._down and link.dst in cost
                and cost[node] == (self._hop_cost(link) + cost[link.dst][0], cost[link.dst][1] + 1)]
        return choices

    def _hop_cost(self, link: Link) -> int:
        return link.latency_ps + self.fabric.devices[link.dst].latency_ps

    def _costs_to_checked(self, src: str, dst: str) -> dict[str, tuple[int, int]]:
        cost = self._costs_to(dst)
        if src not in cost:
            raise NoRouteError(f"no path from {src} to {dst}")
        return cost

    def _costs_to(self, dst: str) -> dict[str, tuple[int, int]]:
        """(least latency, then fewest hops) from every device to ``dst`` over links that are up
        (Dijkstra on the reversed graph), cached."""
        cost = self._cost_to.get(dst)
        if cost is not None:
            return cost
        cost = {dst: (0, 0)}
        frontier = [(0, 0, dst)]
        while frontier:
            latency_ps, hops, node = heapq.heappop(frontier)
            if (latency_ps, hops) > cost[node]:
                continue
            for link in self._in[node]:
                if link.index in self._down:
                    continue
                candidate = (latency_ps + self._hop_cost(link), hops + 1)
                if link.src not in cost or candidate < cost[link.src]:
                    cost[link.src] = candidate
                    heapq.heappush(frontier, (*candidate, link.src))
        self._cost_to[dst] = cost
        return cost


def five_tuple_hash(src_rank: int, dst_rank: int, src_port: int) -> int:
    """The ECMP hash of a RoCEv2 flow: its addresses and UDP source port (destination port 4791 and
    protocol UDP are the same for every flow). Never 0, which names the deterministic route."""
    return _mix((src_rank << 40) | (dst_rank << 16) | src_port, 0) | 1


def _mix(flow_hash: int, hop: int) -> int:
    """A per-hop hash of the flow (splitmix64 finaliser), so each switch picks independently."""
    x = (flow_hash + 0x9E3779B97F4A7C15 * (hop + 1)) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)
