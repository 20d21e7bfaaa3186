"""ECMP against balls-into-bins: queue pairs hashed onto spine uplinks collide as often as theory says.

Two hosts, one per leaf, k queue pairs from one to the other and n spines (1:1, so each uplink is
1/n of the NIC). The k flows start together; each leaf picks a spine per flow by the hash of its
5-tuple, whose source port is drawn per trial. With k = n the transfer runs at the NIC's ideal rate
exactly when the n flows land on n distinct spines: probability n! / n^n. Any collision shows as
contention.
"""

import math

import numpy as np
import pytest

from fabricsim.fabric.ecmp import FlowRouter, _distinct_rows
from fabricsim.output.stats import busbw_GBps
from fabricsim.runner.simulation import Simulation, fabric_rng
from tests.conftest import make_scenario

SIZE_BYTES = 3 * 2**16


def _two_leaves(spines, qps, ecmp="hash", trials=1, flows=False):
    return Simulation(make_scenario(
        fabric={"topology": "leaf_spine", "hosts": 2, "clos": {"hosts_per_leaf": 1, "spines": spines, "ecmp": ecmp},
                "qps_per_rankpair": qps},
        collective={"op": "send_recv", "algorithm": "direct"},
        workload={"rule": "data_sizes", "data_sizes": [SIZE_BYTES], "trials": trials},
        output={"flows": flows}))


def test_collision_frequency_matches_balls_into_bins():
    n, trials = 3, 400
    records = _two_leaves(n, n, trials=trials).run()
    spread = np.mean([r.breakdown.contention_ps == 0 for r in records])
    p = math.factorial(n) / n**n  # 2/9
    assert abs(spread - p) < 4 * math.sqrt(p * (1 - p) / trials), spread
    assert all(sum((r.breakdown.ideal_ps, r.breakdown.contention_ps)) == r.latency_ps for r in records)


def test_a_collision_halves_the_rate_exactly():
    """n = k = 2: both flows on one uplink of NIC/2 take twice the NIC's serialisation time."""
    simulation = _two_leaves(2, 2, trials=60)
    records = simulation.run()
    nic_bps = simulation.fabric.link_between("h0.nic0", "leaf0").bandwidth_bps
    serialise_ps = SIZE_BYTES * 8e12 / nic_bps
    collided = [r for r in records if r.breakdown.contention_ps]
    assert 0 < len(collided) < len(records)
    for record in collided:
        assert record.breakdown.contention_ps == pytest.approx(serialise_ps, abs=4)


@pytest.mark.parametrize("ecmp, qps", [("adaptive", 3), ("spray", 1), ("spray", 2)])
def test_adaptive_routing_and_spraying_do_not_collide(ecmp, qps):
    records = _two_leaves(3, qps, ecmp=ecmp, trials=20).run()
    assert all(r.breakdown.contention_ps == 0 and r.latency_ps == r.breakdown.ideal_ps for r in records)


def test_queue_pairs_split_the_bytes_over_flows_with_their_own_ports():
    simulation = _two_leaves(4, 4, trials=3, flows=True)
    for record in simulation.run():
        flows = record.flows
        assert len(flows) == 4 and sum(f.nbytes for f in flows) == SIZE_BYTES
    router = FlowRouter(simulation.router, simulation.fabric.gpus, "hash", 4, lambda link: 0)
    schedule = simulation.schedule("send_recv", 2, SIZE_BYTES)
    ports = [router.draw_ports(schedule.transfers.pairs, fabric_rng(0, trial)) for trial in range(2)]
    assert len(set(ports[0][0])) == 4 and not np.array_equal(ports[0], ports[1])
    assert np.array_equal(ports[0], router.draw_ports(schedule.transfers.pairs, fabric_rng(0, 0)))  # same trial, same ports
    assert all(0xC000 <= port < 0x10000 for port in ports[0][0])


def test_each_switch_hashes_independently_and_evenly():
    """Over many flows, a leaf's first hop spreads evenly over the spines (chi-square)."""
    simulation = _two_leaves(4, 1)
    router = FlowRouter(simulation.router, simulation.fabric.gpus, "hash", 2000, lambda link: 0)
    schedule = simulation.schedule("send_recv", 2, SIZE_BYTES)
    ports = router.draw_ports(schedule.transfers.pairs, np.random.default_rng(9))[0]
    spines = [simulation.fabric.links[route.links[2]].dst for route, _ in router.flows(0, 1, ports)]
    counts = np.array([spines.count(f"spine{i}") for i in range(4)])
    chi2 = ((counts - 500) ** 2 / 500).sum()
    assert chi2 < 16.3  # p = 0.001 at 3 degrees of freedom


@pytest.mark.parametrize("qps", [1, 2, 3, 5])
def test_k_queue_pairs_on_one_nic_each_get_one_kth(qps):
    """No choice of path on one switch: the k flows of a transfer share the NIC link max-min."""
    scenario = make_scenario(fabric={"hosts": 2, "qps_per_rankpair": qps}, output={"flows": True},
                             collective={"op": "send_recv", "algorithm": "direct"},
                             workload={"rule": "data_sizes", "data_sizes": [SIZE_BYTES - SIZE_BYTES % qps]})
    simulation = Simulation(scenario)
    (record,) = simulation.run()
    nic_bps = simulation.fabric.link_between("h0.nic0", "switch").bandwidth_bps
    assert len(record.flows) == qps
    for flow in record.flows:
        rate_bps = flow.nbytes * 8e12 / (flow.sent_ps - flow.start_ps)
        assert rate_bps == pytest.approx(nic_bps / qps, rel=1e-9)
    assert record.breakdown.contention_ps == 0 and record.breakdown.ideal_ps == record.latency_ps


def test_a_connection_keeps_its_ports_for_every_message():
    """NCCL reuses a connection's queue pairs for the whole collective: one draw per connection."""
    scenario = make_scenario(fabric={"topology": "leaf_spine", "hosts": 4, "gpus_per_host": 1,
                                     "clos": {"hosts_per_leaf": 1, "spines": 4}, "qps_per_rankpair": 2},
                             collective={"op": "all_reduce", "algorithm": "ring", "chunks": 3})
    simulation = Simulation(scenario)
    schedule = simulation.schedule("all_reduce", 4, 2**20)
    router = FlowRouter(simulation.router, simulation.fabric.gpus, "hash", 2, lambda link: 0)
    ports = router.draw_ports(schedule.transfers.pairs, fabric_rng(0, 0))
    by_pair = {}
    for transfer, row in zip(schedule.transfers, ports.tolist()):
        by_pair.setdefault((transfer.src, transfer.dst), set()).add(tuple(row))
    assert len(by_pair) == 4 and all(len(rows) == 1 for rows in by_pair.values())
    assert len({row for rows in by_pair.values() for row in rows}) == 4


def leaf_spine_busbw(hosts: int, ecmp: str = "hash", qps: int = 1) -> float:
    """Median busbw of a 4 MiB ring all-reduce over hosts of 4 GPUs and 4 x 100G, one host per leaf,
    4 spines at 1:1: each host's 4 channels cross the spines on 4 connections."""
    scenario = make_scenario(fabric={"topology": "leaf_spine", "hosts": hosts, "gpus_per_host": 4,
                                     "nic": "roce_100g", "qps_per_rankpair": qps,
                                     "clos": {"hosts_per_leaf": 1, "spines": 4, "ecmp": ecmp}},
                             collective={"op": "all_reduce", "algorithm": "ring"},
                             workload={"rule": "data_sizes", "data_sizes": ["4MiB"], "trials": 16})
    latency_us = np.median([record.latency_ps / 1e6 for record in Simulation(scenario).run()])
    return busbw_GBps("all_reduce", 4 * hosts, 2**22, latency_us)


def test_hash_collisions_cost_more_as_the_job_grows_and_more_queue_pairs_win_some_back():
    """Meta, SIGCOMM 2024 (formulas.md): with few queue pairs per connection, ECMP collisions hurt
    collectives, more so on more nodes; more queue pairs help; spraying reaches the NICs' rate."""
    nic_busbw = 4 * 100e9 / 8 * 4096 / 4178 / 1e9
    sprayed, two, four = leaf_spine_busbw(2, "spray"), leaf_spine_busbw(2), leaf_spine_busbw(4)
    assert sprayed == pytest.approx(nic_busbw, rel=0.05)
    assert four < 0.9 * two < 0.9 * sprayed
    assert leaf_spine_busbw(4, qps=2) > 1.2 * four


def test_a_calls_queue_pairs_routed_at_once_take_the_routes_routed_one_by_one():
    """``hashed_flows`` routes each distinct connection and port once: every transfer's flows are those
    ``flows`` gives it, on a leaf-spine where connections repeat (a ring's steps) and ports collide."""
    simulation = Simulation(make_scenario(
        fabric={"topology": "leaf_spine", "hosts": 8, "clos": {"hosts_per_leaf": 2, "spines": 3, "ecmp": "hash"}},
        collective={"op": "all_reduce", "algorithm": "ring"}))
    router = FlowRouter(simulation.router, simulation.fabric.gpus, "hash", 3, lambda link: 0)
    rng = np.random.default_rng(5)
    srcs, dsts = rng.integers(0, 8, 200), rng.integers(0, 8, 200)
    keep = srcs != dsts
    srcs, dsts = srcs[keep], dsts[keep]
    ports = rng.integers(0xC000, 0xC004, size=(len(srcs), 3))  # few ports: repeats and hash collisions
    flows_of = router.hashed_flows(srcs, dsts, ports)
    for tid, (src, dst) in enumerate(zip(srcs.tolist(), dsts.tolist())):
        assert flows_of(tid) == router.flows(src, dst, ports[tid].tolist())


def test_distinct_rows_are_numpys_unique_rows():
    """``_distinct_rows`` (one stable sort of two keys) finds the rows ``np.unique(axis=0)`` finds: the
    same first appearances, and rows that are equal, and only those, share a number."""
    rng = np.random.default_rng(11)
    pairs = rng.integers(0, 6, 500)
    hashes = rng.integers(0, 2**64 - 1, 4, dtype=np.uint64)[rng.integers(0, 4, 500)]
    first, same_as = _distinct_rows(pairs, hashes)
    _, numpy_first, numpy_same_as = np.unique(np.stack([pairs.astype(np.uint64), hashes], axis=1), axis=0,
                                              return_index=True, return_inverse=True)
    assert sorted(first.tolist()) == sorted(numpy_first.tolist())
    assert np.array_equal(first[same_as], numpy_first[numpy_same_as.ravel()])  # each row's first equal row
