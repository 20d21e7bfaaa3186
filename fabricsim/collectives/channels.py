"""NCCL's channels: how many rings ``ring`` runs and the order of each, from where the ranks sit.

NCCL's topology search (src/graph/search.cc) gives each channel a ring that enters every node
through one NIC, follows NVLink through the node's GPUs and leaves it from a GPU near the same NIC
(same PCIe switch), so that the channel stays on that NIC's rail (NCCL_CROSS_NIC off); the channels
take the node's NICs in turn, so every NIC carries the same share. Here channel k enters each host at
its k-th GPU (by rank, cyclically), whose own NIC is the channel's, visits the host's other GPUs in
rank order from there, and leaves from a GPU near that NIC when the host has one (else from the
GPU just before the entry, which reaches the NIC through PXN). Hosts follow each other in the order
of their first rank. On one host the ring is the ranks in order. The default count is one channel
per GPU of the largest host (one per NIC), one on a single host; NCCL doubles its channels on
fast nodes, but a doubled channel shares its NIC, so the bandwidth is the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fabricsim.collectives.ring import Orders


@dataclass(frozen=True, slots=True)
class Place:
    """Where a rank sits: its host, its own NIC's rail (local index) and the rails of its nearest NICs."""

    host: int
    rail: int
    near_rails: tuple[int, ...]


def default_channels(places: Sequence[Place]) -> int:
    """One channel per GPU of the largest host when the ranks span hosts, else one."""
    hosts = _hosts(places)
    return max(len(members) for members in hosts) if len(hosts) > 1 else 1


def ring_orders(places: Sequence[Place], channels: int = 0) -> Orders:
    """Each channel's ring over the ranks (``channels`` of them, 0 for the default)."""
    channels = channels or default_channels(places)
    hosts = _hosts(places)
    if len(hosts) == 1:
        return (tuple(range(len(places))),) * channels
    return tuple(tuple(rank for members in hosts for rank in _inside(places, members, channel))
                 for channel in range(channels))


def _hosts(places: Sequence[Place]) -> list[list[int]]:
    """The ranks of each host, hosts in the order of their first rank, ranks in order."""
    by_host: dict[int, list[int]] = {}
    for rank, place in enumerate(places):
        by_host.setdefault(place.host, []).append(rank)
    return list(by_host.values())


def _inside(places: Sequence[Place], members: list[int], channel: int) -> list[int]:
    """Channel ``channel``'s path through one host: in at its entry GPU, out near the entry's NIC."""
    if len(members) == 1:
        return members
    start = channel % len(members)
    cyclic = members[start:] + members[:start]
    entry = cyclic[0]
    near = [rank for rank in cyclic[1:] if places[entry].rail in places[rank].near_rails]
    exit_rank = near[0] if near else cyclic[-1]
    return [rank for rank in cyclic if rank != exit_rank] + [exit_rank]
