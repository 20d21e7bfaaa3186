"""Packets across switches: PFC pauses spread hop by hop and block victim flows behind a paused port
(head-of-line blocking); an oversubscribed leaf-spine still agrees with the flow model."""

import numpy as np
import simpy

from fabricsim.collectives.schedule import Schedule, Transfer
from fabricsim.engine.impairments import TransferImpairments, Transport, rto_ps
from fabricsim.engine.packet_executor import PacketScheduleRun
from fabricsim.engine.packet_network import PacketNetwork
from fabricsim.runner.simulation import Simulation
from tests.conftest import make_scenario

LEAF_SPINE = {"topology": "leaf_spine", "hosts": 8, "nic": "roce_100g",
              "clos": {"hosts_per_leaf": 4, "spines": 1, "oversubscription": 1}}


def lossless(pfc: dict | None = None) -> dict:
    return {"dcqcn": {"enabled": False}, "pfc": {"xoff": "100KB", **(pfc or {})}}


def paused(record) -> dict[str, int]:
    return {port.link: port.pause_frames for port in record.ports if port.pause_frames}


def test_pause_spreads_hop_by_hop_back_to_the_senders():
    """Gather into h0 (leaf0): leaf0 pauses the spine, the spine pauses leaf1, leaf1 pauses its NICs."""
    scenario = make_scenario(fabric={**LEAF_SPINE, "model": "packet", "packet": lossless()},
                             collective={"op": "gather", "algorithm": "direct"},
                             workload={"rule": "data_sizes", "data_sizes": ["256KiB"]})
    (record,) = Simulation(scenario).run()
    pauses = paused(record)
    assert not record.failed and sum(port.drops for port in record.ports) == 0
    assert pauses.get("spine0->leaf0") and pauses.get("leaf1->spine0")
    assert all(pauses.get(f"h{host}.nic0->leaf1") for host in range(4, 8))


def run_transfers(pairs: list[tuple[int, int]], packet: dict, nbytes: int) -> list[int]:
    """Each (src, dst) host pair sends ``nbytes`` at once on LEAF_SPINE; each transfer's delivery time."""
    scenario = make_scenario(fabric={**LEAF_SPINE, "model": "packet", "packet": packet})
    simulation = Simulation(scenario)
    network = PacketNetwork(simulation.fabric, scenario.fabric.nic, scenario.fabric.packet, 0.0,
                            np.random.default_rng(0))
    transfers = tuple(Transfer(i, src, dst, nbytes) for i, (src, dst) in enumerate(pairs))
    zeros = np.zeros(len(pairs), dtype=np.int64)
    run = PacketScheduleRun(simpy.Environment(), network, Schedule("custom", "direct", 8, nbytes, transfers),
                            simulation.route, TransferImpairments(zeros, zeros, zeros, zeros.astype(bool)),
                            Transport(scenario.fabric.nic.mtu_bytes, rto_ps(20), 7))
    run.done.env.run(until=run.done)
    return [qp.delivered_ps for qp in network.queue_pairs]


def test_a_victim_flow_is_blocked_behind_a_paused_port():
    """h4 -> h5 stays inside leaf1, but shares h4's NIC with h4's share of an incast into h0: when
    leaf1 pauses that NIC, the victim stops too."""
    incast = [(src, 0) for src in range(1, 8)]
    victim = (4, 5)
    alone_ps = run_transfers([victim], lossless(), 2**20)[0]
    with_pfc_ps = run_transfers(incast + [victim], lossless(), 2**20)[-1]
    without_pfc_ps = run_transfers(incast + [victim], {"dcqcn": {"enabled": False}, "pfc": {"enabled": False}},
                                   2**20)[-1]
    # without PFC the victim shares h4's NIC round-robin with one incast flow: about twice alone
    assert without_pfc_ps < 2.2 * alone_ps
    assert with_pfc_ps > 1.5 * without_pfc_ps


def test_an_oversubscribed_leaf_spine_agrees_with_the_flow_model():
    """Cut-through across 50G uplinks: a packet reaches the next switch before its tail has left."""
    sections = dict(collective={"op": "all_reduce", "algorithm": "ring"},
                    workload={"rule": "data_sizes", "data_sizes": ["1MiB"]})
    fabric = {**LEAF_SPINE, "clos": {"hosts_per_leaf": 4, "spines": 2, "oversubscription": 2, "ecmp": "spray"}}
    (flow,) = Simulation(make_scenario(fabric=fabric, **sections)).run()
    (packet,) = Simulation(make_scenario(fabric={**fabric, "model": "packet"}, **sections)).run()
    assert not packet.failed and sum(port.timeouts for port in packet.ports) == 0
    assert abs(packet.latency_ps - flow.latency_ps) <= 0.02 * flow.latency_ps, (packet.latency_ps, flow.latency_ps)


def test_a_cyclic_pause_dependency_deadlocks_and_fails_the_trial():
    """All-to-all on a 6-host direct ring: NICs forward for their neighbours, losslessly, and the pauses
    close a cycle round the ring (a PFC deadlock). The trial ends failed instead of hanging."""
    sections = dict(fabric={"model": "packet", "topology": "direct_ring", "hosts": 6, "nic": "roce_100g"},
                    collective={"op": "all_to_all", "algorithm": "direct"},
                    workload={"rule": "data_sizes", "data_sizes": ["4MiB"]})
    (record,) = Simulation(make_scenario(**sections)).run()
    assert record.failed
    ring = {port.link for port in record.ports if port.kind == "roce" and port.pause_frames}
    assert len(ring) >= 6
