"""Per-message software latency (NCCL's protocol constants) and ``algorithm: auto`` (NCCL's tuning model).

With a protocol, every transfer waits its route's per-hop latency and the first transfers also the
base latency, so on an ideal fabric a collective's time is its alpha-beta formula with alpha = path
latency + per-hop latency, plus the base latency once (NCCL's cost model, src/graph/tuning.cc).
"""

from fractions import Fraction

import pytest

from fabricsim.collectives.cost import predicted_time
from fabricsim.collectives.protocol import base_latency_ps, hop_latency_ps
from fabricsim.collectives.tuner import (BASE_LATENCY_US, NCCL_ALGORITHM_OF, PROTOCOLS, Topology, bandwidth_GBps,
                                         duplicated_channels, enabled, latency_us, nccl_pick, nic_path_GBps, time_us)
from fabricsim.runner import work_limits
from fabricsim.runner.simulation import Simulation
from fabricsim.units import PS_PER_US
from tests.conftest import make_scenario

ONE_HOST = {"topology": "single_switch", "hosts": 1, "gpus_per_host": 8}
EIGHT_HOSTS = {"topology": "single_switch", "hosts": 8, "gpus_per_host": 1}


def run(fabric: dict, collective: dict, size_bytes: int) -> tuple[Simulation, int]:
    scenario = make_scenario(fabric=fabric, collective=collective,
                             workload={"rule": "data_sizes", "data_sizes": [size_bytes]})
    simulation = Simulation(scenario)
    (record,) = simulation.run()
    return simulation, record.latency_ps


@pytest.mark.parametrize("protocol, hop_us, base_us", [("ll", 0.6, 6.6), ("ll128", 1.9, 14.0), ("simple", 3.4, 8.4)])
def test_nvlink_ring_all_reduce_pays_nccls_base_and_per_hop_latency(protocol, hop_us, base_us):
    size_bytes = 8 * 2**20
    simulation, latency_ps = run(ONE_HOST, {"op": "all_reduce", "algorithm": "ring", "protocol": protocol},
                                 size_bytes)
    route = simulation.route(0, 1)
    beta = Fraction(8 * 10**12) / Fraction(route.bottleneck_bps)
    alpha_ps = route.latency_ps + round(hop_us * PS_PER_US)
    expected_ps = predicted_time("all_reduce", "ring", 8, size_bytes, alpha_ps, beta) + round(base_us * PS_PER_US)
    assert abs(latency_ps - expected_ps) <= 2 * 7 * 8
    _, without_ps = run(ONE_HOST, {"op": "all_reduce", "algorithm": "ring"}, size_bytes)
    assert latency_ps - without_ps == pytest.approx((base_us + 14 * hop_us) * PS_PER_US, abs=2 * 7 * 8)


def test_latency_follows_the_transport_and_the_algorithm_family():
    assert hop_latency_ps("ll", {"nvlink"}) == 600_000
    assert hop_latency_ps("ll", {"pcie"}) == 1_000_000
    assert hop_latency_ps("simple", {"pcie", "roce", "nvlink"}) == 14_000_000  # a NIC on the way: NET
    assert base_latency_ps("ll", "ring") == 6_600_000
    assert base_latency_ps("ll", "double_binary_tree") == base_latency_ps("ll", "binomial_tree") == 6_800_000
    assert hop_latency_ps("none", {"roce"}) == base_latency_ps("none", "ring") == 0
    # every algorithm NCCL has pays the base latency NCCL's tuner prices it with (tuning.cc: CollNet's 0)
    for algorithm, nccl_algorithm in NCCL_ALGORITHM_OF.items():
        for protocol in PROTOCOLS:
            assert base_latency_ps(protocol, algorithm) == round(
                BASE_LATENCY_US[nccl_algorithm][PROTOCOLS.index(protocol)] * PS_PER_US)
    assert base_latency_ps("simple", "collnet_direct") == base_latency_ps("simple", "collnet_chain") == 0
    # across hosts the per-hop latency is NET's: 8 hosts, LL, a tiny message
    simulation, latency_ps = run(EIGHT_HOSTS, {"op": "broadcast", "algorithm": "binomial_tree", "protocol": "ll"}, 8)
    route = simulation.route(0, 1)
    beta = Fraction(8 * 10**12) / Fraction(route.bottleneck_bps)
    expected_ps = 3 * (route.latency_ps + 2_700_000 + 8 * beta) + 6_800_000
    assert abs(latency_ps - expected_ps) <= 3


NCCL_HAS = {"all_reduce": {"ring", "tree", "nvls", "nvls_tree", "collnet_direct", "collnet_chain"},
            "all_gather": {"ring", "pat", "nvls"}, "reduce_scatter": {"ring", "pat", "nvls"},
            "broadcast": {"ring"}, "reduce": {"ring"}, "all_to_all": {"direct"}, "gather": {"direct"},
            "send_recv": {"direct"}}
TOPOLOGIES = [Topology(8, 1, "ampere", True, 240, 24.5), Topology(8, 1, "hopper", True, 370.8, 49),
              Topology(16, 2, "hopper", True, 370.8, 49), Topology(8, 8, "ampere", True, 240, 12.25),
              Topology(64, 8, "ampere", True, 240, 24.5), Topology(16, 2, "ampere", False, 32, 12.25),
              Topology(8, 1, "hopper", True, 370.8, 49, nvls=True), Topology(16, 2, "hopper", True, 370.8, 49, nvls=True),
              Topology(72, 1, "blackwell", True, 721.8, 49, nvls=True),
              Topology(64, 8, "hopper", True, 370.8, 49, sharp=True, nvls=True),
              Topology(16, 2, "ampere", False, 32, 12.25, sharp=True), Topology(8, 8, "ampere", True, 240, 24.5, sharp=True),
              Topology(144, 2, "blackwell", True, 721.8, 49, sharp=True, nvls=True)]


@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("op", sorted(NCCL_HAS))
def test_auto_never_picks_an_algorithm_nccl_has_not_for_the_op_and_fabric(op, topology):
    for size_bytes in (8, 2**12, 2**16, 2**20, 2**24, 2**28, 2**32):
        pick = nccl_pick(op, topology, size_bytes)
        assert pick.algorithm in NCCL_HAS[op] and pick.protocol in ("ll", "ll128", "simple")
        named = pick.reason.split(": ")[1].split()[0] if pick.reason.startswith("NCCL") else ""
        assert named.split("/")[0].lower().replace("nvlstree", "nvls_tree").replace("collnetd", "collnet_d").replace(
            "collnetc", "collnet_c") in (pick.algorithm, "")  # auto runs what NCCL's model picks
        if pick.algorithm == "pat":
            assert topology.nodes == topology.ranks and op in ("all_gather", "reduce_scatter")
            assert pick.protocol == "simple"
        if pick.algorithm.startswith("nvls"):
            assert topology.nvls and topology.architecture in ("hopper", "blackwell") and pick.protocol == "simple"
            assert topology.per_node > 1 and (topology.nodes == 1 or pick.algorithm == "nvls_tree"
                                              or (topology.sharp and op == "all_reduce"))  # NVLS with CollNet
        if pick.algorithm == "nvls_tree" or pick.algorithm.startswith("collnet"):
            assert op == "all_reduce" and topology.nodes > 1
        if pick.algorithm.startswith("collnet"):
            assert topology.sharp and (topology.nvlink or pick.algorithm == "collnet_chain") and topology.per_node <= 8
        if pick.algorithm == "nvls" and op != "all_reduce":
            assert topology.per_node <= 32
        if not topology.nvlink and topology.per_node > 1:
            assert pick.protocol != "ll128"  # LL128 only over NVLink inside nodes


def test_auto_prices_as_tuning_cc_does():
    """Hand-worked from tuning.cc's constants: 8 A100 on one node, and 2 nodes of 8."""
    one_node, two_nodes = TOPOLOGIES[0], Topology(16, 2, "ampere", True, 240, 24.5)
    assert latency_us("all_reduce", "ring", "ll", one_node) == pytest.approx(6.6 + 14 * 0.6)
    assert bandwidth_GBps("all_reduce", "ring", "ll", one_node) == pytest.approx(min(87.7, 240 * .5) * 8 / 14)
    assert latency_us("all_reduce", "tree", "ll", two_nodes) == pytest.approx(6.8 + 2 * (7 * 0.6 + 1 * 5.0))
    # Ring across nodes: 2(n - 1) network steps at 2.7 us, the other steps at max(0.6, 1 us overhead)
    assert latency_us("all_reduce", "ring", "ll", two_nodes) == pytest.approx(6.6 + 28 * 1.0 + 2 * 2.7)
    ring_simple = min(240, 8 * 24.5) * 16 / 30
    assert bandwidth_GBps("all_reduce", "ring", "simple", two_nodes) == pytest.approx(ring_simple)
    assert bandwidth_GBps("all_reduce", "tree", "simple", two_nodes) == pytest.approx(
        min(196 * .92, 32 * 23.6) * .5)
    assert time_us("all_reduce", "ring", "simple", two_nodes, 2**30) == pytest.approx(
        1.4 * (8.4 + 28 * max(3.4, 3 * 1.0) + 2 * 14.0) + 2**30 / (1000 * ring_simple))
    assert [nccl_pick("all_reduce", two_nodes, size).algorithm for size in (8, 2**30)] == ["tree", "ring"]


def test_run_reports_what_auto_picked_and_why(tmp_path, capsys):
    import json

    import yaml

    from fabricsim.cli import main

    path = tmp_path / "auto.yaml"
    path.write_text(yaml.safe_dump({
        "name": "auto", "fabric": {"preset": "dgx_a100", "hosts": 2},
        "collective": {"op": "all_reduce", "algorithm": "Auto", "protocol": "auto"},
        "workload": {"rule": "data_sizes", "data_sizes": [8, "1GiB"]}, "output": {"plots": False}}))
    assert main(["run", str(path), "-o", str(tmp_path / "out")]) == 0
    assert "auto picked: tree/ll for 8 B, ring/simple for 1 GiB" in capsys.readouterr().out
    collective = json.loads((tmp_path / "out" / "summary.json").read_text())["collective"]
    assert collective["picked"] == {"8": "tree", str(2**30): "ring"}
    assert collective["why"]["8"].startswith("NCCL's model: Tree/LL 25.2 us, next Ring/LL")


@pytest.mark.parametrize("algorithm, protocol, expected", [("Ring", "LL128", ("ring", "ll128")),
                                                          ("TREE", "Simple", ("tree", "simple")),
                                                          ("multi_ring", "ll", ("ring", "ll"))])
def test_nccl_spellings_are_accepted(algorithm, protocol, expected):
    collective = make_scenario(collective={"op": "all_reduce", "algorithm": algorithm, "protocol": protocol}).collective
    assert (collective.algorithm, collective.protocol) == expected


def test_pat_runs_where_nccl_allows_it_and_is_refused_elsewhere_in_one_line():
    """NCCL enables PAT with one GPU per node only: auto runs it there (8 hosts of 1 GPU, 64 KiB), and
    naming it on hosts of several GPUs is refused, naming the key."""
    from fabricsim.config import ScenarioError
    from fabricsim.runner.simulation import Simulation
    for spelling in ("PAT", "pat"):
        assert make_scenario(fabric={"hosts": 4, "gpus_per_host": 1},
                             collective={"op": "reduce_scatter", "algorithm": spelling}).collective.algorithm == "pat"
    with pytest.raises(ScenarioError, match="collective.algorithm: expected pat only with one GPU per host .*got 8$"):
        make_scenario(fabric={"hosts": 2, "gpus_per_host": 8}, collective={"op": "all_gather", "algorithm": "PAT"})
    one_gpu = {"preset": "dgx_a100", "hosts": 8, "gpus_per_host": 1, "pcie_switches": 0}
    scenario = make_scenario(fabric=one_gpu, collective={"op": "all_gather", "algorithm": "auto", "protocol": "auto"},
                             workload={"rule": "data_sizes", "data_sizes": ["8KiB"]})
    simulation = Simulation(scenario)
    pick = simulation.pick("all_gather", 8, 8192, simulation.layout(tuple(range(8))))
    assert (pick.algorithm, pick.protocol) == ("pat", "simple") and pick.reason.startswith("NCCL's model: PAT/Simple")
    assert simulation.schedule("all_gather", 8, 8192).algorithm == "pat"


def test_every_nccl_algorithm_is_accepted_by_its_nccl_algo_spelling():
    fabric = {"preset": "dgx_h100", "hosts": 2, "topology": "rail_optimized", "clos": {"sharp": True}}
    for spelling, name in (("Ring", "ring"), ("Tree", "tree"), ("NVLSTree", "nvls_tree"), ("CollNetDirect", "collnet_direct"),
                           ("CollNetChain", "collnet_chain"), ("CollNet", "collnet_direct"), ("collnet_chain", "collnet_chain")):
        assert make_scenario(fabric=fabric, collective={"op": "all_reduce", "algorithm": spelling}).collective.algorithm == name
    assert make_scenario(fabric={"preset": "dgx_h100", "hosts": 1},
                         collective={"op": "all_reduce", "algorithm": "NVLS"}).collective.algorithm == "nvls"


def test_collnet_is_priced_only_where_the_switches_reduce():
    """CollNet needs SHARP switches (fabric.clos.sharp): without them NCCL never considers it; with
    them it is NCCL's pick for a multi-node all-reduce up to large sizes, and it runs."""
    plain, sharp = Topology(64, 8, "hopper", True, 370.8, 49), Topology(64, 8, "hopper", True, 370.8, 49, True)
    for size_bytes in (8, 2**20, 2**30):
        assert "CollNet" not in nccl_pick("all_reduce", plain, size_bytes).reason
        pick = nccl_pick("all_reduce", sharp, size_bytes)
        assert "CollNet" in pick.reason
        assert pick.algorithm.startswith("collnet") and pick.reason.startswith("NCCL's model: CollNet")
        assert not any(enabled(op, "collnet_direct", "simple", sharp) for op in ("all_gather", "broadcast"))
    one_node = Topology(8, 1, "hopper", True, 370.8, 49, True)
    assert not enabled("all_reduce", "collnet_direct", "simple", one_node)
    assert latency_us("all_reduce", "collnet_chain", "simple", sharp) == pytest.approx(2 * 7 * 2.8 + 30)


def test_channels_double_where_nccls_search_doubles_them():
    """ncclTopoDupChannels: not below 25 GB/s a channel, nor from Hopper on below 50 GB/s with more
    than 4 channels. 2 nodes: A100 with 200G NICs (24.5 GB/s) and H100 with 400G (49 GB/s, 8 channels)
    keep one channel per NIC; B300 with 800G (98 GB/s) runs two per NIC, the second ring on the first's path."""
    assert [duplicated_channels(8, 24.5, "ampere"), duplicated_channels(8, 49.0, "ampere"),
            duplicated_channels(8, 49.0, "hopper"), duplicated_channels(4, 49.0, "hopper"),
            duplicated_channels(8, 98.0, "blackwell"), duplicated_channels(24, 98.0, "blackwell")] == [8, 16, 8, 8, 16, 32]
    for preset, channels in (("dgx_a100", 8), ("dgx_h100", 8), ("dgx_b300", 16)):
        simulation = Simulation(make_scenario(fabric={"preset": preset, "hosts": 2, "topology": "rail_optimized"},
                                              collective={"op": "all_reduce"}))
        layout = simulation.layout(tuple(range(16)))
        assert len(layout.orders) == channels and len(layout.trees) == channels
        assert layout.orders[channels // 2:] == layout.orders[:channels // 2] or channels == 8
    assert Topology(16, 2, "blackwell", True, 721.8, 98.0).channels == 16
    assert Topology(8, 1, "hopper", True, 370.8, 49).channels == 18  # one per NVLink, 20.6 GB/s each: kept


@pytest.mark.parametrize("pcie, channels", [("128GB/s", 16), ("16GB/s", 8)])
def test_the_runner_the_tuner_and_the_work_estimate_count_channels_at_the_nics_path_rate(pcie, channels):
    """A NIC's path rate is its payload rate capped by its PCIe path (nic_path_GBps), for the channels
    the runner lays out, the tuner prices and the work limits count: B300's 800G NICs (98 GB/s) run two
    channels each, one behind a 16 GB/s PCIe path (below 25 GB/s) does not."""
    scenario = make_scenario(fabric={"preset": "dgx_b300", "hosts": 2, "topology": "rail_optimized",
                                     "pcie": {"bandwidth": pcie}}, collective={"op": "all_reduce"})
    spec = scenario.fabric
    assert len(Simulation(scenario).layout(tuple(range(16))).orders) == channels
    assert Topology(16, 2, spec.architecture, True, 721.8, nic_path_GBps(spec)).channels == channels
    assert work_limits._channels("ring", 0, spec) == channels
