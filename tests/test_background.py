"""Background traffic against max-min: load L on a link leaves the collective (1 - L) of it (L <= 1/2)."""

import pytest
import simpy

from fabricsim.config import ScenarioError
from fabricsim.engine.trial_fabric import TrialFabric
from fabricsim.runner.simulation import Simulation, fabric_rng
from tests.conftest import make_scenario

NBYTES = 2**20


def _two_ranks(background):
    scenario = make_scenario(fabric={"hosts": 2}, impairments={"background": background},
                             workload={"rule": "data_sizes", "data_sizes": [NBYTES]})
    simulation = Simulation(scenario)
    (record,) = simulation.run()
    return simulation, record


@pytest.mark.parametrize("load, share", [(0.1, 0.9), (0.3, 0.7), (0.5, 0.5), (0.8, 0.5)])
def test_load_leaves_the_collective_its_max_min_share(load, share):
    """A 2-rank ring all-gather: 0 -> 1 crosses the loaded link, 1 -> 0 does not and ends first."""
    simulation, record = _two_ranks({"load": load, "links": ["h0.nic0->switch"]})
    route = simulation.route(0, 1)
    alone_ps = NBYTES * 8e12 / route.bottleneck_bps
    assert record.latency_ps == pytest.approx(route.latency_ps + alone_ps / share, abs=2)
    assert record.breakdown.contention_ps == pytest.approx(alone_ps / share - alone_ps, abs=2)
    assert record.breakdown.ideal_ps + record.breakdown.contention_ps == record.latency_ps


def test_no_load_is_no_background():
    _, loaded = _two_ranks({"load": 0.0, "links": ["h0.nic0->switch"]})
    _, clean = _two_ranks({})
    assert loaded.latency_ps == clean.latency_ps and loaded.breakdown.contention_ps == 0


def _background_links(scenario, trial):
    env = simpy.Environment()
    simulation = Simulation(scenario)
    trial_fabric = TrialFabric(env, scenario, simulation.fabric, simulation.router, fabric_rng(scenario.seed, trial))
    return sorted(simulation.fabric.links[link].name for link, flows in enumerate(trial_fabric.network.flows_on)
                  if link < len(simulation.fabric.links) and flows)


def test_a_fraction_of_hosts_is_drawn_per_trial():
    scenario = make_scenario(fabric={"hosts": 8}, impairments={"background": {"load": 0.2, "hosts_fraction": 0.25}})
    draws = [_background_links(scenario, trial) for trial in range(6)]
    for links in draws:
        hosts = {end.split(".")[0] for name in links for end in name.split("->") if end != "switch"}
        assert len(links) == 4 and len(hosts) == 2  # each chosen host's NIC uplink and downlink
    assert draws[0] == _background_links(scenario, 0)
    assert len({tuple(links) for links in draws}) > 1


def test_an_unknown_link_is_one_clear_line():
    with pytest.raises(ScenarioError, match=r"background.links: expected links of the fabric .*'h9.nic0->switch'"):
        Simulation(make_scenario(impairments={"background": {"load": 0.2, "links": ["h9.nic0->switch"]}}))
