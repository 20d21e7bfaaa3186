"""The engine against theory: uncontended ring collectives reproduce the alpha-beta formulas.

alpha is the route latency between ring neighbours and beta the time per byte of the route's
bottleneck link (reference/formulas.md, Thakur, Rabenseifner & Gropp 2005). The engine rounds each
transfer to a whole picosecond, so the simulated time may differ from the formula by at most one
picosecond per sequential step. Every test runs twice: timed as a longest path when no flows meet
(``engine.uncontended``), and on the event loop.
"""

from fractions import Fraction

import pytest

from fabricsim.engine.models import FlowModel
from fabricsim.runner.simulation import Simulation
from tests.conftest import make_scenario

RANKS = (2, 3, 4, 5, 8, 16)
SIZES = (2**10, 2**20, 2**30)
STEPS = {"all_gather": 1, "reduce_scatter": 1, "all_reduce": 2}  # multiples of (p - 1)


@pytest.fixture(autouse=True, params=["longest path", "event loop"])
def engine(request, monkeypatch):
    monkeypatch.setattr(FlowModel, "uncontended_shortcut", request.param == "longest path")


def ideal_time_ps(simulation: Simulation, op: str, size_bytes: int) -> Fraction:
    p = simulation.plan.ranks
    route = simulation.route(0, 1)
    alpha_ps = route.latency_ps
    beta_ps_per_byte = Fraction(8 * 10**12) / Fraction(route.bottleneck_bps)
    return STEPS[op] * (p - 1) * (alpha_ps + Fraction(size_bytes, p) * beta_ps_per_byte)


def run_once(op: str, ranks: int, size_bytes: int, topology: str, chunks: int = 1) -> tuple[Simulation, int]:
    per_rank = size_bytes // ranks if op == "all_gather" else size_bytes
    scenario = make_scenario(
        fabric={"topology": topology, "hosts": ranks, "gpus_per_host": 1},
        collective={"op": op, "algorithm": "ring", "chunks": chunks},
        workload={"rule": "data_sizes", "data_sizes": [per_rank]},
    )
    simulation = Simulation(scenario)
    (record,) = simulation.run()
    assert not record.failed
    return simulation, record.latency_ps


@pytest.mark.parametrize("topology", ["single_switch", "direct_ring"])
@pytest.mark.parametrize("op", ["all_gather", "reduce_scatter", "all_reduce"])
@pytest.mark.parametrize("ranks", RANKS)
def test_ring_matches_alpha_beta(topology, op, ranks):
    for size in SIZES:
        size_bytes = size - size % ranks  # equal pieces: the formula's n/p is exact
        simulation, latency_ps = run_once(op, ranks, size_bytes, topology)
        expected_ps = ideal_time_ps(simulation, op, size_bytes)
        steps = STEPS[op] * (ranks - 1)
        assert abs(latency_ps - expected_ps) <= steps, (size_bytes, latency_ps, float(expected_ps))


@pytest.mark.parametrize("op", ["all_gather", "all_reduce"])
@pytest.mark.parametrize("chunks, size_bytes", [(2, 2**21), (4, 2**22), (8, 2**15), (3, 3 * 2**12)])
def test_chunked_ring_pipelines_on_a_fifo_channel(op, chunks, size_bytes):
    """c chunks of T = S/(p c) beta: (steps - 1) max(T + alpha, c T) + c T + alpha."""
    ranks = 4
    size_bytes -= size_bytes % (ranks * chunks)
    simulation, latency_ps = run_once(op, ranks, size_bytes, "single_switch", chunks)
    route = simulation.route(0, 1)
    chunk_ps = Fraction(size_bytes * 8 * 10**12, ranks * chunks) / Fraction(route.bottleneck_bps)
    steps = STEPS[op] * (ranks - 1)
    expected_ps = (steps - 1) * max(chunk_ps + route.latency_ps, chunks * chunk_ps) + chunks * chunk_ps + route.latency_ps
    assert abs(latency_ps - expected_ps) <= steps * chunks, (latency_ps, float(expected_ps))


def test_alpha_dominates_small_messages():
    """At 1 KiB over 100G the latency term is larger than the bandwidth term, and it is counted."""
    simulation, latency_ps = run_once("all_gather", 4, 1024, "single_switch")
    route = simulation.route(0, 1)
    assert latency_ps >= 3 * route.latency_ps > 3 * 256 * 8 * 10**12 / route.bottleneck_bps


def test_more_bandwidth_is_never_slower():
    times = []
    for gbps in (25, 50, 100, 200, 400):
        scenario = make_scenario(fabric={"nic": {"bandwidth": f"{gbps}Gbps"}},
                                 collective={"op": "all_reduce"})
        times.append(Simulation(scenario).run()[0].latency_ps)
    assert times == sorted(times, reverse=True) and times[0] > times[-1]
