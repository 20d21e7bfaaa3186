"""Packet mode against the flow model and the alpha-beta formulas where nothing contends.

Both models count the RoCE header the same way (the flow model's RoCE links carry the payload rate
line x MTU / (MTU + header)), so full packets take exactly the flow model's time and only a last,
partial packet pays a whole header: the issue asks for agreement within 1%.
"""

import pytest

from fabricsim.config import load_scenario
from fabricsim.runner.simulation import Simulation
from tests.conftest import SCENARIOS, make_scenario


def latency_ps(model: str, **sections) -> int:
    fabric = {"model": model, **sections.pop("fabric")}
    (record,) = Simulation(make_scenario(fabric=fabric, **sections)).run()
    assert not record.failed
    return record.latency_ps


def both(**sections) -> tuple[int, int]:
    return latency_ps("flow", **{**sections, "fabric": dict(sections["fabric"])}), latency_ps("packet", **sections)


@pytest.mark.parametrize("op", ["all_gather", "reduce_scatter", "all_reduce"])
@pytest.mark.parametrize("topology", ["single_switch", "direct_ring"])
@pytest.mark.parametrize("size", ["3KiB", "256KiB"])
def test_uncontended_ring_agrees_with_the_flow_model(op, topology, size):
    flow_ps, packet_ps = both(fabric={"topology": topology, "hosts": 4, "nic": "roce_100g"},
                              collective={"op": op, "algorithm": "ring"},
                              workload={"rule": "data_sizes", "data_sizes": [size]})
    assert abs(packet_ps - flow_ps) <= 0.01 * flow_ps, (flow_ps, packet_ps)


@pytest.mark.parametrize("chunks", [1, 4])
def test_without_header_overhead_the_models_agree_to_the_picosecond(chunks):
    """Whole packets, no header: cut-through forwarding gives route latency + bytes / bottleneck exactly."""
    flow_ps, packet_ps = both(fabric={"hosts": 4, "nic": {"bandwidth": "100Gbps", "mtu": 4096, "header": 0}},
                              collective={"op": "all_gather", "chunks": chunks},
                              workload={"rule": "data_sizes", "data_sizes": ["512KiB"]})
    assert abs(packet_ps - flow_ps) <= 16, (flow_ps, packet_ps)


def test_inside_a_host_over_nvlink():
    flow_ps, packet_ps = both(fabric={"hosts": 1, "gpus_per_host": 4, "nic": "roce_100g"},
                              workload={"rule": "data_sizes", "data_sizes": ["1MiB"]})
    assert abs(packet_ps - flow_ps) <= 0.01 * flow_ps, (flow_ps, packet_ps)


def test_a_trial_of_several_collectives_agrees_too():
    """One all-reduce per layer: the packet loop follows SimPy's clock across calls. (workload.device,
    which adds compute between calls, is megatron's only.)"""
    overrides = ("impairments.loss.rate=0", "impairments.jitter={distribution: none}", "workload.trials=1")
    path = SCENARIOS / "dp4_layerwise_allreduce.yaml"
    (flow,) = Simulation(load_scenario(path, overrides)).run()
    (packet,) = Simulation(load_scenario(path, overrides + ("fabric.model=packet",))).run()
    assert len(flow.per_rank_bytes) > 1
    assert abs(packet.latency_ps - flow.latency_ps) <= 0.01 * flow.latency_ps, (flow.latency_ps, packet.latency_ps)
