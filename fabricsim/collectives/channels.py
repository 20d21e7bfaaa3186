"""NCCL's channels: the rings of ``ring`` and the trees of ``tree``, from where the ranks sit.

NCCL's topology search (src/graph/search.cc) gives each channel a ring that enters every node
through one NIC, follows NVLink through the node's GPUs and leaves it from a GPU near the same NIC
(same PCIe switch), so that the channel stays on that NIC's rail (NCCL_CROSS_NIC off); the channels
take the node's NICs in turn, so every NIC carries the same share. Here channel k enters each host at
its k-th GPU (by rank, cyclically), whose own NIC is the channel's, visits the host's other GPUs in
rank order from there, and leaves from a GPU near that NIC when the host has one (else from the
GPU just before the entry, which reaches the NIC through PXN). Hosts follow each other in the order
of their first rank. On one host the ring is the ranks in order. The default count is one channel
per GPU of the largest host (one per NIC), one on a single host; where NCCL doubles its channels
(``fabricsim.collectives.tuner.duplicated_channels``), the runner asks for twice as many, and the
second half repeats the first on the same paths (the same NICs, their own connections).

NCCL's Tree (src/graph/trees.cc, connect.cc) chains each node's GPUs below the node's head and joins
the heads in a double binary tree. Here channel k's chain starts at the host's k-th GPU (whose NIC
carries the channel across hosts) and runs in rank order, and the heads form the first binary tree
of the hosts for even k, the second for odd k (``binary_tree_parents``). The default is the ring's
count, at least two (one per binary tree).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fabricsim.collectives.ring import Orders
from fabricsim.collectives.trees import Trees, binary_tree_parents
from fabricsim.fabric.graph import ranks_by_host


@dataclass(frozen=True, slots=True)
class Place:
    """Where a rank sits: its host, its own NIC's rail (local index), the rails of its nearest NICs and
    its host's leaf (hosts whose NICs share switches share one: SHARP's first level)."""

    host: int
    rail: int
    near_rails: tuple[int, ...]
    leaf: int = 0


@dataclass(frozen=True, slots=True)
class Layout:
    """The channels of the ranks of one call: ``ring``'s rings and ``tree``'s trees, the hosts the
    ranks span (each host's ranks, hosts in the order of their first rank) and each host's leaf
    (numbered in the order of their first host)."""

    orders: Orders
    trees: Trees
    groups: tuple[tuple[int, ...], ...]
    leaves: tuple[int, ...] = ()

    @property
    def hosts(self) -> int:
        return len(self.groups)


def channel_layout(places: Sequence[Place], channels: int = 0) -> Layout:
    hosts = _hosts(places)
    numbers: dict[int, int] = {}
    leaves = tuple(numbers.setdefault(places[members[0]].leaf, len(numbers)) for members in hosts)
    return Layout(ring_orders(places, channels), tree_parents(places, channels),
                  tuple(tuple(members) for members in hosts), leaves)


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


def tree_parents(places: Sequence[Place], channels: int = 0) -> Trees:
    """Each channel's tree over the ranks (``channels`` of them, 0 for the default)."""
    channels = channels or max(2, default_channels(places))
    hosts = _hosts(places)
    trees = []
    for channel in range(channels):
        heads = binary_tree_parents(len(hosts), channel % 2 == 1) if len(hosts) > 1 else [None]
        parents: list[int | None] = [None] * len(places)
        chains = []
        for members in hosts:
            start = channel % len(members)
            chains.append(members[start:] + members[:start])
        for chain, head_parent in zip(chains, heads):
            parents[chain[0]] = None if head_parent is None else chains[head_parent][0]
            for above, rank in zip(chain, chain[1:]):
                parents[rank] = above
        trees.append(tuple(parents))
    return tuple(trees)


def _hosts(places: Sequence[Place]) -> list[list[int]]:
    """The ranks of each host, hosts in the order of their first rank, ranks in order."""
    return list(ranks_by_host(place.host for place in places).values())


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
