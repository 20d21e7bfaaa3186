"""Routing against a plain reference: the same least-cost routes, ties and failures on any graph.

The reference is the textbook form of the rules in fabricsim.fabric.routing: Dijkstra over
(latency, hops) tuples, next hops in link order, the own-NIC preference and the per-hop hash.
"""

import heapq
import itertools
import random

import numpy as np
import pytest

from fabricsim.fabric import Router, build_fabric, routing
from fabricsim.fabric.graph import Device, Fabric
from fabricsim.fabric.routing import MAX_SPRAY_ROUTES, NoRouteError, Route, _mix
from tests.conftest import make_scenario

FLOW_HASHES = (0, 1, 7, 0xC0FFEE, 2**63 + 5, 0x9E3779B97F4A7C15, 2**64 - 1)


def reference_costs(fabric, dst, down):
    """(latency_ps, hops) from every device that reaches ``dst`` over links not in ``down``."""
    cost, frontier = {dst: (0, 0)}, [(0, 0, dst)]
    while frontier:
        latency_ps, hops, node = heapq.heappop(frontier)
        if (latency_ps, hops) > cost[node]:
            continue
        for link in fabric.links:
            if link.dst == node and link.index not in down:
                candidate = (latency_ps + link.latency_ps + fabric.devices[node].latency_ps, hops + 1)
                if link.src not in cost or candidate < cost[link.src]:
                    cost[link.src] = candidate
                    heapq.heappush(frontier, (*candidate, link.src))
    return cost


def reference_next_links(fabric, cost, down, node, src, dst):
    choices = [link for link in fabric.out_links(node) if link.index not in down and link.dst in cost
               and cost[node] == (cost[link.dst][0] + link.latency_ps + fabric.devices[link.dst].latency_ps,
                                  cost[link.dst][1] + 1)]
    own = [link for link in choices if link.dst in (fabric.nic_of.get(src), fabric.nic_of.get(dst))]
    return own if own and len(choices) > 1 else choices


def reference_route(fabric, down, waypoints, flow_hash):
    """The hashed walk through each leg between ``waypoints`` in turn, the hop count running on."""
    src, dst = waypoints[0], waypoints[-1]
    links, hop, latency_ps = [], 0, 0
    for start, end in zip(waypoints, waypoints[1:]):
        cost, node = reference_costs(fabric, end, down), start
        while node != end:
            choices = reference_next_links(fabric, cost, down, node, src, dst)
            link = choices[_mix(flow_hash, hop) % len(choices) if flow_hash else 0]
            links.append(link.index)
            node, hop = link.dst, hop + 1
        latency_ps += cost[start][0]
    return Route(tuple(links), latency_ps, min(fabric.links[i].bandwidth_bps for i in links))


def reference_spray(fabric, down, waypoints):
    src, dst = waypoints[0], waypoints[-1]

    def paths(node, end, cost):
        if node == end:
            yield ()
        for link in reference_next_links(fabric, cost, down, node, src, dst):
            yield from ((link.index, *rest) for rest in paths(link.dst, end, cost))
    routes = [()]
    for start, end in zip(waypoints, waypoints[1:]):
        tails = list(itertools.islice(paths(start, end, reference_costs(fabric, end, down)), MAX_SPRAY_ROUTES))
        routes = [route + tail for route in routes for tail in tails][:MAX_SPRAY_ROUTES]
    latency_ps = reference_route(fabric, down, waypoints, 0).latency_ps
    return [Route(links, latency_ps, min(fabric.links[i].bandwidth_bps for i in links)) for links in routes]


def assert_matches_reference(fabric, router, down=frozenset(), devices=None):
    """Every ordered pair: the same reachability, least cost (through the waypoints), routes for each
    hash and spray set; and the routes of every pair and hash at once (``hashed_routes``) are those
    of one at a time."""
    devices = devices or list(fabric.devices)
    flows = []
    for dst in devices:
        cost = reference_costs(fabric, dst, down)
        for src in devices:
            if src == dst:
                continue
            if src not in cost:
                with pytest.raises(NoRouteError):
                    router.route(src, dst)
                continue
            waypoints = router.waypoints(src, dst)
            first = router.route(src, dst)
            if len(waypoints) == 2:
                assert (first.latency_ps, len(first.links)) == cost[src]
            for flow_hash in FLOW_HASHES:
                assert router.route(src, dst, flow_hash) == reference_route(fabric, down, waypoints, flow_hash)
                flows.append((src, dst, flow_hash))
            assert router.equal_cost_routes(src, dst) == reference_spray(fabric, down, waypoints)
    srcs, dsts, hashes = zip(*flows) if flows else ((), (), ())
    route_of, routes = router.hashed_routes(list(srcs), list(dsts), np.array(hashes, dtype=np.uint64))
    assert [routes[index] for index in route_of.tolist()] == [router.route(*flow) for flow in flows]


def random_fabric(seed):
    """A few GPUs, NICs and switches, cabled at random (parallel cables too), with latencies drawn
    from a few values, zero among them, so that equal-cost ties and zero-latency links abound."""
    rng = random.Random(seed)
    fabric = Fabric()
    kinds = ["gpu"] * 3 + ["nic"] * 3 + ["switch"] * rng.randint(1, 4)
    for number, kind in enumerate(kinds):
        fabric.add_device(Device(f"{kind}{number}", kind, latency_ps=0 if kind == "gpu" else rng.choice((0, 0, 5))))
    names = list(fabric.devices)
    for gpu, nic in zip(fabric.gpus, rng.sample([name for name in names if name.startswith("nic")], 3)):
        fabric.nic_of[gpu] = nic
    for _ in range(rng.randint(len(names) - 2, 2 * len(names))):
        a, b = rng.sample(names, 2)
        fabric.connect(a, b, "roce", rng.choice((100e9, 200e9)), rng.choice((0, 5, 5, 10)))
    return fabric


@pytest.mark.parametrize("seed", range(40))
def test_random_fabrics_route_as_the_reference_does_with_links_up_and_down(seed):
    fabric = random_fabric(seed)
    router = Router(fabric)
    assert_matches_reference(fabric, router)
    down = frozenset(random.Random(seed).sample(range(len(fabric.links)), len(fabric.links) // 4))
    router.set_down(tuple(down), True)
    assert_matches_reference(fabric, router, down)
    router.set_down(tuple(down), False)
    assert_matches_reference(fabric, router)


@pytest.mark.parametrize("seed", range(0, 40, 4))
def test_large_fabrics_least_costs_by_scipy_route_the_same(seed, monkeypatch):
    """Past SMALL_FABRIC_DEVICES the least costs come from scipy's Dijkstra instead of numpy steps:
    the same routes, with links up and down."""
    monkeypatch.setattr(routing, "SMALL_FABRIC_DEVICES", 0)
    test_random_fabrics_route_as_the_reference_does_with_links_up_and_down(seed)


@pytest.mark.parametrize("spec", [
    {"topology": "leaf_spine", "hosts": 4, "gpus_per_host": 2, "clos": {"hosts_per_leaf": 2, "spines": 3}},
    {"topology": "rail_optimized", "hosts": 2, "gpus_per_host": 4, "clos": {"spines": 2}},
    {"preset": "pcie_8gpu", "hosts": 2},  # NICs tied under each PCIe switch: each GPU takes its own
    {"topology": "direct_ring", "hosts": 2, "gpus_per_host": 2},  # two cables between each NIC pair
    {"topology": "leaf_spine", "hosts": 4, "gpus_per_host": 2, "clos": {"hosts_per_leaf": 2, "spines": 2},
     "cable_latency": "0ns", "nic": {"latency": "0ns"}, "switch": {"latency": "0ns"},
     "nvlink": {"bandwidth": "300GB/s", "latency": "0ns"}, "nvswitch": {"latency": "0ns"}},
])
def test_built_fabrics_route_between_gpus_as_the_reference_does(spec):
    fabric = build_fabric(make_scenario(fabric=spec).fabric)
    assert_matches_reference(fabric, Router(fabric), devices=fabric.gpus)


def test_a_link_taken_down_is_avoided_until_it_returns():
    fabric = build_fabric(make_scenario(fabric={"topology": "leaf_spine", "hosts": 2,
                                                "clos": {"hosts_per_leaf": 1, "spines": 2}}).fabric)
    router = Router(fabric)
    before = router.route("h0.gpu0", "h1.gpu0")
    uplink = fabric.link_between("leaf0", "spine0")
    assert uplink.index in before.links
    router.set_down((uplink.index,), True)
    for flow_hash in FLOW_HASHES:
        after = router.route("h0.gpu0", "h1.gpu0", flow_hash)
        assert uplink.index not in after.links and after.latency_ps == before.latency_ps
    assert router.equal_cost_routes("h0.gpu0", "h1.gpu0") == [router.route("h0.gpu0", "h1.gpu0")]
    router.set_down((fabric.link_between("leaf0", "spine1").index,), True)
    with pytest.raises(NoRouteError, match="no path from h0.gpu0 to h1.gpu0"):
        router.route("h0.gpu0", "h1.gpu0")
    router.set_down((uplink.index,), False)
    assert router.route("h0.gpu0", "h1.gpu0") == before


def test_latencies_too_large_to_add_exactly_are_refused():
    fabric = Fabric()
    for name in ("a", "b"):
        fabric.add_device(Device(name, "switch"))
    fabric.connect("a", "b", "roce", 100e9, 2**52)
    with pytest.raises(ValueError, match=r"must stay below 2\*\*53"):
        Router(fabric)
