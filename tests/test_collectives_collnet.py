"""CollNet (SHARP): the switch each rail's NICs share reduces the slice of that rail across hosts.
Symbolic correctness for any hosts and placement, bytes on each NIC and NVLink port, the NIC bound,
auto running it."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fabricsim.collectives import build_schedule, verify
from fabricsim.collectives.collnet import chain_chunks
from fabricsim.collectives.nvls import chunks_for
from fabricsim.collectives.tuner import Topology, time_us
from fabricsim.collectives.verify import split_bytes
import fabricsim.runner.simulation as simulation_module
from fabricsim.fabric.relays import relay_endpoints
from fabricsim.runner.simulation import Simulation
from tests.conftest import make_scenario


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["collnet_direct", "collnet_chain"]), st.integers(2, 6), st.integers(1, 5), st.booleans(),
       st.integers(0, 2**20), st.integers(1, 6))
def test_collnet_computes_all_reduce_for_any_hosts_placement_and_leaves(algorithm, hosts, per_host, rail_first,
                                                                          size_bytes, hosts_per_leaf):
    """Each head sends its host's sum of its slice to its switch once and gets the total back once;
    between GPUs only host mates talk (directly to the head, or along the chain). Over G > 1 leaves
    (``hosts_per_leaf`` hosts each) the head's switch is its leaf's relay of the slice, and each leaf
    relay sends the slice once to the slice's root and gets it back once."""
    ranks = hosts * per_host
    groups = tuple(tuple(range(h, ranks, hosts)) if rail_first else tuple(range(h * per_host, (h + 1) * per_host))
                   for h in range(hosts))
    leaves = tuple(h // hosts_per_leaf for h in range(hosts))
    count = leaves[-1] + 1
    tree = 1 if count == 1 else count + 1
    schedule = build_schedule("all_reduce", algorithm, ranks, size_bytes, groups=groups, leaves=leaves)
    verify(schedule)
    transfers = schedule.transfers
    host_of = {rank: h for h, group in enumerate(groups) for rank in group}
    local = {rank: group.index(rank) for group in groups for rank in group}
    blocks = split_bytes(size_bytes, ranks)
    slices = [sum(blocks[block] for block in range(ranks) if local[block] == index) for index in range(per_host)]
    assert schedule.relays == per_host * tree

    def carried(src, dst):
        return int(transfers.nbytes[(transfers.src == src) & (transfers.dst == dst)].sum())

    for rank in range(ranks):
        switch = ranks + local[rank] * tree + leaves[host_of[rank]]
        up = (transfers.src == rank) & (transfers.dst >= ranks)
        down = (transfers.src >= ranks) & (transfers.dst == rank)
        assert set(transfers.dst[up].tolist()) <= {switch} and set(transfers.src[down].tolist()) <= {switch}
        assert int(transfers.nbytes[up].sum()) == int(transfers.nbytes[down].sum()) == slices[local[rank]]
    for index in range(per_host if count > 1 else 0):
        root = ranks + index * tree + count
        for leaf in range(count):
            assert carried(ranks + index * tree + leaf, root) == carried(root, ranks + index * tree + leaf) == slices[index]
    inside = (transfers.src < ranks) & (transfers.dst < ranks)
    assert all(host_of[src] == host_of[dst] for src, dst in zip(transfers.src[inside].tolist(), transfers.dst[inside].tolist()))


def _nic_bound_collnet(topology: str, hosts: int, clos: dict):
    """CollNetDirect of 64 MiB over hosts of 4 GPUs behind 100G NICs, all else far faster: the run,
    its record and its relays' names."""
    fabric = {"hosts": hosts, "gpus_per_host": 4, "topology": topology, "clos": {"sharp": True, **clos},
              "nic": {"bandwidth": "100Gbps"}, "nvlink": {"bandwidth": "10000GB/s", "latency": "1ns"},
              "nvswitch": {"latency": "1ns"}, "pcie": {"bandwidth": "1000GB/s", "latency": "1ns"},
              "cable_latency": "1ns", "switch": {"latency": "1ns"}}
    scenario = make_scenario(fabric=fabric, collective={"op": "all_reduce", "algorithm": "collnet_direct"},
                             workload={"rule": "data_sizes", "data_sizes": ["64MiB"]})
    simulation = Simulation(scenario)
    (record,) = simulation.run()
    call = simulation.plan.trials[0].calls[0]
    endpoints = simulation.call_endpoints(call, simulation.call_schedule(call))[4 * hosts:]
    return simulation, record, [simulation.endpoints[i] for i in endpoints]


def test_collnet_direct_runs_at_the_nics_rate_through_the_rail_switches():
    """2 hosts of 4 GPUs on rails whose switches reduce: each NIC carries S / 4 each way, so on NVLink
    far faster than the NICs the all-reduce takes S / (4 x NIC rate), plus at most two chunks'
    pipeline (and nanoseconds of latency); the relays are the rail switches."""
    _, record, relays = _nic_bound_collnet("rail_optimized", 2, {"spines": 1})
    assert relays == ["rail0", "rail1", "rail2", "rail3"]
    bound_ps = 2**26 / 4 / 100e9 * 8 * 1e12
    assert bound_ps <= record.latency_ps <= bound_ps * (1 + 2 / chunks_for(8, 2**26)) + 100_000


def test_collnet_over_leaves_reduces_in_leaves_then_spines_at_the_nics_rate():
    """3 leaves of 2 hosts (4 GPUs each), 2 spines, 2:1 oversubscribed, every switch reducing: each slice's
    tree is the leaves then a spine (slices alternate spines). Each NIC carries S / 4 each way and each leaf
    uplink the slices rooted at its spine, 2 x S / 4 (a 2:1 uplink's share of the leaf's NICs' time), so the
    all-reduce takes S / (4 x NIC rate) plus at most two chunks' pipeline."""
    simulation, record, relays = _nic_bound_collnet("leaf_spine", 6, {"spines": 2, "hosts_per_leaf": 2,
                                                                      "oversubscription": 2})
    assert relays == [name for index in range(4) for name in ("leaf0", "leaf1", "leaf2", f"spine{index % 2}")]
    carried = {link.name: record.link_usage.carried_bits[link.index] / 8 for link in simulation.fabric.links}
    for link in simulation.fabric.links:
        if link.kind == "roce":
            assert carried[link.name] == (2 * 2**26 / 4 if "spine" in link.name else 2**26 / 4)
    bound_ps = 2**26 / 4 * 8 / simulation.scenario.fabric.nic.effective_bandwidth_bps * 1e12
    assert bound_ps <= record.latency_ps <= bound_ps * (1 + 2 / chunks_for(24, 2**26)) + 100_000


@pytest.mark.parametrize("topology", ["rail_optimized", "leaf_spine"])
def test_auto_runs_collnet_where_nccls_model_picks_it(topology):
    """On rails, and over 4 leaves (SHARP in every switch: leaves, then spines); A100s (no NVLS, which
    NCCL's model would pick with SHARP on H100s)."""
    fabric = {"preset": "dgx_a100", "hosts": 8, "topology": topology, "clos": {"sharp": True, "spines": 2,
                                                                                "hosts_per_leaf": 2}}
    scenario = make_scenario(fabric=fabric, collective={"op": "all_reduce", "algorithm": "auto", "protocol": "auto"},
                             workload={"rule": "data_sizes", "data_sizes": ["1MiB"]})
    simulation = Simulation(scenario)
    (record,) = simulation.run()
    pick = simulation.pick("all_reduce", 64, 2**20, simulation.layout(tuple(range(64))))
    assert pick.algorithm.startswith("collnet") and pick.reason.startswith("NCCL's model: CollNet")
    assert simulation.schedule("all_reduce", 64, 2**20).algorithm == pick.algorithm and not record.failed
    call = simulation.plan.trials[0].calls[0]
    relays = {simulation.endpoints[i] for i in simulation.call_endpoints(call, simulation.call_schedule(call))[64:]}
    assert relays == ({f"rail{i}" for i in range(8)} if topology == "rail_optimized" else
                      {"leaf0", "leaf1", "leaf2", "leaf3", "spine0", "spine1"})


def test_collnet_chain_pipelines_at_the_nvlink_bound_on_4_dgx_h100():
    """Each slice's chain is one channel, so the chain pipelines: 1 GiB on 4 x 8 H100 takes the NVLink
    port's 2 (L - 1) / L x S (above the NIC's S / L) within 10%, as fast as CollNetDirect (same bytes per
    port), and near NCCL's own estimate (its model prices 2 S over the bus: 13% slower)."""
    fabric = {"preset": "dgx_h100", "hosts": 4, "topology": "rail_optimized", "clos": {"sharp": True, "spines": 2}}
    times = {}
    for algorithm in ("collnet_chain", "collnet_direct"):
        scenario = make_scenario(fabric=fabric, collective={"op": "all_reduce", "algorithm": algorithm},
                                 workload={"rule": "data_sizes", "data_sizes": ["1GiB"]})
        (record,) = Simulation(scenario).run()
        times[algorithm] = record.latency_ps
    spec, size, per_host = scenario.fabric, 2**30, 8
    nvlink_ps = 2 * (per_host - 1) / per_host * size * 8 / spec.nvlink.bandwidth_bps * 1e12
    nic_ps = size / per_host * 8 / spec.nic.effective_bandwidth_bps * 1e12
    bound_ps = max(nvlink_ps, nic_ps)
    assert nvlink_ps > nic_ps and bound_ps <= times["collnet_chain"] <= 1.1 * bound_ps
    assert abs(times["collnet_chain"] - times["collnet_direct"]) <= 0.02 * bound_ps
    topology = Topology(32, 4, "hopper", True, spec.nvlink.bandwidth_bps / 8e9, spec.nic.effective_bandwidth_bps / 8e9,
                        sharp=True)
    nccl_ps = time_us("all_reduce", "collnet_chain", "simple", topology, size) * 1e6
    assert 0.8 * nccl_ps <= times["collnet_chain"] <= nccl_ps



def test_collnet_chain_cuts_its_chunks_as_nccl_cuts_the_chain():
    """enqueue.cc's CollNetChain chunk for a channel of S / 8 on 4 x 8 GPUs (depth 8): 256 KiB while the
    channel loops 512 times or more, halved to 128 KiB, to 64 KiB below 64 loops, to 32 KiB below 8;
    blocks of S / 32 then hold block / chunk chunks, at most the transfer budget's 19."""
    expected = {2**30: 19, 2**28: 19, 2**24: 2**19 // 2**16, 2**22: 2**17 // 2**16, 2**20: 1, 2**16: 1}
    assert {size: chain_chunks(32, size, 8) for size in expected} == expected
    assert chain_chunks(32, 2**26, 8) == 2**21 // 2**17  # 64 MiB: 64 loops of 128 KiB, halved once
    schedule = build_schedule("all_reduce", "collnet_chain", 32, 2**24,
                              groups=tuple(tuple(range(h * 8, h * 8 + 8)) for h in range(4)))
    assert schedule.chunks == 8 and int(schedule.transfers.nbytes.max()) == 2**16


def test_a_groups_sharp_trees_are_found_once_for_all_its_calls(monkeypatch):
    """A call's relays (SHARP's trees over the leaves) are found once per group and algorithm, not per
    call: three trials of two sizes over one group ask the fabric once, and get what it answers."""
    found = []

    def counted(fabric, groups, algorithm):
        found.append(algorithm)
        return relay_endpoints(fabric, groups, algorithm)

    monkeypatch.setattr(simulation_module, "relay_endpoints", counted)
    fabric = {"preset": "dgx_h100", "hosts": 4, "topology": "leaf_spine",
              "clos": {"hosts_per_leaf": 2, "spines": 2, "sharp": True}}
    simulation = Simulation(make_scenario(fabric=fabric, collective={"op": "all_reduce", "algorithm": "collnet_direct"},
                                          workload={"rule": "data_sizes", "data_sizes": ["1MiB", "2MiB"], "trials": 3}))
    records = simulation.run()
    assert len(records) == 6 and found == ["collnet_direct"]
    call = simulation.plan.trials[0].calls[0]
    hosts = [tuple(range(host * 8, host * 8 + 8)) for host in range(4)]
    assert simulation.call_endpoints(call, simulation.call_schedule(call)) == call.group + relay_endpoints(
        simulation.fabric, hosts, "collnet_direct")
