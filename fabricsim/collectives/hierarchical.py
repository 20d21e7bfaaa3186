"""Hierarchical (two-level) all-reduce for hosts of several GPUs.

With p = H hosts x L GPUs per host (rank = host L + local index), the buffer's p pieces are cut into
L parts of H consecutive pieces. (1) Inside each host, a ring reduce-scatter over the fast intra-host
links leaves local rank l with part l summed over its host, one message per ring step. (2) Across
hosts, the L ranks of equal local index (one NIC rail each) run a ring all-reduce of their part, H
pieces in ``chunks`` chunks. (3) Inside each host, a ring all-gather spreads the parts. Uncontended,
with one chunk: 2(L - 1)(alpha_in + S/L beta_in) + 2(H - 1)(alpha_out + S/(L H) beta_out).
"""

from __future__ import annotations

from fabricsim.collectives.dag import DagBuilder
from fabricsim.collectives.ring import ring_phase
from fabricsim.collectives.schedule import Schedule


def hierarchical_all_reduce(ranks: int, size_bytes: int, chunks: int = 1, local_ranks: int = 1) -> Schedule:
    if local_ranks < 1 or ranks % local_ranks:
        raise ValueError(f"hierarchical all-reduce needs the {ranks} ranks to be whole hosts of "
                         f"{local_ranks} GPUs each")
    hosts = ranks // local_ranks
    dag = DagBuilder("all_reduce", ranks, size_bytes, chunks)
    part_pieces = hosts * chunks
    parts = [[(local * part_pieces, part_pieces)] for local in range(local_ranks)]
    host_members = [[host * local_ranks + local for local in range(local_ranks)] for host in range(hosts)]
    for members in host_members:
        ring_phase(dag, members, parts, lag=1, reduce=True)
    for local in range(local_ranks):
        rail = [host * local_ranks + local for host in range(hosts)]
        pieces = [[((local * hosts + host) * chunks + j, 1) for j in range(chunks)] for host in range(hosts)]
        ring_phase(dag, rail, pieces, lag=1, reduce=True)
        ring_phase(dag, rail, pieces, lag=0, reduce=False)
    for members in host_members:
        ring_phase(dag, members, parts, lag=0, reduce=False)
    return dag.schedule("hierarchical")
