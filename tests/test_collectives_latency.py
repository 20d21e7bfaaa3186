"""Per-message software latency (NCCL's protocol constants) and ``algorithm: auto``.

With a protocol, every transfer waits its route's per-hop latency and the first transfers also the
base latency, so on an ideal fabric a collective's time is its alpha-beta formula with alpha = path
latency + per-hop latency, plus the base latency once (NCCL's cost model, src/graph/tuning.cc).
"""

from fractions import Fraction

import pytest

from fabricsim.collectives import algorithms_for
from fabricsim.collectives.cost import COSTS, predicted_time
from fabricsim.collectives.protocol import base_latency_ps, hop_latency_ps
from fabricsim.collectives.tuner import Level, choose_algorithm
from fabricsim.runner import Simulation
from tests.conftest import make_scenario

PS_PER_US = 10**6
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
    # across hosts the per-hop latency is NET's: 8 hosts, LL, a tiny message
    simulation, latency_ps = run(EIGHT_HOSTS, {"op": "broadcast", "algorithm": "binomial_tree", "protocol": "ll"}, 8)
    route = simulation.route(0, 1)
    beta = Fraction(8 * 10**12) / Fraction(route.bottleneck_bps)
    expected_ps = 3 * (route.latency_ps + 2_700_000 + 8 * beta) + 6_800_000
    assert abs(latency_ps - expected_ps) <= 3


@pytest.mark.parametrize("op", ["all_reduce", "all_gather", "reduce_scatter", "broadcast", "reduce"])
def test_auto_picks_the_least_predicted_time_and_a_smallest_simulated_one(op):
    """On an ideal fabric the formulas are exact, so auto's pick is never slower than the others."""
    for size_bytes in (8 * 64, 64 * 2**20):
        simulation, auto_ps = run(EIGHT_HOSTS, {"op": op, "algorithm": "auto", "protocol": "ll"}, size_bytes)
        picked = simulation.schedule(op, 8, size_bytes).algorithm
        route = simulation.route(0, 1)
        alpha_ps = route.latency_ps + hop_latency_ps("ll", {"roce"})
        assert picked == choose_algorithm(op, 8, size_bytes, 1, Level(alpha_ps, route.bottleneck_bps), "ll")
        others = [name for name in algorithms_for(op) if (op, name) in COSTS]
        for name in others:
            _, other_ps = run(EIGHT_HOSTS, {"op": op, "algorithm": name, "protocol": "ll"}, size_bytes)
            assert auto_ps <= other_ps + 1000, (size_bytes, picked, name)


def test_auto_trades_latency_for_bandwidth_as_the_size_grows():
    flat = Level(10 * PS_PER_US, 100e9)
    picks = [choose_algorithm("all_reduce", 8, size, 1, flat) for size in (8, 2**30)]
    assert picks == ["recursive_doubling", "halving_doubling"]  # lg p steps first, then 2 (p-1)/p S beta
    picks = [choose_algorithm("broadcast", 8, size, 8, flat) for size in (8, 2**30)]
    assert picks == ["binomial_tree", "ring"]  # 3 alpha + 3 S beta, then a pipelined chain near S beta


def test_run_reports_what_auto_picked(tmp_path, capsys):
    import json

    import yaml

    from fabricsim.cli import main

    path = tmp_path / "auto.yaml"
    path.write_text(yaml.safe_dump({
        "name": "auto", "fabric": EIGHT_HOSTS, "collective": {"op": "all_reduce", "algorithm": "auto"},
        "workload": {"rule": "data_sizes", "data_sizes": [8, "64MiB"]}, "output": {"plots": False}}))
    assert main(["run", str(path), "-o", str(tmp_path / "out")]) == 0
    assert "auto picked: recursive_doubling for 8 B, halving_doubling for 64 MiB" in capsys.readouterr().out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["collective"]["picked"] == {"8": "recursive_doubling", str(64 * 2**20): "halving_doubling"}


def test_auto_prices_the_host_aware_algorithms_on_two_levels():
    """4 hosts x 8 GPUs, NICs 8x slower than NVLink: a large all-reduce goes host-aware, and wins."""
    fabric = {"topology": "single_switch", "hosts": 4, "gpus_per_host": 8, "nic": {"bandwidth": "400Gbps"},
              "pcie": {"bandwidth": "64GB/s", "latency": "250ns"}}
    size_bytes = 2**28
    simulation, auto_ps = run(fabric, {"op": "all_reduce", "algorithm": "auto"}, size_bytes)
    picked = simulation.schedule("all_reduce", 32, size_bytes).algorithm
    assert picked in ("hierarchical", "ring")
    for name in ("flat_ring", "halving_doubling", "hierarchical", "ring"):
        _, other_ps = run(fabric, {"op": "all_reduce", "algorithm": name}, size_bytes)
        assert auto_ps <= other_ps, name
