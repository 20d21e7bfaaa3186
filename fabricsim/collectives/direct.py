"""Direct collectives: every rank sends straight to the ranks that need its data, all at once.

- gather: every rank but the root sends its piece to the root; the root's link carries p - 1 pieces,
  alpha + (p - 1)/p S beta (S = the gathered output).
- all-to-all: rank s sends block s p + d to every rank d at once; each rank's link carries p - 1
  blocks out and p - 1 in, alpha + (p - 1)/p S beta (S = one rank's buffer).
- all-to-all, PXN (NCCL's PCI x NVLink): with hosts of L GPUs (rank = host L + local index), a block
  for another host goes first over NVLink to the sender's host peer on the destination's rail (same
  local index), which sends it over its own NIC; inter-host traffic then never leaves its rail.
- send/recv: the root sends its whole buffer to rank root + 1 in one message; alpha + S beta.
"""

from __future__ import annotations

from fabricsim.collectives.dag import DagBuilder
from fabricsim.collectives.schedule import Schedule


def direct_gather(ranks: int, size_bytes: int, root: int = 0) -> Schedule:
    dag = DagBuilder("gather", ranks, size_bytes, root=root)
    for rank in range(ranks):
        if rank != root:
            dag.send(rank, root, rank)
    return dag.schedule("direct")


def direct_all_to_all(ranks: int, size_bytes: int) -> Schedule:
    dag = DagBuilder("all_to_all", ranks, size_bytes)
    for offset in range(1, ranks):
        for src in range(ranks):
            dst = (src + offset) % ranks
            dag.send(src, dst, src * ranks + dst)
    return dag.schedule("direct")


def pxn_all_to_all(ranks: int, size_bytes: int, local_ranks: int = 1) -> Schedule:
    if local_ranks < 1 or ranks % local_ranks:
        raise ValueError(f"PXN all-to-all needs the {ranks} ranks to be whole hosts of {local_ranks} GPUs each")
    dag = DagBuilder("all_to_all", ranks, size_bytes)
    for offset in range(1, ranks):
        for src in range(ranks):
            dst = (src + offset) % ranks
            relay = src - src % local_ranks + dst % local_ranks  # on src's host, on dst's rail
            if relay in (src, dst):
                dag.send(src, dst, src * ranks + dst)
            else:
                dag.send(src, relay, src * ranks + dst, channel=1)
                dag.send(relay, dst, src * ranks + dst)
    return dag.schedule("pxn")


def direct_send_recv(ranks: int, size_bytes: int, root: int = 0) -> Schedule:
    dag = DagBuilder("send_recv", ranks, size_bytes, root=root)
    dag.send(root, (root + 1) % ranks, 0, dag.piece_count)
    return dag.schedule("direct")
