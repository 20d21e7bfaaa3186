"""Incast N -> 1 on packets: PFC makes it lossless at line rate by pausing the senders hop by hop;
without PFC a shallow buffer overflows, and go-back-N and timeouts lengthen the tail."""

from fabricsim.runner.simulation import Simulation
from tests.conftest import make_scenario

SENDERS = 8


def incast(packet: dict, trials: int = 1, loss: dict | None = None):
    """SENDERS hosts gather 256 KiB each into host 0 through one switch; DCQCN off: PFC alone."""
    fabric = {"hosts": SENDERS + 1, "nic": "roce_100g",
              "packet": {"dcqcn": {"enabled": False}, **packet}}
    sections = dict(collective={"op": "gather", "algorithm": "direct"},
                    workload={"rule": "data_sizes", "data_sizes": ["256KiB"], "trials": trials},
                    impairments={"loss": loss or {"timeout_exponent": 6}})
    records = Simulation(make_scenario(fabric={**fabric, "model": "packet"}, **sections)).run()
    (flow,) = Simulation(make_scenario(fabric=fabric, **{**sections, "workload": {
        "rule": "data_sizes", "data_sizes": ["256KiB"]}})).run()
    return records, flow.latency_ps


def total(record, counter: str) -> int:
    return sum(getattr(port, counter) for port in record.ports)


def test_with_pfc_incast_is_lossless_paused_and_at_line_rate():
    (record,), flow_ps = incast({"pfc": {"xoff": "100KB"}})
    assert not record.failed
    assert total(record, "drops") == 0 and total(record, "retransmits") == 0
    senders = [port for port in record.ports if port.kind == "roce" and port.link.endswith("->switch")
               and not port.link.startswith("h0.")]
    assert len(senders) == SENDERS and all(port.pause_frames > 0 and port.paused_ps > 0 for port in senders)
    # the receiver's port never idles: the gather ends when line rate says it must (the flow model)
    assert abs(record.latency_ps - flow_ps) <= 0.001 * flow_ps, (record.latency_ps, flow_ps)


def test_pause_spreads_to_the_senders_queue_pairs():
    """Paused NIC egress ports fill the NIC, which holds back its GPU's PCIe port: the sender stops."""
    (record,), _ = incast({"pfc": {"xoff": "100KB"}})
    host_links = [port for port in record.ports if port.kind == "pcie" and port.link.endswith(".nic0")
                  and not port.link.startswith("h0.")]
    assert all(port.pause_frames > 0 for port in host_links)


def test_without_pfc_a_shallow_buffer_drops_and_the_tail_grows():
    lossless, _ = incast({"pfc": {"xoff": "100KB"}}, trials=2)
    lossy, _ = incast({"pfc": {"enabled": False}, "buffer": "300KB"}, trials=2)
    for record in lossy:
        assert not record.failed
        assert total(record, "drops") > 0 and total(record, "retransmits") > 0
        assert not any(port.pause_frames for port in record.ports if port.kind == "roce")
    assert min(r.latency_ps for r in lossy) > max(r.latency_ps for r in lossless)


def test_pfc_headroom_absorbs_what_is_in_flight():
    """Even a tiny XOFF drops nothing: the headroom covers the bytes sent before the pause lands."""
    (record,), _ = incast({"pfc": {"xoff": "8KB"}})
    assert total(record, "drops") == 0
    assert not record.failed


def test_a_deeper_buffer_drops_less():
    (shallow,), _ = incast({"pfc": {"enabled": False}, "buffer": "300KB"})
    (deep,), _ = incast({"pfc": {"enabled": False}, "buffer": "1MB"})
    assert total(deep, "drops") < total(shallow, "drops")
