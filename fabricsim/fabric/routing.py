"""Routing: the path a transfer takes between two GPUs.

Paths are least-latency (link propagation plus the forwarding latency of each device crossed), then
fewest hops: costs are (picoseconds, hops), so equal-cost paths are exactly equal and a link of zero
latency can never make a path loop. Each cost is held exactly in one float64 as
``latency_ps * hop_limit + hops`` (``hop_limit`` exceeds any path's hop count, and every sum stays an
integer below 2**53), so scipy's Dijkstra on the reversed graph gives the costs from every device to
a destination, run for a batch of GPUs of neighbouring ranks at once; a link lies on a least-cost
path exactly when its cost closes the gap. Where several next hops lie on a least-cost path, the
choice is ECMP-style: made at each hop from a per-flow hash, as switches do.
With ``flow_hash = 0`` the first next hop (in link order) is taken, so routes are deterministic.
Adaptive routing picks the least-loaded next hop instead; spraying uses every equal-cost route.
Where several NICs are equally near (one PCIe switch), a GPU's traffic uses its own NIC.
Links taken down (failures) leave every route computed after ``set_down``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from fabricsim.fabric.graph import Fabric, Link

MAX_SPRAY_ROUTES = 64
EXACT_FLOAT_LIMIT = 2**53  # float64 holds every integer below this exactly
COST_BATCH_FLOATS = 2**20  # costs one Dijkstra call computes: destinations x devices (8 MiB)


@dataclass(frozen=True, slots=True)
class Route:
    links: tuple[int, ...]
    latency_ps: int
    bottleneck_bps: float


def route_columns(routes: list[Route], index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per entry of ``index`` (positions in ``routes``): its route's bottleneck rate and latency."""
    return (np.array([route.bottleneck_bps for route in routes])[index],
            np.array([route.latency_ps for route in routes], dtype=np.int64)[index])


class NoRouteError(ValueError):
    """Two GPUs that no chain of links joins: an impossible topology."""


class Router:
    """Least-latency routes over the links that are up; ECMP choices by hash or by least load.

    Costs to a destination are one array over device indices (the fabric's device order), each
    encoded as ``latency_ps * hop_limit + hops``; a device no path joins to the destination costs infinity.
    """

    def __init__(self, fabric: Fabric) -> None:
        self.fabric = fabric
        self._index = {name: i for i, name in enumerate(fabric.devices)}
        self._rank = {gpu: rank for rank, gpu in enumerate(fabric.gpus)}
        devices = len(self._index)
        self._batch_gpus = max(1, COST_BATCH_FLOATS // max(1, devices))
        self._hop_limit = devices + 1  # a least-cost path crosses each device at most once
        hop_latencies_ps = [link.latency_ps + fabric.devices[link.dst].latency_ps for link in fabric.links]
        total_latency_ps = sum(hop_latencies_ps)  # a path crosses each link at most once
        if (total_latency_ps + 1) * self._hop_limit > EXACT_FLOAT_LIMIT:
            raise ValueError(f"fabric too large to route exactly: its total link latency ({total_latency_ps} ps) "
                             f"x {self._hop_limit} (devices + 1) must stay below 2**53")
        self._link_src = np.array([self._index[link.src] for link in fabric.links], dtype=np.intp)
        self._link_dst = np.array([self._index[link.dst] for link in fabric.links], dtype=np.intp)
        self._link_cost = np.array(hop_latencies_ps, dtype=np.float64) * self._hop_limit + 1
        # out links grouped by source device, in link order: device i's are out_links[out_start[i]:out_start[i + 1]]
        self._out_links = np.argsort(self._link_src, kind="stable")
        self._out_start = np.searchsorted(self._link_src[self._out_links], np.arange(devices + 1)).tolist()
        self._out_dst = self._link_dst[self._out_links]
        self._out_cost = self._link_cost[self._out_links]
        self._up = np.ones(len(fabric.links), dtype=bool)
        self._out_up = self._up[self._out_links]
        self._reversed: csr_matrix | None = None  # built on first use and after set_down
        self._cost_to: dict[str, np.ndarray] = {}
        self._routes: dict[tuple[str, str], tuple[Route, bool]] = {}  # first route, and whether it is the only one
        self._next_hops: dict[tuple[str, str], list[Link]] = {}

    def set_down(self, links: tuple[int, ...], down: bool) -> None:
        """Take links out of (or back into) every route computed from now on."""
        self._up[np.asarray(links, dtype=np.intp)] = not down
        self._out_up = self._up[self._out_links]
        self._reversed = None
        self._cost_to.clear()
        self._routes.clear()
        self._next_hops.clear()

    def route(self, src: str, dst: str, flow_hash: int = 0) -> Route:
        """The route of a flow whose 5-tuple hashes to ``flow_hash``; 0 takes the first choice at each hop."""
        route, only = self._first_route(src, dst)
        if not flow_hash or only:
            return route
        return self._walk(src, dst, lambda choices, hop: choices[_mix(flow_hash, hop) % len(choices)])[0]

    def hashed_routes(self, srcs: list[str], dsts: list[str], flow_hashes: np.ndarray) -> tuple[np.ndarray, list[Route]]:
        """``route(src, dst, flow_hash)`` of many flows at once, as an index into a list of routes:
        the flows that have choices walk together, one hop a step, each group of flows at one node
        (towards one destination, from one source) picking its next links with one vectorised hash."""
        route_of, routes, indices = np.empty(len(srcs), dtype=np.int64), [], {}

        def index_of(route: Route) -> int:
            if route.links not in indices:
                indices[route.links] = len(routes)
                routes.append(route)
            return indices[route.links]

        walking = []
        for flow, (src, dst, flow_hash) in enumerate(zip(srcs, dsts, flow_hashes.tolist())):
            route, only = self._first_route(src, dst)
            if only or not flow_hash:
                route_of[flow] = index_of(route)
            else:
                walking.append(flow)
        walking = np.asarray(walking, dtype=np.int64)
        src_of = np.array([self._index[srcs[flow]] for flow in walking.tolist()], dtype=np.int64)
        dst_of = np.array([self._index[dsts[flow]] for flow in walking.tolist()], dtype=np.int64)
        hashes, node, hop, steps = np.asarray(flow_hashes, dtype=np.uint64)[walking], src_of, 0, []
        devices, names = len(self._index), list(self._index)
        while True:
            moving = np.flatnonzero(node != dst_of)
            if not moving.size:
                break
            link_taken = np.full(len(walking), -1, dtype=np.int64)
            picks = _mix(hashes[moving], hop)
            groups, group_of = np.unique((node[moving] * devices + src_of[moving]) * devices + dst_of[moving],
                                         return_inverse=True)
            by_group = np.argsort(group_of, kind="stable")
            bounds = np.searchsorted(group_of[by_group], np.arange(len(groups) + 1)).tolist()
            for group, key in enumerate(groups.tolist()):
                at, src, dst = names[key // devices // devices], names[key // devices % devices], names[key % devices]
                choices = np.array([link.index for link in self._next_links(at, src, dst, self._costs_to(dst))],
                                   dtype=np.int64)
                members = by_group[bounds[group]:bounds[group + 1]]
                link_taken[moving[members]] = choices[(picks[members] % np.uint64(len(choices))).astype(np.int64)]
            node = np.where(link_taken >= 0, self._link_dst[np.maximum(link_taken, 0)], node)
            steps.append(link_taken)
            hop += 1
        for flow, links in zip(walking.tolist(), np.array(steps, dtype=np.int64).T.tolist() if steps else []):
            links = tuple(link for link in links if link >= 0)
            if links not in indices:
                index_of(self._make_route(links, self._first_route(srcs[flow], dsts[flow])[0].latency_ps))
            route_of[flow] = indices[links]
        return route_of, routes

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
                routes.append(self._make_route(links, route.latency_ps))
                continue
            for link in reversed(self._next_links(node, src, dst, cost)):
                stack.append((link.dst, links + (link.index,)))
        return routes

    def _walk(self, src: str, dst: str, pick: Callable[[list[Link], int], Link]) -> tuple[Route, bool]:
        """The route ``pick`` chooses hop by hop, and whether no hop had a choice."""
        cost = self._costs_to(dst)
        cost_from_src = cost[self._index[src]]
        if cost_from_src == np.inf:
            raise NoRouteError(f"no path from {src} to {dst}")
        links, node, hop, only = [], src, 0, True
        while node != dst:
            choices = self._next_links(node, src, dst, cost)
            only = only and len(choices) == 1
            link = pick(choices, hop)
            links.append(link.index)
            node, hop = link.dst, hop + 1
        return self._make_route(tuple(links), int(cost_from_src) // self._hop_limit), only

    def _make_route(self, links: tuple[int, ...], latency_ps: int) -> Route:
        return Route(links, latency_ps, min(self.fabric.links[i].bandwidth_bps for i in links))

    def _next_links(self, node: str, src: str, dst: str, cost: np.ndarray) -> list[Link]:
        """The choices at ``node``; where they include the source's or destination's own NIC, only it
        (several NICs under one PCIe switch are equally near, but each GPU uses its own)."""
        choices = self._choices(node, dst, cost)
        if len(choices) > 1:
            nics = (self.fabric.nic_of.get(src), self.fabric.nic_of.get(dst))
            own = [link for link in choices if link.dst in nics]
            return own or choices
        return choices

    def _choices(self, node: str, dst: str, cost: np.ndarray) -> list[Link]:
        """The next links that are up and lie on a least-cost path to ``dst`` (whose costs are ``cost``),
        in link order, cached."""
        choices = self._next_hops.get((node, dst))
        if choices is None:
            i = self._index[node]
            out = slice(self._out_start[i], self._out_start[i + 1])
            on_path = self._out_up[out] & (self._out_cost[out] + cost[self._out_dst[out]] == cost[i])
            choices = self._next_hops[(node, dst)] = [
                self.fabric.links[index] for index in self._out_links[out][on_path].tolist()]
        return choices

    def _costs_to(self, dst: str) -> np.ndarray:
        """The encoded cost from every device to ``dst`` over links that are up (Dijkstra on the
        reversed graph, for ``dst``'s batch of destinations), cached."""
        cost = self._cost_to.get(dst)
        if cost is None:
            batch = self._batch_of(dst)
            self._cost_to.update(zip(batch, dijkstra(self._reversed_graph(),
                                                     indices=[self._index[name] for name in batch])))
            cost = self._cost_to[dst]
        return cost

    def _batch_of(self, dst: str) -> list[str]:
        """The destinations whose costs are computed with ``dst``'s: its block of ``_batch_gpus``
        consecutive ranks (all of them on a small fabric), or ``dst`` alone if it is no GPU."""
        rank = self._rank.get(dst)
        if rank is None:
            return [dst]
        start = rank - rank % self._batch_gpus
        return self.fabric.gpus[start:start + self._batch_gpus]

    def _reversed_graph(self) -> csr_matrix:
        """The links that are up as a matrix of link costs from their end to their start: the cheapest
        of parallel links, as a sparse matrix would otherwise add them."""
        if self._reversed is None:
            up = np.flatnonzero(self._up)
            devices = len(self._index)
            ends = self._link_dst[up] * devices + self._link_src[up]  # (end, start) in row-major order
            by_ends_then_cost = np.lexsort((self._link_cost[up], ends))
            ends, cheapest = np.unique(ends[by_ends_then_cost], return_index=True)
            costs = self._link_cost[up][by_ends_then_cost][cheapest]
            row_start = np.searchsorted(ends // devices, np.arange(devices + 1))
            self._reversed = csr_matrix((costs, ends % devices, row_start), shape=(devices, devices))
        return self._reversed


def five_tuple_hash(src_rank: int, dst_rank: int, src_port: int) -> int:
    """The ECMP hash of a RoCEv2 flow: its addresses and UDP source port (destination port 4791 and
    protocol UDP are the same for every flow). Never 0, which names the deterministic route. Of one
    flow (ints) or of many (numpy uint64 arrays)."""
    return _mix((src_rank << 40) | (dst_rank << 16) | src_port, 0) | 1


def _mix(flow_hash: int, hop: int) -> int:
    """A per-hop hash of the flow (splitmix64 finaliser), so each switch picks independently; of one
    hash (an int) or of many (numpy uint64, whose arithmetic wraps as the masks do)."""
    x = (flow_hash + ((0x9E3779B97F4A7C15 * (hop + 1)) & 0xFFFFFFFFFFFFFFFF)) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)
