"""NCCL's Ring and path choice across hosts: channels over every NIC, nearest NIC, PXN on rails.

On 2 DGX A100 hosts every channel crosses between hosts on its own NIC's rail, so a rail-optimized
fabric carries the same bytes on every NIC and reaches the busbw of one switch (formulas.md, "NCCL's
algorithms on real machines").
"""

import pytest

from fabricsim.config.presets import HOST_PRESETS
from fabricsim.fabric import Router, build_fabric
from fabricsim.output.results import collect
from fabricsim.output.stats import busbw_GBps
from fabricsim.runner.simulation import Simulation
from tests.conftest import make_scenario

SIZE_BYTES = 2**28


def ring_run(topology: str, algorithm: str = "ring"):
    scenario = make_scenario(fabric={"preset": "dgx_a100", "topology": topology, "hosts": 2,
                                     "clos": {"spines": 2}},
                             collective={"op": "all_reduce", "algorithm": algorithm},
                             workload={"rule": "data_sizes", "data_sizes": [SIZE_BYTES]})
    simulation = Simulation(scenario)
    (record,) = simulation.run()
    nic_bytes = {link.src: record.link_usage.carried_bits[link.index] / 8 for link in simulation.fabric.links
                 if link.src.startswith("h0.nic") and link.kind == "roce"}
    return busbw_GBps("all_reduce", 16, SIZE_BYTES, record.latency_ps / 1e6), nic_bytes


def test_ring_on_a_rail_optimized_fabric_uses_every_nic_evenly_and_matches_one_switch():
    rail_busbw, rail_nics = ring_run("rail_optimized")
    switch_busbw, switch_nics = ring_run("single_switch")
    for nics in (rail_nics, switch_nics):
        assert len(nics) == 8 and max(nics.values()) <= 1.01 * min(nics.values())
        assert sum(nics.values()) == pytest.approx(2 * 15 / 16 * SIZE_BYTES, rel=1e-6)  # every byte leaves once
    assert rail_busbw == pytest.approx(switch_busbw, rel=0.02)
    assert rail_busbw == pytest.approx(8 * 200e9 / 8 * 4096 / 4178 / 1e9, rel=0.02)  # 8 NICs' effective rate
    flat_busbw, _ = ring_run("rail_optimized", "flat_ring")
    assert flat_busbw == pytest.approx(rail_busbw / 8, rel=0.02)  # one NIC per host


def fabric_of(**spec):
    return build_fabric(make_scenario(fabric=spec).fabric)


def test_cross_rail_traffic_crosses_nvlink_on_the_sending_host_then_stays_on_the_rail():
    fabric = fabric_of(preset="dgx_h100", topology="rail_optimized", hosts=2, clos={"spines": 4})
    router = Router(fabric)
    assert router.waypoints("h0.gpu7", "h1.gpu0") == ("h0.gpu7", "h0.gpu0", "h0.nic0", "h1.nic0", "h1.gpu0")
    assert router.waypoints("h0.gpu1", "h1.gpu0") == ("h0.gpu1", "h0.nic0", "h1.nic0", "h1.gpu0")  # one PCIe switch
    routes = {router.route("h0.gpu7", "h1.gpu0", flow_hash) for flow_hash in range(1, 64)}
    assert len(routes) == 1  # no hash picks between the sender's and the receiver's NVLink detour
    (route,) = routes
    names = [fabric.links[i].name for i in route.links]
    assert names[0] == "h0.gpu7->h0.nvswitch" and "h0.nic0->rail0" in names
    assert not any("spine" in name for name in names)


def test_on_switched_fabrics_a_gpu_sends_through_its_own_nic_and_hashes_only_among_spines():
    fabric = fabric_of(preset="dgx_a100", topology="leaf_spine", hosts=2, clos={"hosts_per_leaf": 1, "spines": 4})
    router = Router(fabric)
    assert router.waypoints("h0.gpu1", "h1.gpu0") == ("h0.gpu1", "h0.nic1", "h1.nic0", "h1.gpu0")
    spines = set()
    for flow_hash in range(1, 64):
        names = [fabric.links[i].name for i in router.route("h0.gpu1", "h1.gpu0", flow_hash).links]
        assert names[:2] == ["h0.gpu1->h0.pcie0", "h0.pcie0->h0.nic1"] and "h1.nic0->h1.pcie0" in names
        spines.update(name for name in names if name.startswith("leaf0->"))
    assert spines == {f"leaf0->spine{index}" for index in range(4)}
    direct = fabric_of(topology="direct_ring", hosts=3, gpus_per_host=2)
    assert Router(direct).waypoints("h0.gpu0", "h1.gpu1") == ("h0.gpu0", "h1.gpu1")  # least latency


def test_summary_names_the_busiest_link_and_warns_of_a_nic_faster_than_its_pcie_path(tmp_path):
    """400G NICs behind the default PCIe Gen4 path (32 GB/s) run at PCIe speed: the summary says so."""
    scenario = make_scenario(fabric={"topology": "single_switch", "hosts": 2, "gpus_per_host": 2,
                                     "nic": "roce_400g"},
                             collective={"op": "all_reduce", "algorithm": "ring"},
                             workload={"rule": "data_sizes", "data_sizes": ["64MiB"]})
    summary = collect(Simulation(scenario), Simulation(scenario).run(), tmp_path / "out").summary
    assert summary["bottleneck"]["link"] == "h0.gpu0->h0.nic0"  # the first of the equally busy GPU-NIC paths
    assert summary["bottleneck"]["kind"] == "pcie" and summary["bottleneck"]["utilization"] > 0.95
    (warning,) = summary["warnings"]
    assert "400 Gbps NICs" in warning and "PCIe path (256 Gbps)" in warning
    assert summary["busbw_GBps"] == pytest.approx(2 * 32, rel=0.02)  # two NICs per host, each at 32 GB/s


@pytest.mark.parametrize("preset", sorted(HOST_PRESETS))
def test_every_host_presets_pcie_path_keeps_up_with_its_nic(preset):
    assert not fabric_of(preset=preset, hosts=2).warnings
