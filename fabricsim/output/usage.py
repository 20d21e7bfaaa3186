"""Usage: how the fabric was used over a run, as KCCB's port and flow metrics.

links.csv, one row per directed link, summed over every trial as the trials arrive: bytes carried
(collective flows), busy time (at least one flow on it), peak concurrent flows, and utilization =
bits carried / (capacity x total simulated time). flows.csv (``output.flows``), one row per flow:
its transfer, queue pair, ranks, bytes, links, start, last bit sent, time stalled and mean rate.
"""

from __future__ import annotations

from fabricsim.fabric.graph import Fabric, Link
from fabricsim.units import PS_PER_S, PS_PER_US

LINK_COLUMNS = ("link", "kind", "capacity_Gbps", "bytes", "busy_us", "peak_flows", "utilization")
FLOW_COLUMNS = ("trial", "transfer", "qp", "src", "dst", "bytes", "links", "start_us", "sent_us", "stalled_us",
                "rate_Gbps")


class LinkTotals:
    """links.csv folded in trial by trial: per link of the fabric, bits carried and busy time summed over
    the trials, the peak of concurrent flows, and the simulated time those trials took."""

    def __init__(self, fabric: Fabric) -> None:
        self.fabric = fabric
        self.trials = 0
        self.total_ps = 0
        self.carried_bits = [0] * len(fabric.links)
        self.busy_ps = [0] * len(fabric.links)
        self.peak_flows = [0] * len(fabric.links)

    def add(self, usage, latency_ps: int) -> None:
        """One trial's engine.flows.LinkUsage, and its latency."""
        self.trials += 1
        self.total_ps += latency_ps
        for link in self.fabric.links:
            self.carried_bits[link.index] += usage.carried_bits[link.index]
            self.busy_ps[link.index] += usage.busy_ps[link.index]
            self.peak_flows[link.index] = max(self.peak_flows[link.index], usage.peak_flows[link.index])

    def utilization(self, link: Link) -> float:
        """Bits carried over what the link could carry in the total simulated time."""
        return self.carried_bits[link.index] / (link.bandwidth_bps * self.total_ps / PS_PER_S) if self.total_ps else 0.0

    def rows(self) -> list[list]:
        return [[link.name, link.kind, f"{link.bandwidth_bps / 1e9:.6g}", round(self.carried_bits[link.index] / 8),
                 f"{self.busy_ps[link.index] / PS_PER_US:.6f}", self.peak_flows[link.index],
                 f"{self.utilization(link):.6f}"] for link in self.fabric.links]

    def busiest(self) -> dict:
        """summary.json's ``bottleneck``: the link of highest utilization (the first such in link order)."""
        link = max(self.fabric.links, key=self.utilization)
        return {"link": link.name, "kind": link.kind, "capacity_Gbps": link.bandwidth_bps / 1e9,
                "utilization": self.utilization(link)}


def flow_rows(fabric: Fabric, record) -> list[list]:
    """flows.csv rows of one trial record."""
    rows = []
    for flow in record.flows:
        rows.append([record.trial, flow.transfer, flow.qp, flow.src, flow.dst, flow.nbytes,
                     ";".join(fabric.links[i].name for i in flow.links if i < len(fabric.links)),
                     f"{flow.start_ps / PS_PER_US:.6f}", f"{flow.sent_ps / PS_PER_US:.6f}", f"{flow.stalled_ps / PS_PER_US:.6f}",
                     f"{flow.rate_Gbps:.6g}"])
    return rows
