"""The breakdown: its parts sum to every trial's latency, and each cause alone is what it should be."""

import csv
import json

import numpy as np
import pytest

from fabricsim.cli import main
from fabricsim.engine.breakdown import attribute
from fabricsim.engine.impairments import rto_ps
from fabricsim.output.tail import tail_causes
from fabricsim.records import PARTS, Causes
from fabricsim.runner.simulation import Simulation
from tests.conftest import make_scenario

LEAF_SPINE = {"topology": "leaf_spine", "hosts": 8, "clos": {"hosts_per_leaf": 2, "spines": 2, "oversubscription": 2},
              "qps_per_rankpair": 2}
MIXES = {
    "jitter_and_loss": ({}, {"jitter": {"distribution": "lognormal", "median": "5us", "sigma": 1.0},
                              "loss": {"rate": 2e-3, "timeout_exponent": 2, "retry_count": 3}}),
    "collisions_and_skew": (LEAF_SPINE, {"launch_skew": {"distribution": "exponential", "mean": "3us"}}),
    "background": (LEAF_SPINE, {"background": {"load": 0.4, "hosts_fraction": 0.25}}),
    "failures": (LEAF_SPINE, {"failures": [{"cable": ["leaf0", "spine0"], "detection_delay": "10us",
                                            "down_at": {"distribution": "uniform", "low": "0us", "high": "80us"},
                                            "down_for": "20us", "flaps": 2, "period": "40us"}]}),
    "dead_end": ({}, {"failures": [{"cable": ["h2.nic0", "switch"], "detection_delay": "5us",
                                    "down_at": {"distribution": "uniform", "low": "0us", "high": "40us"}}]}),
}


@pytest.mark.parametrize("mix", sorted(MIXES))
def test_parts_sum_to_the_latency_of_every_trial(mix):
    fabric, impairments = MIXES[mix]
    scenario = make_scenario(fabric=fabric, impairments=impairments, collective={"op": "all_reduce"},
                             workload={"rule": "data_sizes", "data_sizes": ["256KiB"], "trials": 12})
    records = Simulation(scenario).run()
    for record in records:
        parts = record.breakdown.parts_ps()
        assert sum(parts) == record.latency_ps and min(parts) >= 0, (record, parts)
    named = dict(zip(PARTS, map(sum, zip(*(r.breakdown.parts_ps() for r in records)))))
    expected_cause = {"jitter_and_loss": "jitter", "collisions_and_skew": "jitter", "background": "contention",
                      "failures": "failure", "dead_end": "failure"}[mix]
    assert named[expected_cause] > 0
    if mix == "dead_end":
        assert all(r.failed for r in records)


def test_an_ideal_trial_is_all_ideal():
    (record,) = Simulation(make_scenario(collective={"op": "all_reduce"})).run()
    assert record.breakdown.ideal_ps == record.latency_ps and sum(record.breakdown.parts_ps()[1:]) == 0


@pytest.mark.parametrize("ranks", [2, 4, 5])
def test_constant_jitter_adds_one_delay_per_ring_step(ranks):
    delay_ps = 3_000_000
    scenario = make_scenario(fabric={"hosts": ranks},
                             impairments={"jitter": {"distribution": "constant", "value": "3us"}})
    (record,) = Simulation(scenario).run()
    ideal = Simulation(make_scenario(fabric={"hosts": ranks})).run()[0]
    assert record.breakdown.jitter_ps == (ranks - 1) * delay_ps
    assert record.breakdown.ideal_ps == ideal.latency_ps and record.latency_ps == ideal.latency_ps + (ranks - 1) * delay_ps


def test_launch_skew_waits_for_the_later_rank_once():
    scenario = make_scenario(impairments={"launch_skew": {"distribution": "constant", "value": "7us"}})
    (record,) = Simulation(scenario).run()
    assert record.breakdown.jitter_ps == 7_000_000 and record.breakdown.contention_ps == 0


def test_a_tail_timeout_is_attributed_exactly():
    """Loss rate close to 1 with no packets but one: every transfer's only packet times out until the QP fails."""
    scenario = make_scenario(impairments={"loss": {"rate": 0.9, "timeout_exponent": 3, "retry_count": 0}},
                             workload={"rule": "data_sizes", "data_sizes": ["1KiB"], "trials": 30})
    records = Simulation(scenario).run()
    for record in records:
        assert record.breakdown.timeout_ps % rto_ps(3) == 0 and sum(record.breakdown.parts_ps()) == record.latency_ps
    failed = [r for r in records if r.failed]
    assert failed and all(r.breakdown.timeout_ps >= rto_ps(3) for r in failed)


def test_scaling_keeps_the_sum_exact():
    breakdown = attribute(1000, 900, Causes(jitter_ps=70, retransmit_ps=50, timeout_ps=1), failed=False)
    assert breakdown.ideal_ps == 900 and breakdown.contention_ps == 0
    assert breakdown.jitter_ps + breakdown.retransmit_ps + breakdown.timeout_ps == 100
    failed = attribute(1000, 5000, Causes(failure_ps=300), failed=True)
    assert (failed.ideal_ps, failed.failure_ps, failed.contention_ps) == (700, 300, 0)


def test_tail_causes_measure_the_slowest_trial_against_the_median_trial():
    scenario = make_scenario(impairments={"jitter": {"distribution": "exponential", "mean": "20us"}},
                             workload={"rule": "data_sizes", "data_sizes": ["64KiB"], "trials": 10})
    records = Simulation(scenario).run()
    report = tail_causes(np.array([r.trial for r in records]), np.array([r.latency_ps for r in records]),
                         np.zeros(len(records), dtype=bool), np.array([r.breakdown.parts_ps() for r in records]))
    by_latency = sorted(records, key=lambda r: r.latency_ps)
    median, slowest = by_latency[4], by_latency[-1]  # the lower middle of 10
    assert report["median"]["trial"] == median.trial and "p99" not in report  # 10 trials cannot name a p99
    assert report["max"]["trial"] == slowest.trial and report["max"]["cause"] == "jitter"
    assert report["max"]["beyond_median_us"] == (slowest.latency_ps - median.latency_ps) / 1e6
    assert report["max"]["cause_us"] == (slowest.breakdown.jitter_ps - median.breakdown.jitter_ps) / 1e6


def test_the_p99_trial_is_a_completed_one_and_failed_trials_are_told_apart():
    """300 trials of 1 ms, their jitter growing with the index; 3 failed at 4.3 s (a timeout)."""
    count = 300
    parts = np.zeros((count, len(PARTS)), dtype=np.int64)
    parts[:, 0] = 10**9
    parts[:, PARTS.index("jitter")] = np.arange(count) * 10**6
    failed = np.zeros(count, dtype=bool)
    failed[[10, 20, 30]] = True
    parts[failed, PARTS.index("timeout")] = 43 * 10**11
    parts[failed, PARTS.index("jitter")] = 0
    report = tail_causes(np.arange(count), parts.sum(axis=1), failed, parts)
    ok = np.flatnonzero(~failed)
    assert report["median"]["trial"] == ok[(ok.size - 1) // 2]
    assert report["p99"]["trial"] == ok[int(np.ceil(0.99 * (ok.size - 1)))] and report["p99"]["cause"] == "jitter"
    assert report["max"]["trial"] == 299
    assert report["failed"] == {"trials": 3, "first_trial": 10, "cause": "timeout"}


def test_run_writes_the_breakdown_links_and_flows(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["run", "--trials", "3", "-o", str(out), "--set", "output.flows=true",
            "--set", "impairments.jitter={distribution: constant, value: 1us}", "tests_scenario.yaml"]
    scenario_path = tmp_path / "tests_scenario.yaml"
    scenario_path.write_text("name: t\nworkload: {rule: data_sizes, data_sizes: [64KiB]}\n")
    args[-1] = str(scenario_path)
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "median trial" in printed and "beyond the median:" in printed and "slowest trial" in printed
    assert "p99 trial: needs 100" in printed
    with (out / "trials.csv").open() as handle:
        for row in csv.DictReader(handle):
            parts_us = sum(float(row[f"{part}_us"]) for part in PARTS)
            assert parts_us == pytest.approx(float(row["latency_us"]), abs=1e-6)
    links = list(csv.DictReader((out / "links.csv").open()))
    nic_up = next(row for row in links if row["link"] == "h0.nic0->switch")
    assert int(nic_up["bytes"]) == 3 * 3 * 64 * 2**10 and int(nic_up["peak_flows"]) == 1
    assert 0 < float(nic_up["utilization"]) <= 1 and float(nic_up["busy_us"]) > 0
    flows = list(csv.DictReader((out / "flows.csv").open()))
    assert len(flows) == 3 * 12 and all(float(row["rate_Gbps"]) <= 100 for row in flows)
    assert (out / "breakdown.png").stat().st_size > 0
    causes = json.loads((out / "summary.json").read_text())["tail_causes"]
    assert causes["median"]["parts_us"]["jitter"] > 0  # constant jitter: in the median trial, not beyond it
    assert causes["max"]["cause"] == "none" and causes["max"]["beyond_median_us"] == 0
