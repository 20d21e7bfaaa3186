"""Routing: the path a transfer takes between two GPUs.

Paths are least-latency (link propagation plus the forwarding latency of each device crossed), then
fewest hops: costs are (picoseconds, hops), so equal-cost paths are exactly equal and a link of zero
latency can never make a path loop. Each cost is held exactly in one float64 as
``latency_ps * hop_limit + hops`` (``hop_limit`` exceeds any path's hop count, and every sum stays an
integer below 2**53), so the costs from every device to a destination are exact, for a batch of GPUs
of neighbouring ranks at once: on a small fabric relaxed over every link at once (Bellman-Ford as numpy
steps), on a large one by scipy's compiled Dijkstra on the reversed graph (the same numbers; scipy is
imported only there, as it takes longer to import than a small fabric takes to route); a link lies on
a least-cost path exactly when its cost closes the gap. Where several next hops lie on a least-cost path, the
choice is ECMP-style: made at each hop from a per-flow hash, as switches do.
With ``flow_hash = 0`` the first next hop (in link order) is taken, so routes are deterministic.
Adaptive routing picks the least-loaded next hop instead; spraying uses every equal-cost route.
Where several NICs are equally near (one PCIe switch), a GPU's traffic uses its own NIC.
Links taken down (failures) leave every route computed after ``set_down``.

Between GPUs of different hosts on a switched fabric, routes follow NCCL's path choice
(src/graph/paths.cc) through fixed waypoints, each leg least-latency: the sending GPU's own NIC; on
a rail-optimized fabric (``nic_policy`` "rail") the NIC on the destination NIC's rail: reached under
the GPU's PCIe switch when it is one of its nearest NICs (GPUDirect RDMA), else, with NVLink inside
hosts, over NVLink through the GPU beside it (PXN, NCCL 2.12+), so cross-rail traffic never reaches
the spines. The destination receives through its own NIC. ECMP
choices are thus made only among switch paths, never between two NVLink detours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from fabricsim.fabric.graph import Fabric, Link

MAX_SPRAY_ROUTES = 64
EXACT_FLOAT_LIMIT = 2**53  # float64 holds every integer below this exactly
COST_BATCH_FLOATS = 2**20  # costs computed at once: destinations x devices (8 MiB)
SMALL_FABRIC_DEVICES = 512  # up to this many devices, least costs are found in numpy, beyond by scipy


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
        nics = list(fabric.nic_at.values())
        self._batch_lists = {name: (names, position) for names in (fabric.gpus, nics)
                             for position, name in enumerate(names)}
        self._gpu_beside = {nic: gpu for gpu, nic in fabric.nic_of.items()}
        self._waypoints: dict[tuple[str, str], tuple[str, ...]] = {}
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
        self._reversed = None  # scipy's sparse matrix of the links that are up, built on first use
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
        the flows that have choices walk together through their waypoints, one hop a step, each group
        of flows at one node (towards one waypoint, from one source to one destination) picking its
        next links with one vectorised hash."""
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
        # each walking flow's waypoints (device indices, padded with its last) and the one it heads for
        legs = [[self._index[name] for name in self.waypoints(srcs[flow], dsts[flow])] for flow in walking.tolist()]
        width = max(map(len, legs), default=2)
        way = np.array([leg + leg[-1:] * (width - len(leg)) for leg in legs], dtype=np.int64).reshape(-1, width)
        last, heading = np.array([len(leg) - 1 for leg in legs], dtype=np.int64), np.ones(len(legs), dtype=np.int64)
        rows = np.arange(len(legs))
        hashes, node, hop, steps = np.asarray(flow_hashes, dtype=np.uint64)[walking], way[:, 0].copy(), 0, []
        names = list(self._index)
        while True:
            while (reached := (node == way[rows, heading]) & (heading < last)).any():
                heading[reached] += 1
            moving = np.flatnonzero(node != way[rows, heading])
            if not moving.size:
                break
            link_taken = np.full(len(walking), -1, dtype=np.int64)
            picks = _mix(hashes[moving], hop)
            keys = np.stack([node[moving], way[moving, 0], way[moving, -1], way[moving, heading[moving]]], axis=1)
            groups, group_of = np.unique(keys, axis=0, return_inverse=True)
            group_of = group_of.ravel()
            by_group = np.argsort(group_of, kind="stable")
            bounds = np.searchsorted(group_of[by_group], np.arange(len(groups) + 1)).tolist()
            for group, (at, src, dst, end) in enumerate(groups.tolist()):
                at, src, dst, end = names[at], names[src], names[dst], names[end]
                choices = np.array([link.index for link in self._next_links(at, src, dst, self._costs_to(end), end)],
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
        """Every least-latency route through the waypoints (per-packet spraying uses them all), at most
        MAX_SPRAY_ROUTES."""
        route, only = self._first_route(src, dst)
        if only:
            return [route]
        paths: list[tuple[int, ...]] = [()]
        legs = self.waypoints(src, dst)
        for start, end in zip(legs, legs[1:]):
            tails = self._leg_paths(start, end, src, dst)
            paths = [path + tail for path in paths for tail in tails][:MAX_SPRAY_ROUTES]
        return [self._make_route(links, route.latency_ps) for links in paths]

    def _leg_paths(self, start: str, end: str, src: str, dst: str) -> list[tuple[int, ...]]:
        """Every least-latency path from ``start`` to ``end``, depth first, at most MAX_SPRAY_ROUTES."""
        cost = self._costs_to(end)
        paths, stack = [], [(start, ())]
        while stack and len(paths) < MAX_SPRAY_ROUTES:
            node, links = stack.pop()
            if node == end:
                paths.append(links)
                continue
            for link in reversed(self._next_links(node, src, dst, cost, end)):
                stack.append((link.dst, links + (link.index,)))
        return paths

    def waypoints(self, src: str, dst: str) -> tuple[str, ...]:
        """The devices a route from ``src`` to ``dst`` passes in order, its ends included: NCCL's path
        choice between GPUs of different hosts (sending NIC, PXN proxy GPU, receiving NIC), else the ends."""
        cached = self._waypoints.get((src, dst))
        if cached is None:
            cached = self._waypoints[(src, dst)] = self._choose_waypoints(src, dst)
        return cached

    def _choose_waypoints(self, src: str, dst: str) -> tuple[str, ...]:
        fabric = self.fabric
        src_device, dst_device = fabric.devices[src], fabric.devices[dst]
        if (not fabric.nic_policy or src_device.kind != "gpu" or dst_device.kind != "gpu"
                or src_device.host == dst_device.host):
            return (src, dst)
        recv_nic = fabric.nic_of[dst]
        near = fabric.near_nics[src]
        on_rail = fabric.nic_at[(src_device.host, fabric.nic_rail[recv_nic])]
        if fabric.nic_policy == "rail" and on_rail in near:
            return (src, on_rail, recv_nic, dst)
        if fabric.nic_policy == "rail" and any(link.kind == "nvlink" for link in fabric.out_links(src)):
            return (src, self._gpu_beside[on_rail], on_rail, recv_nic, dst)
        return (src, near[0], recv_nic, dst)

    def _walk(self, src: str, dst: str, pick: Callable[[list[Link], int], Link]) -> tuple[Route, bool]:
        """The route ``pick`` chooses hop by hop through the waypoints, and whether no hop had a choice."""
        links, hop, only, latency_ps = [], 0, True, 0
        legs = self.waypoints(src, dst)
        for start, end in zip(legs, legs[1:]):
            cost = self._costs_to(end)
            cost_from_start = cost[self._index[start]]
            if cost_from_start == np.inf:
                raise NoRouteError(f"no path from {src} to {dst}")
            node = start
            while node != end:
                choices = self._next_links(node, src, dst, cost, end)
                only = only and len(choices) == 1
                link = pick(choices, hop)
                links.append(link.index)
                node, hop = link.dst, hop + 1
            latency_ps += int(cost_from_start) // self._hop_limit
        return self._make_route(tuple(links), latency_ps), only

    def _make_route(self, links: tuple[int, ...], latency_ps: int) -> Route:
        return Route(links, latency_ps, min(self.fabric.links[i].bandwidth_bps for i in links))

    def _next_links(self, node: str, src: str, dst: str, cost: np.ndarray, end: str) -> list[Link]:
        """The choices at ``node`` towards the waypoint ``end``; where they include the source's or
        destination's own NIC, only it (several NICs under one PCIe switch are equally near, but each
        GPU uses its own)."""
        choices = self._choices(node, end, cost)
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
        """The encoded cost from every device to ``dst`` over links that are up (computed for ``dst``'s
        batch of destinations), cached."""
        cost = self._cost_to.get(dst)
        if cost is None:
            batch = self._batch_of(dst)
            self._cost_to.update(zip(batch, self._least_costs([self._index[name] for name in batch])))
            cost = self._cost_to[dst]
        return cost

    def _batch_of(self, dst: str) -> list[str]:
        """The destinations whose costs are computed with ``dst``'s: its block of ``_batch_gpus``
        consecutive GPUs (by rank) or NICs (all of them on a small fabric), or ``dst`` alone."""
        names, position = self._batch_lists.get(dst, ([dst], 0))
        start = position - position % self._batch_gpus
        return names[start:start + self._batch_gpus]

    def _least_costs(self, targets: list[int]) -> np.ndarray:
        """Row k: the least cost from every device to device ``targets[k]`` (infinity where no path
        joins them). On a small fabric every device's cost is relaxed over all its out links that are
        up, as one numpy step, until no cost falls (after step h every least-cost path of h hops is
        found); on a large one, scipy's Dijkstra."""
        if len(self._index) > SMALL_FABRIC_DEVICES:
            from scipy.sparse.csgraph import dijkstra

            return dijkstra(self._reversed_graph(), indices=targets)
        up = self._out_up
        link_dst, link_cost = self._out_dst[up], self._out_cost[up]
        link_src = self._link_src[self._out_links[up]]  # in source order
        sources, first = np.unique(link_src, return_index=True)
        cost = np.full((len(targets), len(self._index)), np.inf)
        cost[np.arange(len(targets)), targets] = 0.0
        if not sources.size:
            return cost
        while True:
            through = np.minimum.reduceat(cost[:, link_dst] + link_cost, first, axis=1)
            lower = through < cost[:, sources]
            if not lower.any():
                return cost
            cost[:, sources] = np.where(lower, through, cost[:, sources])

    def _reversed_graph(self):
        """The links that are up as scipy's sparse matrix of link costs from their end to their start:
        the cheapest of parallel links, as a sparse matrix would otherwise add them."""
        if self._reversed is None:
            from scipy.sparse import csr_matrix

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
