"""NVLS (NVLink SHARP, H100 and later NVSwitches): the switch reduces and multicasts, on one host.

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

Pulls and returns run on one channel of each connection, stores and multicasts on another, each in
chunk order, so that chunk c + 1 is pulled while chunk c is multicast. A block is cut into NCCL's NVLS
chunks of 128 KiB (NCCL_NVLS_CHUNKSIZE), at most as many as keep the schedule to about
``MAX_TRANSFERS`` transfers (2 p transfers per chunk of each block).
"""

from __future__ import annotations

from fabricsim.collectives.dag import DagBuilder
from fabricsim.schedule import Schedule

CHUNK_BYTES = 128 * 1024  # NCCL_NVLS_CHUNKSIZE's default
MAX_TRANSFERS = 40_000
PULL, STORE = 0, 1  # the channels: pull and return, store and multicast


def chunks_for(ranks: int, size_bytes: int) -> int:
    """Chunks per block: NCCL's NVLS chunk size, within the schedule's transfer budget (at least 2)."""
    block_bytes = -(-size_bytes // ranks)
    return max(1, min(-(-block_bytes // CHUNK_BYTES), max(2, MAX_TRANSFERS // (2 * ranks * ranks))))


def nvls(op: str):
    """The builder of ``op`` (all_reduce, reduce_scatter or all_gather) by NVLS on one host."""
    reduces, multicasts = op in ("all_reduce", "reduce_scatter"), op in ("all_reduce", "all_gather")

    def build(ranks: int, size_bytes: int) -> Schedule:
        chunks = chunks_for(ranks, size_bytes)
        dag, switch = DagBuilder(op, ranks, size_bytes, chunks), ranks
        for chunk in range(chunks):
            for head in range(ranks):
                piece = head * chunks + chunk
                others = [rank for rank in range(ranks) if rank != head]
                if reduces:
                    for rank in others:
                        dag.send(rank, switch, piece, reduce=True, channel=PULL)
                    dag.send(switch, head, piece, reduce=True, channel=PULL)
                if multicasts:
                    dag.send(head, switch, piece, channel=STORE)
                    for rank in others:
                        dag.send(switch, rank, piece, channel=STORE)
        return dag.schedule("nvls", relays=1)

    return build
