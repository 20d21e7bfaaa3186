"""Usage: how the fabric was used over a run, as KCCB's port and flow metrics.

links.csv, one row per directed link, summed over every trial: bytes carried (collective flows),
busy time (at least one flow on it), peak concurrent flows, and utilization = bits carried /
(capacity x total simulated time). flows.csv (``output.flows``), one row per flow: its transfer,
queue pair, ranks, bytes, links, start, last bit sent, time stalled and mean rate.
"""

from __future__ import annotations

from fabricsim.fabric.graph import Fabric

LINK_COLUMNS = ("link", "kind", "capacity_Gbps", "bytes", "busy_us", "peak_flows", "utilization")
FLOW_COLUMNS = ("trial", "transfer", "qp", "src", "dst", "bytes", "links", "start_us", "sent_us", "stalled_us",
                "rate_Gbps")


def link_rows(fabric: Fabric, records: list) -> list[list]:
    usages = [record.link_usage for record in records if record.link_usage is not None]
    total_ps = sum(record.latency_ps for record in records if record.link_usage is not None)
    rows = []
    for link in fabric.links:
        carried_bits = sum(usage.carried_bits[link.index] for usage in usages)
        busy_ps = sum(usage.busy_ps[link.index] for usage in usages)
        peak = max((usage.peak_flows[link.index] for usage in usages), default=0)
        utilization = carried_bits / (link.bandwidth_bps * total_ps / 1e12) if total_ps else 0.0
        rows.append([link.name, link.kind, f"{link.bandwidth_bps / 1e9:.6g}", round(carried_bits / 8),
                     f"{busy_ps / 1e6:.6f}", peak, f"{utilization:.6f}"])
    return rows


def flow_rows(fabric: Fabric, records: list) -> list[list]:
    rows = []
    for record in records:
        for flow in record.flows:
            duration_ps = flow.sent_ps - flow.start_ps
            rate_gbps = flow.nbytes * 8 / duration_ps * 1e3 if duration_ps else 0.0
            rows.append([record.trial, flow.transfer, flow.qp, flow.src, flow.dst, flow.nbytes,
                         ";".join(fabric.links[i].name for i in flow.links if i < len(fabric.links)),
                         f"{flow.start_ps / 1e6:.6f}", f"{flow.sent_ps / 1e6:.6f}", f"{flow.stalled_ps / 1e6:.6f}",
                         f"{rate_gbps:.6g}"])
    return rows
