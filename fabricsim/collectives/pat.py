"""PAT (NCCL's Parallel Aggregated Trees, 2.23+): all-gather and reduce-scatter with one GPU per host.

Every block X has its own binomial tree over the ranks at distance s = X - rank (reduce-scatter;
all-gather: rank - X) from it. Reduce-scatter: the rank at distance s adds what its children sent
(distances s + 2^k, 2^k below s's lowest set bit) to its own copy and sends the sum to the rank
2^lowbit(s) further on, at distance s - 2^lowbit(s); all-gather runs the same trees from the root
outwards. Each rank thus sends n - 1 pieces, on peers at distances of powers of two, for any n (NCCL
skips the distances a non-power-of-two n lacks).

What a rank sends goes in aggregated messages (src/include/collectives.h, PatRSAlgorithm and
PatAGAlgorithm): with D = 2^ceil(lg n) / A, the pieces whose distances agree modulo D (not 0) travel
together, then those that are multiples of D one dimension at a time. A, the aggregation, doubles from 1
while twice the aggregated message still fits one chunk and A < n/2 (at full aggregation a power-of-two
n sends lg n messages, one per power of two). NCCL's chunk is 512 KiB, halved down to 64 KiB while 32
(all-gather) or 16 (reduce-scatter) of them exceed the collective's bytes (enqueue.cc); a block of more
than one chunk runs as several chunks, one after the other. A message waits for every piece it carries
(its pieces go as back-to-back transfers, one message: the later ones pay no per-message latency,
``Schedule.continues``), and a rank sends its messages one after the other, in NCCL's order:
reduce-scatter from the farthest residue down to the highest dimension; all-gather the reverse. Chunks
here split each block evenly (``fabricsim.collectives.verify``) where NCCL cuts whole chunks and a
remainder, and PAT runs on one channel (NCCL may spread a large call over several, each aggregating its
own share).
"""

from __future__ import annotations

from dataclasses import dataclass

from fabricsim.collectives.dag import DagBuilder
from fabricsim.collectives.schedule import Schedule

CHUNK_BYTES = 512 * 1024  # Simple's buffer (4 MiB) over NCCL_STEPS (8)
MIN_CHUNK_BYTES = 64 * 1024
CHUNKS_PER_SIZE = {"all_gather": 32, "reduce_scatter": 16}  # enqueue.cc: halve while this many exceed S


@dataclass(frozen=True, slots=True)
class Plan:
    """How NCCL runs PAT for one size: chunks per block and the messages a rank sends per chunk."""

    chunks: int
    aggregation: int
    groups: tuple[tuple[int, ...], ...]  # each message's distances, in the order a rank sends them
    feeders: tuple[tuple[int, ...], ...]  # per message, the earlier messages whose pieces it forwards


def _lowbit(distance: int) -> int:
    return (distance & -distance).bit_length() - 1


def plan(op: str, ranks: int, size_bytes: int) -> Plan:
    """NCCL's chunking and aggregation of PAT ``op`` over ``ranks`` ranks for an S = ``size_bytes`` buffer."""
    chunk_bytes = CHUNK_BYTES
    while chunk_bytes * CHUNKS_PER_SIZE[op] > size_bytes and chunk_bytes > MIN_CHUNK_BYTES:
        chunk_bytes //= 2
    block_bytes = -(-size_bytes // ranks)
    chunks = max(1, -(-block_bytes // chunk_bytes))
    aggregation = 1
    while (block_bytes == 0 or chunk_bytes // (block_bytes * aggregation) >= 2) and aggregation < ranks // 2:
        aggregation *= 2
    dims = (ranks - 1).bit_length()
    residues = (1 << dims) // aggregation
    groups = [tuple(range(residue, ranks, residues)) for residue in range(residues - 1, 0, -1)]
    groups += [tuple(s for s in range(1, ranks) if s % residues == 0 and _lowbit(s) == dim)
               for dim in range(residues.bit_length() - 1, dims)]
    groups = [group for group in groups if group]
    if op == "all_gather":
        groups.reverse()
    where = {s: index for index, group in enumerate(groups) for s in group}
    feeders = []
    for group in groups:
        if op == "reduce_scatter":  # the children: s + 2^k below s's lowest set bit
            fed = {where[s + (1 << k)] for s in group for k in range(_lowbit(s)) if s + (1 << k) < ranks}
        else:  # the parent: s less its lowest set bit
            fed = {where[s - (1 << _lowbit(s))] for s in group if s != 1 << _lowbit(s)}
        feeders.append(tuple(sorted(fed)))
    return Plan(chunks, aggregation, tuple(groups), tuple(feeders))


def pat(op: str):
    """The builder of ``op`` (all_gather or reduce_scatter) by PAT."""

    def build(ranks: int, size_bytes: int) -> Schedule:
        steps = plan(op, ranks, size_bytes)
        dag = DagBuilder(op, ranks, size_bytes, steps.chunks)
        reduce = op == "reduce_scatter"
        message_end: dict[int, int] = {}  # transfer -> the last transfer of its message
        continues: list[int] = []  # every transfer of a message but its first
        for chunk in range(steps.chunks):
            for group in steps.groups:
                for rank in range(ranks):
                    # reduce-scatter: the block of the rank s ahead; all-gather: the sender's own or
                    # received block, for the rank s - 2^lowbit(s) ahead of the receiver
                    pieces = [((rank + s) % ranks if reduce else (rank - s + (1 << _lowbit(s))) % ranks)
                              * steps.chunks + chunk for s in group]
                    dst = (rank + (1 << _lowbit(group[0]))) % ranks  # one peer per message
                    ready = tuple(message_end[tid] for tid in dag.receipts(rank, pieces))
                    sent = []
                    for piece in pieces:
                        tid = dag.send(rank, dst, piece, reduce=reduce, after=ready,
                                       after_sent=(dag.last_sent_by(rank),))
                        sent += [] if tid is None else [tid]
                    message_end.update((tid, sent[-1]) for tid in sent)
                    continues += sent[1:]
        return dag.schedule("pat", tuple(continues))

    return build
