"""ECMP: which routes a transfer's flows take, trial by trial.

A transfer between two ranks is carried by ``qps`` queue pairs (NCCL_IB_QPS_PER_CONNECTION, KCCB's
qps_per_rankpair), each a flow with its own RoCEv2 UDP source port. As real NICs do per queue pair,
the port is drawn when the connection is set up, once per trial (from the RoCEv2 entropy range
0xC000-0xFFFF, IBTA RoCEv2 Annex A17), and kept by every message of that connection (NCCL opens one
connection per channel and peer and reuses its queue pairs for the whole collective): two
connections that hash onto one spine uplink share it at every step, so the slowest one paces the
ring, in some trials and not in others. Modes (``clos.ecmp``):
- ``hash``: each switch picks among equal-cost next hops by the hash of the flow's 5-tuple;
- ``adaptive``: each switch picks the next hop that carries the fewest flows when the flow starts
  (ties by the hash), as adaptive routing fabrics do per flowlet;
- ``spray``: per-packet spraying: the flow's bytes are split evenly over every equal-cost route.
A flow re-routed after a failure is re-hashed (or re-chosen by load) over the links still up.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable, NamedTuple, Sequence

import numpy as np

from fabricsim.config import FabricSpec
from fabricsim.fabric.routing import Route, Router, five_tuple_hash

ROCE_SOURCE_PORTS = (0xC000, 0x10000)  # [low, high)


class FlowTag(NamedTuple):
    """What a flow is: for re-routing it and for flows.csv."""

    src: str
    dst: str
    flow_hash: int


class FlowRouter:
    """Routes each queue pair of a transfer by the trial's source ports and the ECMP mode."""

    def __init__(self, router: Router, endpoints: list[str], mode: str, qps: int,
                 flows_on: Callable[[int], int]) -> None:
        self.router = router
        self.endpoints = endpoints
        self.mode = mode
        self.qps = qps
        self.flows_on = flows_on

    @classmethod
    def of(cls, router: Router, spec: FabricSpec, flows_on: Callable[[int], int]) -> FlowRouter:
        """The scenario's ECMP mode (``clos.ecmp``) and queue pairs per rank pair, over ``router``'s
        fabric; ``flows_on(link)``: the flows a link carries now (adaptive mode's load)."""
        return cls(router, router.fabric.endpoints, spec.clos.ecmp, spec.qps_per_rankpair, flows_on)

    def draw_ports(self, transfer_pairs: tuple[np.ndarray, np.ndarray], rng: np.random.Generator) -> np.ndarray:
        """Source ports, one per transfer and queue pair: drawn per connection (each distinct sender and
        receiver, in ascending order: ``Transfers.pairs``, the connections and each transfer's), so every
        message of a connection takes its queue pairs' paths."""
        pairs, pair_of = transfer_pairs
        return rng.integers(*ROCE_SOURCE_PORTS, size=(len(pairs), self.qps))[pair_of]

    def flows(self, src_rank: int, dst_rank: int, ports: Sequence[int]) -> list[tuple[Route, FlowTag]]:
        """One (route, tag) per queue pair (source ``ports``), or per queue pair and equal-cost route
        when spraying."""
        src, dst = self.endpoints[src_rank], self.endpoints[dst_rank]
        tags = [FlowTag(src, dst, five_tuple_hash(src_rank, dst_rank, int(port))) for port in ports]
        if self.mode == "spray":
            routes = self.router.equal_cost_routes(src, dst)
            return [(route, tag) for tag in tags for route in routes]
        if self.mode == "hash":
            return [(self.reroute(tag), tag) for tag in tags]
        picked: Counter[int] = Counter()  # adaptive: links taken by this transfer's earlier queue pairs
        flows = []
        for tag in tags:
            route = self.reroute(tag, picked)
            picked.update(route.links)
            flows.append((route, tag))
        return flows

    def hashed_routes(self, src_ranks: np.ndarray, dst_ranks: np.ndarray, ports: np.ndarray
                      ) -> tuple[np.ndarray, list[Route], np.ndarray]:
        """The route of every queue pair of every transfer (``src_ranks``, ``dst_ranks``, a row of
        ``ports`` each) by hash, at once (the routes of hash mode while no link goes down): an index
        into a list of routes per queue pair (transfer by transfer), the routes, the flow hashes."""
        qps, endpoints = ports.shape[1], self.endpoints
        flow_src, flow_dst = np.repeat(src_ranks, qps), np.repeat(dst_ranks, qps)
        hashes = five_tuple_hash(flow_src.astype(np.uint64), flow_dst.astype(np.uint64), ports.ravel().astype(np.uint64))
        # a connection's queue pairs keep their ports all call long: route each distinct flow once, in
        # the order of first appearance (so the list of routes is the same as routing every flow)
        first, same_as = _distinct_rows(flow_src.astype(np.int64) * (int(flow_dst.max(initial=0)) + 1) + flow_dst,
                                        hashes)
        order = np.argsort(first)
        distinct = first[order]
        route_of, routes = self.router.hashed_routes([endpoints[rank] for rank in flow_src[distinct].tolist()],
                                                     [endpoints[rank] for rank in flow_dst[distinct].tolist()], hashes[distinct])
        place = np.empty(len(order), dtype=np.int64)
        place[order] = np.arange(len(order))
        return route_of[place[same_as]], routes, hashes

    def hashed_flows(self, src_ranks: np.ndarray, dst_ranks: np.ndarray, ports: np.ndarray,
                     hashed: tuple[np.ndarray, list[Route], np.ndarray] | None = None
                     ) -> Callable[[int], list[tuple[Route, FlowTag]]]:
        """``flows`` of every transfer routed at once, ahead of time, by hash (``hashed_routes``, or
        ``hashed`` if given), as ``flows_of(transfer)``."""
        qps, endpoints = ports.shape[1], self.endpoints
        route_of, routes, hashes = hashed or self.hashed_routes(src_ranks, dst_ranks, ports)

        def flows_of(tid: int) -> list[tuple[Route, FlowTag]]:
            first, src, dst = tid * qps, endpoints[src_ranks[tid]], endpoints[dst_ranks[tid]]
            return [(routes[route], FlowTag(src, dst, flow_hash)) for route, flow_hash in
                    zip(route_of[first:first + qps].tolist(), hashes[first:first + qps].tolist())]
        return flows_of

    def reroute(self, tag: FlowTag, picked: Counter[int] | None = None) -> Route:
        """The flow's route over the links up now; raises NoRouteError when none is left."""
        if self.mode == "adaptive":
            picked = picked or Counter()
            return self.router.least_loaded_route(tag.src, tag.dst, lambda link: self.flows_on(link) + picked[link],
                                                  tag.flow_hash)
        return self.router.route(tag.src, tag.dst, tag.flow_hash)


def _distinct_rows(pairs: np.ndarray, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (pair, hash) rows: the index of each one's first appearance, and for each row the
    number of its distinct row (``np.unique`` of the rows' ``return_index`` and ``return_inverse``, by
    one stable sort of two keys instead of a sort of the rows as records)."""
    order = np.lexsort((hashes, pairs))  # stable: a distinct row's first appearance comes first
    sorted_pairs, sorted_hashes = pairs[order], hashes[order]
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = (sorted_pairs[1:] != sorted_pairs[:-1]) | (sorted_hashes[1:] != sorted_hashes[:-1])
    same_as = np.empty(len(order), dtype=np.int64)
    same_as[order] = np.cumsum(starts) - 1
    return order[starts], same_as
