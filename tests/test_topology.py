"""Topology builders: leaf-spine, rail-optimized, PCIe trees and rank placement, by their shape."""

import pytest

from fabricsim.config import ScenarioError
from fabricsim.fabric import Router, build_fabric
from fabricsim.fabric.graph import ranks_by_host
from fabricsim.runner.simulation import Simulation
from tests.conftest import make_scenario


def _fabric(**spec):
    return build_fabric(make_scenario(fabric=spec).fabric)


def _kinds(fabric, src, dst):
    route = Router(fabric).route(src, dst)
    return [fabric.links[i].name for i in route.links]


def test_leaf_spine_uplinks_carry_downlink_over_oversubscription():
    fabric = _fabric(topology="leaf_spine", hosts=8, gpus_per_host=2, nic={"bandwidth": "100Gbps"},
                     clos={"hosts_per_leaf": 4, "spines": 4, "oversubscription": 2})
    switches = sorted(name for name, device in fabric.devices.items() if device.kind == "switch")
    assert switches == ["leaf0", "leaf1", "spine0", "spine1", "spine2", "spine3"]
    uplinks = [link for link in fabric.links if link.src.startswith("leaf") and link.dst.startswith("spine")]
    assert len(uplinks) == 2 * 4
    # a leaf's downlinks: 4 hosts x 2 NICs x 100G = 800G; uplinks 800G / 2 over 4 spines = 100G each
    assert all(link.bandwidth_bps == 100e9 for link in uplinks)
    assert _kinds(fabric, "h0.gpu0", "h1.gpu0") == ["h0.gpu0->h0.nic0", "h0.nic0->leaf0", "leaf0->h1.nic0",
                                                     "h1.nic0->h1.gpu0"]
    across = _kinds(fabric, "h0.gpu0", "h4.gpu0")
    assert across[2].startswith("leaf0->spine") and across[3].endswith("->leaf1")


def test_leaf_spine_needs_whole_leaves():
    with pytest.raises(ScenarioError, match="fabric: expected hosts a multiple of clos.hosts_per_leaf"):
        make_scenario(fabric={"topology": "leaf_spine", "hosts": 6, "clos": {"hosts_per_leaf": 4}})


def test_rail_optimized_puts_nic_i_on_rail_i_and_crosses_rails_over_nvlink():
    fabric = _fabric(preset="dgx_h100", topology="rail_optimized", hosts=3, clos={"spines": 2})
    for host in range(3):
        for local in range(8):
            assert fabric.link_between(f"h{host}.nic{local}", f"rail{local}").kind == "roce"
    uplinks = [link for link in fabric.links if link.src.startswith("rail") and link.dst.startswith("spine")]
    assert len(uplinks) == 8 * 2 and all(link.bandwidth_bps == pytest.approx(3 * 400e9 * 4096 / 4178 / 2)
                                         for link in uplinks)
    same_rail = _kinds(fabric, "h0.gpu3", "h2.gpu3")
    assert "h0.nic3->rail3" in same_rail and not any("spine" in name for name in same_rail)
    # GPU 7 to GPU 0 of the next host: one rail and one NVLink crossing (PXN), not through the spines
    cross = _kinds(fabric, "h0.gpu7", "h1.gpu0")
    assert sum(name.endswith(".nvswitch") for name in cross) == 1
    assert sum("->rail" in name for name in cross) == 1 and not any("spine" in name for name in cross)


def test_pcie_tree_keeps_gpudirect_under_one_switch_and_crosses_the_root_between_switches():
    fabric = _fabric(preset="pcie_8gpu", hosts=2)
    to_nic = _kinds(fabric, "h0.gpu5", "h1.gpu5")
    assert to_nic[:4] == ["h0.gpu5->h0.pcie1", "h0.pcie1->h0.nic5", "h0.nic5->switch", "switch->h1.nic5"]
    assert _kinds(fabric, "h0.gpu0", "h0.gpu1") == ["h0.gpu0->h0.pcie0", "h0.pcie0->h0.gpu1"]
    assert _kinds(fabric, "h0.gpu0", "h0.gpu4") == ["h0.gpu0->h0.pcie0", "h0.pcie0->h0.pcie_root",
                                                     "h0.pcie_root->h0.pcie1", "h0.pcie1->h0.gpu4"]


def test_pcie_switches_must_divide_the_gpus():
    with pytest.raises(ScenarioError, match="fabric: expected pcie_switches that divide gpus_per_host"):
        make_scenario(fabric={"gpus_per_host": 8, "pcie_switches": 3})


@pytest.mark.parametrize("placement, first_ranks", [
    ("host_first", ["h0.gpu0", "h0.gpu1", "h0.gpu2", "h1.gpu0"]),
    ("rail_first", ["h0.gpu0", "h1.gpu0", "h0.gpu1", "h1.gpu1"]),
])
def test_rank_placement(placement, first_ranks):
    fabric = _fabric(hosts=2, gpus_per_host=3, placement=placement)
    assert fabric.gpus[:4] == first_ranks and len(fabric.gpus) == 6


def test_rail_first_ring_crosses_hosts_every_hop():
    simulation = Simulation(make_scenario(fabric={"hosts": 2, "gpus_per_host": 2, "placement": "rail_first"}))
    kinds = {simulation.fabric.links[i].kind for i in simulation.route(0, 1).links}
    assert "roce" in kinds


def test_uncontended_ring_on_a_leaf_spine_matches_alpha_beta():
    """One host per leaf: every ring hop crosses a spine on a 1:1 fabric, all hops alike."""
    ranks, size_bytes = 4, 2**20
    scenario = make_scenario(fabric={"topology": "leaf_spine", "hosts": ranks, "clos": {"hosts_per_leaf": 1}},
                             collective={"op": "all_gather"},
                             workload={"rule": "data_sizes", "data_sizes": [size_bytes // ranks]})
    simulation = Simulation(scenario)
    (record,) = simulation.run()
    route = simulation.route(0, 1)
    assert len(route.links) == 6
    expected_ps = (ranks - 1) * (route.latency_ps + size_bytes / ranks * 8e12 / route.bottleneck_bps)
    assert abs(record.latency_ps - expected_ps) <= ranks
    assert record.breakdown.ideal_ps == record.latency_ps


def test_zero_latency_links_route_without_looping():
    """Zero-cost cycles (NVLink and NVSwitch at 0 ns) must not trap the walk: fewest hops break ties."""
    scenario = make_scenario(fabric={"hosts": 2, "gpus_per_host": 4, "cable_latency": "0ns",
                                     "nvlink": {"bandwidth": "300GB/s", "latency": "0ns"},
                                     "nvswitch": {"latency": "0ns"}, "pcie": {"bandwidth": "32GB/s", "latency": "0ns"},
                                     "nic": {"latency": "0ns"}, "switch": {"latency": "0ns"}})
    fabric = build_fabric(scenario.fabric)
    router = Router(fabric)
    inside = router.route(fabric.gpus[0], fabric.gpus[1])
    across = router.route(fabric.gpus[0], fabric.gpus[4])
    assert inside.latency_ps == across.latency_ps == 0
    assert len(inside.links) == 2 and len(across.links) == 4  # GPU-NVSwitch-GPU; GPU-NIC-switch-NIC-GPU


@pytest.mark.parametrize("placement, expected", [("host_first", {0: [0, 1, 2], 1: [3, 4, 5]}),
                                                 ("rail_first", {0: [0, 2, 4], 1: [1, 3, 5]})])
def test_each_hosts_ranks_are_read_once_from_the_fabric(placement, expected):
    """Fabric.host_ranks (ranks_by_host): each host's GPU ranks in order, hosts in the order of their first
    rank, whatever the placement; the channels, the relays and job placement all read it."""
    fabric = _fabric(hosts=2, gpus_per_host=3, placement=placement)
    assert fabric.host_ranks() == expected
    assert all(fabric.devices[fabric.gpus[rank]].host == host for host, ranks in expected.items() for rank in ranks)
    assert list(ranks_by_host("bab")) == ["b", "a"] and ranks_by_host("bab") == {"b": [0, 2], "a": [1]}
