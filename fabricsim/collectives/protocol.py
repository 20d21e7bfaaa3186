"""Per-message software latency: the fixed costs NCCL's own cost model charges, by protocol.

NCCL (src/graph/tuning.cc, 2.30; reference/formulas.md) prices a collective as a base latency per
call plus a hardware latency per ring step that depends on the protocol (Simple, LL, LL128) and on
the transport of the step (NVLink, PCI, network). Here every transfer is a message that waits the
per-hop latency of its route's slowest transport before it starts, and the transfers a schedule
starts with wait the base latency too, so a ring all-reduce pays base + 2(p - 1) x hop on its
critical path, as in NCCL's model. Trees take NCCL's Tree base latency, PAT, NVLS, NVLSTree and
CollNet their own (the tuner's table: 0 for NVLS and CollNet); the per-hop latencies are NCCL's Ring
ones for every algorithm, paid once per message (the pieces of one aggregated message, and the chunks
streamed on one connection, ``Schedule.continues``, pay it once). Protocol ``none`` adds nothing.
Only latency is modelled: LL's and LL128's lower bandwidth efficiency is left to the fabric's
effective bandwidths.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from fabricsim.collectives.schedule import Schedule
from fabricsim.collectives.tuner import BASE_LATENCY_US, HW_LATENCY_US, NCCL_ALGORITHM_OF, PROTOCOLS
from fabricsim.fabric.graph import Link
from fabricsim.fabric.routing import Route
from fabricsim.units import PS_PER_US

TREE_ALGORITHMS = ("binomial_tree", "double_binary_tree", "tree")


def base_latency_ps(protocol: str, algorithm: str) -> int:
    """NCCL's base latency per call (tuning.cc baseLatencies, the tuner's table): that of the NCCL
    algorithm the schedule is (CollNet's and NVLS's 0), Tree's for the other trees, Ring's for the rest."""
    if protocol == "none":
        return 0
    family = "tree" if algorithm in TREE_ALGORITHMS else NCCL_ALGORITHM_OF.get(algorithm, "ring")
    return round(BASE_LATENCY_US[family][PROTOCOLS.index(protocol)] * PS_PER_US)


def hop_latency_ps(protocol: str, link_kinds: set[str]) -> int:
    """The per-message latency of a route made of links of these kinds: NCCL's Ring hwLat of its
    slowest transport (network, else PCI, else NVLink)."""
    if protocol == "none":
        return 0
    transport = "net" if "roce" in link_kinds else "pci" if "pcie" in link_kinds else "nvlink"
    return round(HW_LATENCY_US[transport]["ring"][PROTOCOLS.index(protocol)] * PS_PER_US)


def software_latency_ps(schedule: Schedule, protocol: str, route_of: Callable[[int, int], Route],
                        links: Sequence[Link]) -> np.ndarray:
    """Each transfer's software latency (int64, by transfer id): what it waits before it starts."""
    transfers = schedule.transfers
    if protocol == "none" or not len(transfers):
        return np.zeros(len(transfers), dtype=np.int64)
    base_ps = base_latency_ps(protocol, schedule.algorithm)
    pairs, pair_of = transfers.pairs
    hop_ps = np.array([hop_latency_ps(protocol, {links[i].kind for i in route_of(int(src), int(dst)).links})
                       for src, dst in pairs], dtype=np.int64)
    delays_ps = hop_ps[pair_of] + np.where(transfers.is_root, base_ps, 0)
    delays_ps[list(schedule.continues)] = 0  # one message's later pieces (never a root)
    return delays_ps
