"""CollNet (NCCL's CollNetDirect and CollNetChain): all-reduce reduced in the network's switches (SHARP).

Each GPU of a host is the head of a slice of S / L (L GPUs per host: the blocks of its local index on
every host), and the slice's heads meet at one switch that reduces (a relay, ``Schedule.relays``:
rank ``ranks + j`` for slice j, the switch the heads' NICs share, ``fabric.clos.sharp``). Inside each
host the slice is first reduced into its head, then the head sends it once into the switch, the
switch returns the total to every head (one copy per port, as SHARP multicasts), and the head
gives it back to its host mates (src/device/all_reduce.h). Over several leaves the switches are
SHARP's two-level aggregation tree (``fabricsim.collectives.sharp``). Inside hosts:
- CollNetDirect: every GPU sends each head its share of the slice directly over NVLink (a
  reduce-scatter), and the head sends the total to each of them directly;
- CollNetChain: the slice is reduced along a chain of the host's GPUs ending at the head (the others
  in rank order from the one after it), and the total goes back down the chain.
Each NIC carries S / L each way; NVLink ports about 2 (L - 1) / L x S. Blocks are cut in chunks,
CollNetDirect's as NVLS's (``fabricsim.collectives.nvls.chunks_for``), CollNetChain's as NCCL cuts
its chain's (``chain_chunks``), a connection's chunks one stream. Each slice is
one of NCCL's channels (its own connections, up and down apart, as NCCL's chain reduces up and
broadcasts down in two thread groups at once), so every hop of a slice's chain forwards its chunks in
the same order and the chain pipelines: the all-reduce takes the larger of 2 (L - 1) / L x S over an
NVLink port and S / L over a NIC, plus the fill of one chain.
"""

from __future__ import annotations

from collections.abc import Sequence

from fabricsim.collectives.dag import DagBuilder
from fabricsim.collectives.nvls import chunks_for
from fabricsim.collectives.schedule import Schedule
from fabricsim.collectives.sharp import checked_leaves, reduce_in_network, tree_relays

UP, DOWN = 2, 3  # channels of slice 0 inside a host (slice j's: UP + 2 j, DOWN + 2 j), past SHARP's
CHAIN_CHUNK_BYTES = 256 * 1024  # enqueue.cc: CollNetChain's chunk, at most 256 KiB
CHAIN_HALVINGS = ((64, 128 * 1024), (8, 64 * 1024), (1, 32 * 1024))  # (loops per depth, down to)


def chain_chunks(ranks: int, size_bytes: int, per_host: int) -> int:
    """CollNetChain's chunks per block: NCCL's chain chunk (enqueue.cc, calcCollChunking) for a channel
    of S / L (L GPUs per host: the chain's depth, one channel per slice), 256 KiB halved while the
    channel would loop fewer than 64 L times over it (down to 128 KiB), 8 L times (64 KiB), L times
    (32 KiB); within the transfer budget as NVLS's chunks."""
    chunk = CHAIN_CHUNK_BYTES
    for loops, floor in CHAIN_HALVINGS:
        while size_bytes // (per_host * chunk) < loops * per_host and chunk > floor:
            chunk //= 2
    return chunks_for(ranks, size_bytes, chunk)


def collnet(chain: bool):
    """The all-reduce builder of CollNetChain (``chain``) or CollNetDirect."""

    def build(ranks: int, size_bytes: int, groups: Sequence[Sequence[int]] | None = None,
              leaves: Sequence[int] = ()) -> Schedule:
        """``groups``: each host's ranks (one rank per host if None); ``leaves``: each host's leaf
        (0, 1, ... in the order of their first host; one leaf of all if empty)."""
        groups = [tuple(group) for group in (groups or [(rank,) for rank in range(ranks)])]
        if len({len(group) for group in groups}) != 1 or len(groups) < 2:
            raise ValueError("collnet needs 2 hosts or more, with the same number of GPUs on each")
        leaves = checked_leaves(leaves, len(groups))
        tree = tree_relays(leaves)
        chunks = chain_chunks(ranks, size_bytes, len(groups[0])) if chain else chunks_for(ranks, size_bytes)
        dag = DagBuilder("all_reduce", ranks, size_bytes, chunks)
        local = {rank: index for group in groups for index, rank in enumerate(group)}
        for chunk in range(chunks):
            for block in range(ranks):
                piece, index = block * chunks + chunk, local[block]
                paths = [_path(group, index, chain) for group in groups]
                up, down = UP + 2 * index, DOWN + 2 * index
                for path in paths:  # into the head, the last of each path
                    for src, dst in path:
                        dag.send(src, dst, piece, reduce=True, channel=up)
                reduce_in_network(dag, [group[index] for group in groups], leaves, ranks + index * tree, piece)
                for path in paths:  # and back out
                    for src, dst in reversed(path):
                        dag.send(dst, src, piece, channel=down)
        relays = len(groups[0]) * tree
        return dag.schedule("collnet_chain" if chain else "collnet_direct", dag.streamed(), relays=relays)

    return build


def _path(group: tuple[int, ...], index: int, chain: bool) -> list[tuple[int, int]]:
    """The sends that reduce a host's slice into its head ``group[index]``: a chain from the GPU after
    it, or every other GPU straight to it."""
    head = group[index]
    if chain:
        order = group[index + 1:] + group[:index + 1]
        return list(zip(order, order[1:]))
    return [(rank, head) for rank in group if rank != head]
