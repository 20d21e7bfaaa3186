"""SHARP's aggregation trees: the in-network reduction of CollNet and of NVLS across hosts.

A slice's heads (one GPU per host) send their host's sum of a piece into the reducing switch their NICs
are cabled to and get the total back (one copy per port, as SHARP multicasts). Where the hosts sit on
G > 1 leaves, the slice's tree has two levels: each leaf reduces its hosts' heads and sends the sum once
to a root above them all, which reduces the leaves' sums and returns the total to each leaf, which
returns it to its heads; a leaf's uplink to a root carries each slice rooted there once each way (S / L
of an all-reduce of S over L GPUs per host), whatever the hosts behind the leaf. A slice's tree takes
``tree_relays`` relay ranks from its first: its G leaves, then the root (one relay when G = 1);
``fabricsim.fabric.relays`` says which switches they are.
"""

from __future__ import annotations

from collections.abc import Sequence

from fabricsim.collectives.dag import DagBuilder

NET_UP, NET_DOWN = 0, 1  # channels of the connections into and out of the switches


def checked_leaves(leaves: Sequence[int], hosts: int) -> tuple[int, ...]:
    """Each host's leaf (0, 1, ... ; one leaf of all if ``leaves`` is empty); ValueError if they are not that."""
    leaves = tuple(leaves) or (0,) * hosts
    if len(leaves) != hosts or sorted(set(leaves)) != list(range(max(leaves) + 1)):
        raise ValueError(f"SHARP's trees need each host's leaf, numbered from 0, got {leaves} for {hosts} hosts")
    return leaves


def tree_relays(leaves: Sequence[int]) -> int:
    """The relays of one slice's tree: its leaves and a root above them, or the one switch of one leaf."""
    count = max(leaves) + 1
    return 1 if count == 1 else count + 1


def reduce_in_network(dag: DagBuilder, heads: Sequence[int], leaves: Sequence[int], first: int, piece: int) -> None:
    """Reduce ``piece`` from every host's head (``heads[h]`` on leaf ``leaves[h]``) up the slice's tree of
    relays from rank ``first``, and return the total to every head."""
    count = max(leaves) + 1
    for head, leaf in zip(heads, leaves):
        dag.send(head, first + leaf, piece, reduce=True, channel=NET_UP)
    if count > 1:  # each leaf's sum to the root, the total back to the leaves
        for leaf in range(count):
            dag.send(first + leaf, first + count, piece, reduce=True, channel=NET_UP)
        for leaf in range(count):
            dag.send(first + count, first + leaf, piece, channel=NET_DOWN)
    for head, leaf in zip(heads, leaves):
        dag.send(first + leaf, head, piece, channel=NET_DOWN)
