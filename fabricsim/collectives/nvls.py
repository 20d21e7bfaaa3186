"""NVLS (NVLink SHARP, H100 and later NVSwitches): the switch reduces and multicasts.

The host's NVSwitch is a relay rank (``Schedule.relays``: rank ``ranks``, the fabric's ``nvls``
device behind the host's NVSwitch). As NCCL's NVLS kernels do (src/device/all_reduce.h, one node),
each rank is the head of its block: for every chunk of its block the switch pulls that chunk from the
other ranks and reduces it (``multimem.ld_reduce``), the head adds the sum to its own copy, stores the
result once into the switch (``multimem.st``), and the switch multicasts it to every other rank. So
each GPU's port carries S each way for an all-reduce of S bytes (about half a ring's 2 (p - 1) / p x S
at large p), and the busbw tends to 2 (p - 1) / p times the switch's rate per port (the head's own
share stays on the head: the published busbw of 8 and of 72 GPUs on NVLink5 agree, as this predicts
and a pull from every rank would not). Reduce-scatter is the pull and return alone, all-gather the
store and multicast alone: each moves (p - 1) / p x S through a port one way, busbw the switch's rate.

NVLS across hosts (all-reduce, where SHARP switches reduce in the network: NCCL runs it only with
CollNet): as NVLSTree below, but the heads of a slice send the switch's sum once into the network,
whose SHARP tree (``fabricsim.collectives.sharp``; relays ``ranks + hosts`` on, after the NVSwitches)
reduces it across hosts and returns the total to every head, which stores it for the multicast. Each
NIC carries S / L each way (L GPUs per host), as CollNet's.

NVLSTree (all-reduce across hosts, src/device/all_reduce.h): NVLS inside each host (its NVSwitch is
the relay ``ranks + h`` of host h, hosts in the order of their first rank), and each GPU the head of the
blocks of its local index on every host (a slice of S / L for L GPUs per host): after the switch's sum,
the heads of a slice on the hosts reduce it up a binary tree of the hosts to the root and send the total
back down (network, through each head's own NIC), then every head stores it into its switch for the
multicast. Chunks alternate between NCCL's two binary trees of the hosts (its double binary tree, one
per channel), so each head is interior in one and a leaf in the other.

Pulls and returns run on one channel of each connection, stores and multicasts on another, each in
chunk order, so that chunk c + 1 is pulled while chunk c is multicast; a connection's chunks are one
stream, paying the per-message software latency once (``Schedule.continues``). A block is cut into NCCL's NVLS
chunks of 128 KiB (NCCL_NVLS_CHUNKSIZE), at most as many as keep the schedule to about
``MAX_TRANSFERS`` transfers (about 2 p transfers per chunk of each block).
"""

from __future__ import annotations

from collections.abc import Sequence

from fabricsim.collectives.dag import DagBuilder
from fabricsim.collectives.trees import binary_tree_parents, top_down
from fabricsim.collectives.schedule import Schedule
from fabricsim.collectives.sharp import checked_leaves, reduce_in_network, tree_relays

CHUNK_BYTES = 128 * 1024  # NCCL_NVLS_CHUNKSIZE's default
MAX_TRANSFERS = 40_000
PULL, STORE, TREES = 0, 1, 2  # the channels: pull and return, store and multicast, then each tree's up and down


def chunks_for(ranks: int, size_bytes: int, chunk_bytes: int = CHUNK_BYTES) -> int:
    """Chunks per block: NCCL's chunk size (NVLS's unless given), within the schedule's transfer budget
    (at least 2)."""
    block_bytes = -(-size_bytes // ranks)
    return max(1, min(-(-block_bytes // chunk_bytes), max(2, MAX_TRANSFERS // (2 * ranks * ranks))))


def nvls(op: str):
    """The builder of ``op`` (all_reduce, reduce_scatter or all_gather) by NVLS on one host."""
    reduces, multicasts = op in ("all_reduce", "reduce_scatter"), op in ("all_reduce", "all_gather")

    def build(ranks: int, size_bytes: int) -> Schedule:
        chunks = chunks_for(ranks, size_bytes)
        dag, members = DagBuilder(op, ranks, size_bytes, chunks), range(ranks)
        for chunk in range(chunks):
            for head in range(ranks):
                piece = head * chunks + chunk
                if reduces:
                    _switch_sum(dag, members, ranks, head, piece)
                if multicasts:
                    _multicast(dag, members, ranks, head, piece)
        return dag.schedule("nvls", dag.streamed(), relays=1)

    return build


def nvls_all_reduce(ranks: int, size_bytes: int, groups: Sequence[Sequence[int]] | None = None,
                    leaves: Sequence[int] = ()) -> Schedule:
    """NVLS's all-reduce: on one host (``groups`` None or one), or across the hosts of ``groups`` with
    SHARP (``leaves``: each host's leaf, ``fabricsim.collectives.sharp``)."""
    groups = [tuple(group) for group in (groups or [range(ranks)])]
    if len(groups) == 1:
        return nvls("all_reduce")(ranks, size_bytes)
    if len({len(group) for group in groups}) != 1 or len(groups[0]) < 2:
        raise ValueError("nvls across hosts needs the same number of GPUs, 2 or more, on every host")
    leaves = checked_leaves(leaves, len(groups))
    chunks, hosts, tree = chunks_for(ranks, size_bytes), len(groups), tree_relays(leaves)
    dag = DagBuilder("all_reduce", ranks, size_bytes, chunks)
    local = {rank: index for group in groups for index, rank in enumerate(group)}
    for chunk in range(chunks):
        for block in range(ranks):
            piece, index = block * chunks + chunk, local[block]
            heads = [group[index] for group in groups]
            for host, group in enumerate(groups):
                _switch_sum(dag, group, ranks + host, heads[host], piece)
            reduce_in_network(dag, heads, leaves, ranks + hosts + index * tree, piece)
            for host, group in enumerate(groups):
                _multicast(dag, group, ranks + host, heads[host], piece)
    return dag.schedule("nvls", dag.streamed(), relays=hosts + len(groups[0]) * tree)


def nvls_tree_all_reduce(ranks: int, size_bytes: int, groups: Sequence[Sequence[int]] | None = None) -> Schedule:
    """NVLSTree's all-reduce over hosts of ``groups`` (each host's ranks; one host of all if None)."""
    groups = [tuple(group) for group in (groups or [range(ranks)])]
    if len({len(group) for group in groups}) != 1 or len(groups[0]) < 2:
        raise ValueError("nvls_tree needs the same number of GPUs, 2 or more, on every host")
    chunks = chunks_for(ranks, size_bytes)
    dag, hosts = DagBuilder("all_reduce", ranks, size_bytes, chunks), len(groups)
    local = {rank: index for group in groups for index, rank in enumerate(group)}
    trees = [binary_tree_parents(hosts, second) for second in (False, True)]
    orders = [top_down(parents) for parents in trees]
    for chunk in range(chunks):
        parents, order, up = trees[chunk % 2], orders[chunk % 2], TREES + 2 * (chunk % 2)
        for block in range(ranks):
            piece, index = block * chunks + chunk, local[block]
            heads = [group[index] for group in groups]
            for host, group in enumerate(groups):
                _switch_sum(dag, group, ranks + host, heads[host], piece)
            for host in reversed(order):  # children first: each head sends its subtree's sum up
                if parents[host] is not None:
                    dag.send(heads[host], heads[parents[host]], piece, reduce=True, channel=up)
            for host in order:  # the total back down
                if parents[host] is not None:
                    dag.send(heads[parents[host]], heads[host], piece, channel=up + 1)
            for host, group in enumerate(groups):
                _multicast(dag, group, ranks + host, heads[host], piece)
    return dag.schedule("nvls_tree", dag.streamed(), relays=hosts)


def _switch_sum(dag: DagBuilder, members: Sequence[int], switch: int, head: int, piece: int) -> None:
    """The switch pulls the piece from the head's host mates, reduces it, and the head adds the sum."""
    for rank in members:
        if rank != head:
            dag.send(rank, switch, piece, reduce=True, channel=PULL)
    dag.send(switch, head, piece, reduce=True, channel=PULL)


def _multicast(dag: DagBuilder, members: Sequence[int], switch: int, head: int, piece: int) -> None:
    """The head stores the piece once into the switch, which multicasts it to the head's host mates."""
    dag.send(head, switch, piece, channel=STORE)
    for rank in members:
        if rank != head:
            dag.send(switch, rank, piece, channel=STORE)
