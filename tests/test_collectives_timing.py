"""Every algorithm on an ideal single-switch fabric against its alpha-beta formula.

alpha is the route latency between two GPUs, beta the time per byte of the route's bottleneck
(reference/formulas.md). Sizes make every piece equal, so the formulas of
``fabricsim.collectives.cost`` are exact: the engine rounds each transfer to a whole picosecond, so
the simulated time may differ by at most one picosecond per transfer. Double binary tree has only
an estimate and is held to bounds; hierarchical all-reduce is checked with its two alphas and betas.
PAT chunks by its size as NCCL does, so it is checked at sizes of one aggregated message, of partial
aggregation and of several chunks.
"""

from fractions import Fraction

import pytest

from fabricsim.collectives import ALGORITHMS
from fabricsim.collectives.cost import COSTS, TWO_LEVEL_COSTS, predicted_time
from fabricsim.collectives.protocol import base_latency_ps, hop_latency_ps
from fabricsim.runner.simulation import Simulation
from fabricsim.units import PS_PER_S
from tests.conftest import make_scenario

EXACT = sorted(key for key in COSTS if key != ("all_reduce", "double_binary_tree") and key[1] != "pat")
PIPELINED = {key for key, entry in ALGORITHMS.items() if "chunks" in entry.options}


def simulate(op: str, algorithm: str, ranks: int, size_bytes: int, chunks: int = 1, root: int = 0,
             fabric: dict | None = None) -> tuple[Simulation, int]:
    per_rank = size_bytes // ranks if op in ("all_gather", "gather") else size_bytes
    scenario = make_scenario(
        fabric=fabric or {"topology": "single_switch", "hosts": ranks, "gpus_per_host": 1},
        collective={"op": op, "algorithm": algorithm, "chunks": chunks, "root": root},
        workload={"rule": "data_sizes", "data_sizes": [per_rank]},
    )
    simulation = Simulation(scenario)
    (record,) = simulation.run()
    assert not record.failed
    return simulation, record.latency_ps


def alpha_beta(simulation: Simulation, src: int = 0, dst: int = 1) -> tuple[int, Fraction]:
    route = simulation.route(src, dst)
    return route.latency_ps, Fraction(8 * PS_PER_S) / Fraction(route.bottleneck_bps)


@pytest.mark.parametrize("ranks", [2, 3, 5, 8])
@pytest.mark.parametrize("op, algorithm", EXACT)
def test_simulated_time_equals_the_alpha_beta_formula(op, algorithm, ranks):
    for chunks in (1, 3) if (op, algorithm) in PIPELINED else (1,):
        size_bytes = 2**20 * 3 * 5 * 7 * 8 * 2  # divisible by p^2, p x folding chunks, 2 c p
        simulation, latency_ps = simulate(op, algorithm, ranks, size_bytes, chunks, root=ranks - 1)
        alpha_ps, beta = alpha_beta(simulation)
        expected_ps = predicted_time(op, algorithm, ranks, size_bytes, alpha_ps, beta, chunks)
        transfers = len(simulation.schedule(op, ranks, size_bytes // ranks if op in ("all_gather", "gather")
                                            else size_bytes).transfers)
        assert abs(latency_ps - expected_ps) <= transfers, (chunks, latency_ps, float(expected_ps))


@pytest.mark.parametrize("ranks", [2, 3, 5, 6, 8])
@pytest.mark.parametrize("op", ["all_gather", "reduce_scatter"])
def test_pat_time_equals_its_message_by_message_formula(op, ranks):
    for block_bytes in (4096, 300 * 1024, 1536 * 1024):  # aggregated; A = 1, one chunk; several chunks
        size_bytes = ranks * block_bytes
        simulation, latency_ps = simulate(op, "pat", ranks, size_bytes)
        alpha_ps, beta = alpha_beta(simulation)
        expected_ps = predicted_time(op, "pat", ranks, size_bytes, alpha_ps, beta)
        transfers = len(simulation.schedule(op, ranks, block_bytes if op == "all_gather" else size_bytes).transfers)
        assert abs(latency_ps - expected_ps) <= transfers, (block_bytes, latency_ps, float(expected_ps))
        if block_bytes == 4096 and ranks & (ranks - 1) == 0:  # one message per power of two
            lg = ranks.bit_length() - 1
            assert expected_ps == lg * alpha_ps + (ranks - 1) * block_bytes * beta


@pytest.mark.parametrize("op", ["all_gather", "reduce_scatter"])
def test_pat_pays_the_per_message_latency_once_per_aggregated_message(op):
    """8 ranks, 4 KiB each: lg 8 = 3 messages in a row, so protocol Simple adds PAT's base latency and 3
    hop latencies, not one per piece (7)."""
    ranks, block_bytes = 8, 4096
    fabric = {"topology": "single_switch", "hosts": ranks, "gpus_per_host": 1}
    size_bytes = ranks * block_bytes
    latencies = []
    for protocol in ("none", "simple"):
        scenario = make_scenario(fabric=fabric, collective={"op": op, "algorithm": "pat", "protocol": protocol},
                                 workload={"rule": "data_sizes", "data_sizes": [block_bytes if op == "all_gather"
                                                                                 else size_bytes]})
        (record,) = Simulation(scenario).run()
        latencies.append(record.latency_ps)
    hop_ps = hop_latency_ps("simple", {"roce"})
    assert latencies[1] - latencies[0] == base_latency_ps("simple", "pat") + 3 * hop_ps
    assert base_latency_ps("simple", "pat") == 8 * 10**6  # tuning.cc: PAT's 8 us, Ring's 8.4


def test_double_binary_tree_approaches_2_S_beta_as_chunks_grow():
    ranks, size_bytes = 8, 2**26
    times = {}
    for chunks in (1, 4, 16):
        simulation, times[chunks] = simulate("all_reduce", "double_binary_tree", ranks, size_bytes, chunks)
        alpha_ps, beta = alpha_beta(simulation)
        schedule = simulation.schedule("all_reduce", ranks, size_bytes)
        busiest_bytes = max(schedule.bytes_sent_by(rank) for rank in range(ranks))
        assert busiest_bytes == 2 * size_bytes  # an inner node: half up, two halves down, half as a leaf
        assert times[chunks] >= busiest_bytes * beta
        estimate = predicted_time("all_reduce", "double_binary_tree", ranks, size_bytes, alpha_ps, beta, chunks)
        assert abs(times[chunks] - estimate) <= 0.25 * estimate
    assert times[1] > times[4] > times[16]
    assert times[16] <= 1.1 * 2 * size_bytes * beta + 2 * 3 * alpha_ps


@pytest.mark.parametrize("hosts, local_ranks", [(2, 4), (3, 2), (1, 4), (4, 1)])
def test_hierarchical_all_reduce_is_two_rings_in_and_one_across_hosts(hosts, local_ranks):
    ranks = hosts * local_ranks
    size_bytes = 2**20 * 3 * 4 * 8
    fabric = {"topology": "single_switch", "hosts": hosts, "gpus_per_host": local_ranks}
    simulation, latency_ps = simulate("all_reduce", "hierarchical", ranks, size_bytes, fabric=fabric)
    inside = alpha_beta(simulation, 0, 1) if local_ranks > 1 else (0, 0)
    across = alpha_beta(simulation, 0, local_ranks) if hosts > 1 else (0, 0)
    expected_ps = TWO_LEVEL_COSTS[("all_reduce", "hierarchical")](hosts, local_ranks, Fraction(size_bytes),
                                                                  *inside, *across, 1)
    intra_ps = 2 * (local_ranks - 1) * (inside[0] + Fraction(size_bytes, local_ranks) * inside[1])
    inter_ps = 2 * (hosts - 1) * (across[0] + Fraction(size_bytes, ranks) * across[1])
    assert expected_ps == intra_ps + inter_ps  # the formula of hierarchical.py's docstring
    transfers = len(simulation.schedule("all_reduce", ranks, size_bytes).transfers)
    assert abs(latency_ps - expected_ps) <= transfers, (latency_ps, float(expected_ps))


def test_ring_spreads_the_inter_host_traffic_over_every_nic():
    """NCCL's Ring, one channel per NIC: every NIC carries 2(p - 1)/(p L) S instead of one NIC per host
    carrying 2(p - 1)/p S, so with the NICs the bottleneck it is L times faster than the flat ring."""
    hosts, local_ranks, size_bytes = 2, 4, 2**26 * 3
    ranks = hosts * local_ranks
    fabric = {"topology": "single_switch", "hosts": hosts, "gpus_per_host": local_ranks}
    simulation, multi_ps = simulate("all_reduce", "ring", ranks, size_bytes, fabric=fabric)
    schedule = simulation.schedule("all_reduce", ranks, size_bytes)
    for rank in range(ranks):
        crossing = sum(t.nbytes for t in schedule.transfers
                       if t.src == rank and t.dst // local_ranks != rank // local_ranks)
        assert crossing == 2 * (ranks - 1) * size_bytes // (ranks * local_ranks)
    _, single_ps = simulate("all_reduce", "flat_ring", ranks, size_bytes, fabric=fabric)
    _, beta_nic = alpha_beta(simulation, 0, local_ranks)
    assert single_ps == pytest.approx(2 * (ranks - 1) * Fraction(size_bytes, ranks) * beta_nic, rel=0.01)
    assert multi_ps == pytest.approx(single_ps / local_ranks, rel=0.01)
    alpha_in, beta_in = alpha_beta(simulation, 0, 1)
    alpha_out, _ = alpha_beta(simulation, 0, local_ranks)
    estimate = TWO_LEVEL_COSTS[("all_reduce", "ring")](hosts, local_ranks, size_bytes, alpha_in, beta_in,
                                                             alpha_out, beta_nic, 1)
    assert multi_ps == pytest.approx(estimate, rel=0.01)
