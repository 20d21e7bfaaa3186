"""Tree and chain collectives: broadcast and reduce rooted at ``root``, and NCCL's double binary tree.

Ranks are renumbered relative to the root, rel = (rank - root) mod p.
- binomial tree broadcast: in round k every rel < 2^k that holds the buffer sends it to rel + 2^k;
  a sender's rounds follow each other, so it takes ceil(lg p)(alpha + S beta).
- binomial tree reduce: the mirror image; rel with lowest set bit 2^k adds its subtree's sum into
  rel - 2^k in round k, and a parent takes its children's sums in round order; ceil(lg p)(alpha + S beta).
- ring (pipelined chain) broadcast and reduce: the buffer goes root -> rel 1 -> ... -> rel p - 1 (reduce:
  the other way, adding) as ``chunks`` segments of S/c, each hop forwarding segment j once it has it
  and its previous segment is on the wire: (p - 2)(alpha + S/c beta) + S beta + alpha.
- double binary tree all-reduce (Sanders, Speck & Traeff, Parallel Computing 35(12), 2009, as NCCL
  builds it in src/graph/trees.cc): two binary trees in which most ranks that are inner nodes in one
  are leaves in the other (the second mirrors the first, or shifts it by one for odd p). Each tree
  reduces half the buffer to its root and broadcasts it back, pipelined in ``chunks`` segments; about
  2 S beta + O(alpha lg p) once the chunks are many.
"""

from __future__ import annotations

from fabricsim.collectives.dag import DagBuilder
from fabricsim.collectives.schedule import Schedule

Trees = tuple[tuple[int | None, ...], ...]  # each channel's tree: every rank's parent, None at the root


def binomial_broadcast(ranks: int, size_bytes: int, root: int = 0) -> Schedule:
    dag = DagBuilder("broadcast", ranks, size_bytes, root=root)
    distance = 1
    while distance < ranks:
        for rel in range(min(distance, ranks - distance)):
            sender = (rel + root) % ranks
            dag.send(sender, (rel + distance + root) % ranks, 0, dag.piece_count,
                     after=(dag.last_sent_by(sender),))
        distance *= 2
    return dag.schedule("binomial_tree")


def binomial_reduce(ranks: int, size_bytes: int, root: int = 0) -> Schedule:
    dag = DagBuilder("reduce", ranks, size_bytes, root=root)
    last_receipt: dict[int, int | None] = {}
    distance = 1
    while distance < ranks:
        for rel in range(distance, ranks, 2 * distance):
            parent = (rel - distance + root) % ranks
            last_receipt[parent] = dag.send((rel + root) % ranks, parent, 0, dag.piece_count, reduce=True,
                                            after=(last_receipt.get(parent),))
        distance *= 2
    return dag.schedule("binomial_tree")


def chain_broadcast(ranks: int, size_bytes: int, chunks: int = 1, root: int = 0) -> Schedule:
    dag = DagBuilder("broadcast", ranks, size_bytes, chunks, root)
    for segment in range(chunks):
        for rel in range(ranks - 1):
            dag.send((rel + root) % ranks, (rel + 1 + root) % ranks, segment * ranks, ranks)
    return dag.schedule("ring")


def chain_reduce(ranks: int, size_bytes: int, chunks: int = 1, root: int = 0) -> Schedule:
    dag = DagBuilder("reduce", ranks, size_bytes, chunks, root)
    for segment in range(chunks):
        for rel in range(ranks - 1, 0, -1):
            dag.send((rel + root) % ranks, (rel - 1 + root) % ranks, segment * ranks, ranks, reduce=True)
    return dag.schedule("ring")


def double_binary_tree_all_reduce(ranks: int, size_bytes: int, chunks: int = 1) -> Schedule:
    trees = tuple(tuple(binary_tree_parents(ranks, mirrored)) for mirrored in (False, True))
    return tree_all_reduce(ranks, size_bytes, chunks, trees, "double_binary_tree")


def tree_all_reduce(ranks: int, size_bytes: int, chunks: int = 1, trees: Trees | None = None,
                    name: str = "tree") -> Schedule:
    """All-reduce over spanning trees at once, one per channel (each rank's parent, None at the root),
    each on its share of the buffer: its ``chunks`` segments are reduced up to the root and broadcast
    back down, pipelined. NCCL's Tree (``fabricsim.collectives.channels.tree_parents``): a chain
    inside each host below the host's head, the heads in a double binary tree; the double binary
    tree over the ranks when ``trees`` is None."""
    if trees is None:
        return double_binary_tree_all_reduce(ranks, size_bytes, chunks)
    if any(len(parents) != ranks for parents in trees):
        raise ValueError(f"each tree must give a parent for each of the {ranks} ranks")
    dag = DagBuilder("all_reduce", ranks, size_bytes, len(trees) * chunks)
    orders = [top_down(list(parents)) for parents in trees]
    for segment in range(chunks):
        for tree, (parents, order) in enumerate(zip(trees, orders)):
            first_piece = (tree * chunks + segment) * ranks
            for rank in reversed(order):
                if parents[rank] is not None:
                    dag.send(rank, parents[rank], first_piece, ranks, reduce=True, channel=tree)
            for rank in order:
                if parents[rank] is not None:
                    dag.send(parents[rank], rank, first_piece, ranks, channel=tree)
    return dag.schedule(name)


def binary_tree_parents(ranks: int, second: bool = False) -> list[int | None]:
    """Each rank's parent in NCCL's first binary tree (ncclGetBtree, root 0), or in its second one:
    mirrored (rank -> p - 1 - rank) for even p, shifted by one for odd p (ncclGetDtree)."""
    if not second:
        return [_btree_parent(rank, ranks) for rank in range(ranks)]
    if ranks % 2:
        relabel, unlabel = (lambda r: (r - 1) % ranks), (lambda r: (r + 1) % ranks)
    else:
        relabel = unlabel = (lambda r: ranks - 1 - r)
    parents = [_btree_parent(relabel(rank), ranks) for rank in range(ranks)]
    return [None if parent is None else unlabel(parent) for parent in parents]


def _btree_parent(rank: int, ranks: int) -> int | None:
    if rank == 0:
        return None
    bit = rank & -rank
    parent = (rank ^ bit) | (bit << 1)
    return parent if parent < ranks else rank ^ bit


def top_down(parents: list[int | None]) -> list[int]:
    """The ranks ordered so that every parent comes before its children."""
    depth = {}
    for rank in range(len(parents)):
        chain, node = [], rank
        while node is not None and node not in depth:
            chain.append(node)
            node = parents[node]
        base = -1 if node is None else depth[node]
        for offset, member in enumerate(reversed(chain), start=1):
            depth[member] = base + offset
    return sorted(range(len(parents)), key=depth.__getitem__)
