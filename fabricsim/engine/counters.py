"""Port counters of the packet model, per trial and port, and the rows of their table ``ports.csv``.

What a switch or NIC would report per port: packets and bytes sent, pause frames received and the
time spent paused, ECN marks, drops (buffer overflow) and random losses on arrival, and for the
ports where queue pairs start, the CNPs, NACKs and timeouts their senders got and the packets they
resent. Queue depth percentiles are of the egress queue as each arriving packet found it. On a
host's PCIe link, pauses are the NIC's backpressure on its GPU (its egress is paused or full).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Sequence

import numpy as np

from fabricsim.records import PortCounters
from fabricsim.units import PS_PER_US

QUEUE_PERCENTILES = (50, 99)


def queue_depths(samples: Sequence[int]) -> tuple[float, float, int]:
    """(p50, p99, max) of the queue depths seen by arriving packets; zeros for a port nothing queued at."""
    if not len(samples):
        return 0.0, 0.0, 0
    depths = np.asarray(samples)
    p50, p99 = np.percentile(depths, QUEUE_PERCENTILES)
    return float(p50), float(p99), int(depths.max())


_FIELDS = tuple(field.name for field in fields(PortCounters))


PORT_COLUMNS = ("trial",) + tuple(name.replace("_ps", "_us") for name in _FIELDS)


def port_rows(record) -> list[list]:
    """ports.csv rows of one trial record: each port that carried traffic or lost some; times in us."""
    rows = []
    for port in record.ports:
        if port.tx_packets or port.drops or port.losses:
            row = [getattr(port, name) for name in _FIELDS]
            row[_FIELDS.index("paused_ps")] = f"{port.paused_ps / PS_PER_US:.6f}"
            rows.append([record.trial, *row])
    return rows
