"""Link failures against their closed forms: stalls, re-routing after detection, dead ends."""

import pytest

from fabricsim.config import ScenarioError
from fabricsim.runner.simulation import Simulation
from tests.conftest import make_scenario

NBYTES = 2**20


def _run(fabric, failure, op="all_gather", algorithm="ring", trials=1):
    scenario = make_scenario(fabric=fabric, impairments={"failures": [failure]},
                             collective={"op": op, "algorithm": algorithm},
                             workload={"rule": "data_sizes", "data_sizes": [NBYTES], "trials": trials})
    return Simulation(scenario).run()


def _clean_latency_ps(fabric, op="all_gather", algorithm="ring"):
    scenario = make_scenario(fabric=fabric, collective={"op": op, "algorithm": algorithm},
                             workload={"rule": "data_sizes", "data_sizes": [NBYTES]})
    return Simulation(scenario).run()[0].latency_ps


def test_a_failed_link_with_no_alternative_fails_the_trial():
    (record,) = _run({"hosts": 2}, {"cable": ["h1.nic0", "switch"], "detection_delay": "5us",
                                    "down_at": {"distribution": "constant", "value": "0us"}})
    assert record.failed and record.latency_ps == 5_000_000  # the fabric knows at 5 us: no path, none coming
    assert record.breakdown.failure_ps == record.latency_ps


@pytest.mark.parametrize("down_at_us", [0, 10, 50])
def test_a_link_down_for_an_interval_stalls_its_flows_for_exactly_that_long(down_at_us):
    """Both ring transfers cross h1's cable and are mid-flight (84 us at 100G) when it goes down."""
    fabric = {"hosts": 2}
    (record,) = _run(fabric, {"cable": ["h1.nic0", "switch"], "detection_delay": "5us", "down_for": "30us",
                              "down_at": {"distribution": "constant", "value": f"{down_at_us}us"}})
    assert not record.failed
    assert record.latency_ps == pytest.approx(_clean_latency_ps(fabric) + 30_000_000, abs=2)
    assert record.breakdown.failure_ps == pytest.approx(30_000_000, abs=2)
    assert sum((record.breakdown.ideal_ps, record.breakdown.contention_ps, record.breakdown.failure_ps)) == record.latency_ps


def test_flows_are_re_hashed_onto_the_other_spine_after_detection():
    """Two leaves of one host, two spines: a flow hashed onto the dead spine waits out the detection
    delay, then runs on the other spine at the same rate; a flow on the live one never notices."""
    fabric = {"topology": "leaf_spine", "hosts": 2, "clos": {"hosts_per_leaf": 1, "spines": 2}}
    records = _run(fabric, {"cable": ["leaf0", "spine0"], "detection_delay": "7us",
                            "down_at": {"distribution": "constant", "value": "0us"}},
                   op="send_recv", algorithm="direct", trials=24)
    clean_ps = _clean_latency_ps(fabric, op="send_recv", algorithm="direct")
    delays = {round((r.latency_ps - clean_ps) / 1e6) for r in records}
    assert delays == {0, 7} and not any(r.failed for r in records)
    for record in records:
        assert record.breakdown.failure_ps == pytest.approx(record.latency_ps - clean_ps, abs=2)


def test_flapping_repeats_the_outage():
    fabric = {"hosts": 2}
    (record,) = _run(fabric, {"cable": ["h0.nic0", "switch"], "detection_delay": "50us", "down_for": "4us",
                              "flaps": 3, "period": "20us", "down_at": {"distribution": "constant", "value": "1us"}})
    assert record.breakdown.failure_ps == pytest.approx(3 * 4_000_000, abs=4)
    assert record.latency_ps == pytest.approx(_clean_latency_ps(fabric) + 12_000_000, abs=4)


def test_flapping_needs_a_period_longer_than_the_outage():
    with pytest.raises(ScenarioError, match="impairments.failures.0: expected flapping"):
        make_scenario(impairments={"failures": [{"cable": ["h0.nic0", "switch"], "flaps": 2, "down_for": "5us",
                                                 "down_at": {"distribution": "constant", "value": "0us"}}]})


def test_an_unknown_cable_is_one_clear_line():
    with pytest.raises(ScenarioError, match=r"impairments.failures.0.cable: expected two cabled devices"):
        Simulation(make_scenario(impairments={"failures": [{"cable": ["h0.nic0", "spine7"],
                                                            "down_at": {"distribution": "constant", "value": "0us"}}]}))


def test_a_flow_cut_off_by_a_permanent_failure_fails_even_when_another_cable_returns():
    scenario = make_scenario(
        fabric={"hosts": 2},
        impairments={"failures": [
            {"cable": ["h1.nic0", "switch"], "detection_delay": "1us",
             "down_at": {"distribution": "constant", "value": "0us"}},
            {"cable": ["h0.nic0", "switch"], "detection_delay": "1us", "down_for": "20us",
             "down_at": {"distribution": "constant", "value": "0us"}}]},
        workload={"rule": "data_sizes", "data_sizes": [NBYTES]})
    (record,) = Simulation(scenario).run()
    assert record.failed and record.latency_ps == 20_000_000 and record.breakdown.failure_ps == record.latency_ps
