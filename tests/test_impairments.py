"""Impairments against their closed forms: timeouts, go-back-N, QP failure, jitter laws."""

import numpy as np
import pytest
import simpy
from scipy import stats as scipy_stats

from fabricsim.collectives.schedule import Schedule, Transfer
from fabricsim.config import DistributionSpec, LossSpec
from fabricsim.engine.executor import ScheduleRun
from fabricsim.engine.flows import FlowNetwork
from fabricsim.engine.impairments import TransferImpairments, Transport, draw_delays_ps, draw_impairments, rto_ps
from fabricsim.runner.simulation import Simulation
from tests.conftest import make_scenario

MTU = 4096
RATE_BPS = 100e9


def _one_transfer_time(nbytes, gaps=0, timeouts=0, failed=False, delay_ps=0, retry_count=7, exponent=20):
    """Run a single transfer over a one-link fabric and return (time, failed)."""
    from fabricsim.fabric.routing import Route

    route = Route(links=(0,), latency_ps=2_000_000, bottleneck_bps=RATE_BPS)
    env = simpy.Environment()
    schedule = Schedule("send_recv", "direct", 2, nbytes, (Transfer(0, 0, 1, nbytes),))
    drawn = TransferImpairments(np.array([delay_ps]), np.array([gaps]), np.array([timeouts]), np.array([failed]))
    run = ScheduleRun(env, FlowNetwork(env, [RATE_BPS]), schedule, lambda s, d: route, drawn,
                      Transport(MTU, rto_ps(exponent), retry_count))
    env.run(until=run.done)
    return env.now, run.failed, route


def _serialise_ps(nbytes):
    return round(nbytes * 8 * 10**12 / RATE_BPS)


def test_rto_is_4096_ns_times_two_to_the_exponent():
    assert rto_ps(20) == 4_096_000 * 2**20  # 4.295 s
    assert rto_ps(0) == 4_096_000


@pytest.mark.parametrize("timeouts", [1, 2, 7])
def test_each_tail_loss_adds_one_timeout_and_one_resent_packet(timeouts):
    clean, _, route = _one_transfer_time(10 * MTU)
    lossy, failed, _ = _one_transfer_time(10 * MTU, timeouts=timeouts)
    assert not failed
    assert lossy - clean == timeouts * rto_ps(20) + _serialise_ps((10 + timeouts) * MTU) - _serialise_ps(10 * MTU)


def test_go_back_n_costs_a_nack_round_trip_and_two_packets():
    clean, _, route = _one_transfer_time(100 * MTU)
    lossy, _, _ = _one_transfer_time(100 * MTU, gaps=3)
    resend_ps = _serialise_ps(106 * MTU) - _serialise_ps(100 * MTU)
    assert lossy - clean == 3 * 2 * route.latency_ps + resend_ps


def test_queue_pair_fails_after_the_retries_and_the_run_says_so():
    time_ps, failed, _ = _one_transfer_time(10 * MTU, timeouts=8, failed=True, retry_count=7, exponent=4)
    assert failed
    assert time_ps == _serialise_ps(17 * MTU) + 8 * rto_ps(4)


def test_start_delay_adds_exactly():
    clean, _, _ = _one_transfer_time(MTU)
    delayed, _, _ = _one_transfer_time(MTU, delay_ps=12_345)
    assert delayed - clean == 12_345


def test_tail_loss_count_is_geometric():
    """P(k consecutive losses of the last packet) = q^k (1 - q)."""
    q, n = 0.2, 200_000
    rng = np.random.default_rng(1)
    drawn = draw_impairments(DistributionSpec(), LossSpec(rate=q, retry_count=7), np.full(n, MTU), MTU, rng)
    for k in range(3):
        expected = q**k * (1 - q)
        observed = np.mean(drawn.tail_timeouts == k)
        assert abs(observed - expected) < 5 * np.sqrt(expected * (1 - expected) / n)
    assert np.mean(drawn.failed) == pytest.approx(q**8, abs=5 * np.sqrt(q**8 / n) + 1e-6)


def test_gap_losses_are_binomial_over_all_but_the_last_packet():
    q, packets, n = 1e-3, 1000, 20_000
    rng = np.random.default_rng(2)
    drawn = draw_impairments(DistributionSpec(), LossSpec(rate=q), np.full(n, packets * MTU), MTU, rng)
    mean = (packets - 1) * q
    assert abs(drawn.gap_losses.mean() - mean) < 5 * np.sqrt(mean * (1 - q) / n)


@pytest.mark.parametrize("spec, mean_ps", [
    ({"distribution": "constant", "value": "3us"}, 3e6),
    ({"distribution": "exponential", "mean": "2us"}, 2e6),
    ({"distribution": "uniform", "low": "1us", "high": "3us"}, 2e6),
    ({"distribution": "lognormal", "median": "1us", "sigma": 0.5}, 1e6 * np.exp(0.125)),
    ({"distribution": "normal", "mean": "10us", "std": "1us"}, 1e7),  # truncation at 0 is negligible here
])
def test_jitter_laws_have_their_means(spec, mean_ps):
    n = 100_000
    delays = draw_delays_ps(DistributionSpec.model_validate(spec), n, np.random.default_rng(3))
    assert delays.dtype == np.int64 and delays.min() >= 0
    sem = delays.std() / np.sqrt(n)
    assert abs(delays.mean() - mean_ps) <= 5 * sem + 1


def test_exponential_jitter_passes_a_ks_test():
    delays = draw_delays_ps(DistributionSpec(distribution="exponential", mean="5us"), 20_000, np.random.default_rng(4))
    assert scipy_stats.kstest(delays, "expon", args=(0, 5e6)).pvalue > 1e-3


def test_a_trial_whose_qp_fails_is_recorded_failed_not_dropped():
    scenario = make_scenario(impairments={"loss": {"rate": 0.5, "retry_count": 0, "timeout_exponent": 0}},
                             workload={"rule": "data_sizes", "data_sizes": ["64KiB"], "trials": 20})
    records = Simulation(scenario).run()
    assert len(records) == 20
    assert any(r.failed for r in records)


def test_empirical_jitter_draws_only_and_evenly_from_its_samples(tmp_path):
    """A sample file (one time per line) is read relative to the scenario and drawn uniformly."""
    from fabricsim.config import load_scenario

    (tmp_path / "launch.txt").write_text("1us\n2us\n7us\n")
    (tmp_path / "s.yaml").write_text("name: s\nworkload: {rule: data_sizes, data_sizes: [1KiB]}\n"
                                     "impairments: {jitter: {distribution: empirical, file: launch.txt}}\n")
    spec = load_scenario(tmp_path / "s.yaml").impairments.jitter
    assert spec.samples_ps == (1_000_000, 2_000_000, 7_000_000)
    n = 30_000
    delays = draw_delays_ps(spec, n, np.random.default_rng(5))
    assert set(np.unique(delays)) == {1_000_000, 2_000_000, 7_000_000}
    for value in spec.samples_ps:
        assert abs(np.mean(delays == value) - 1 / 3) < 5 * np.sqrt(2 / 9 / n)


def test_loss_on_one_link_hits_only_the_transfers_that_cross_it():
    """Rank 0 sends one packet to rank 1: it times out at least once with probability q when the lossy
    link is on its route, never when it is not."""

    q, trials = 0.3, 400
    for link, expected in (("h0.nic0->switch", q), ("h1.nic0->switch", 0.0)):
        scenario = make_scenario(fabric={"hosts": 2}, collective={"op": "send_recv", "algorithm": "direct"},
                                 impairments={"loss": {"links": {link: q}, "timeout_exponent": 0}},
                                 workload={"rule": "data_sizes", "data_sizes": ["1KiB"], "trials": trials})
        records = Simulation(scenario).run()
        assert all(sum(r.breakdown.parts_ps()) == r.latency_ps and r.breakdown.timeout_ps % rto_ps(0) == 0 for r in records)
        observed = np.mean([r.breakdown.timeout_ps > 0 for r in records])
        assert abs(observed - expected) <= 4 * np.sqrt(expected * (1 - expected) / trials)


def test_route_loss_rate_combines_the_global_and_link_rates():
    from fabricsim.engine.impairments import route_loss_rate

    assert route_loss_rate(0.1, {3: 0.2, 5: 0.5}, (1, 3, 5)) == pytest.approx(1 - 0.9 * 0.8 * 0.5)
    assert route_loss_rate(0.0, {3: 0.2}, (1, 2)) == 0.0


def test_per_transfer_loss_rates_draw_tail_losses_at_their_own_rate():
    n = 100_000
    rates = np.where(np.arange(n) % 2 == 0, 0.0, 0.25)
    drawn = draw_impairments(DistributionSpec(), LossSpec(), np.full(n, MTU), MTU, np.random.default_rng(6), rates)
    assert drawn.tail_timeouts[rates == 0].max() == 0
    lossy = drawn.tail_timeouts[rates > 0]
    assert abs(np.mean(lossy > 0) - 0.25) < 5 * np.sqrt(0.25 * 0.75 / lossy.size)


def test_an_unknown_lossy_link_is_one_clear_line():
    from fabricsim.config import ScenarioError

    with pytest.raises(ScenarioError, match=r"loss.links: expected links of the fabric .*'h0.nic9->switch'"):
        Simulation(make_scenario(impairments={"loss": {"links": {"h0.nic9->switch": 0.1}}}))
