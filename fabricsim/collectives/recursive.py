"""Recursive halving and doubling: log2 p steps in which rank pairs at distance 2^k exchange.

Every step is a matched sendrecv: a send starts once both its ranks have finished their previous step
(their last send delivered, their last receipt in). A rank count p that is not a power of two is folded first to the
largest power of two p' below it (Thakur, Rabenseifner & Gropp, IJHPCA 19(1), 2005): for i < r =
p - p', rank 2i hands its data to rank 2i + 1, which stands for both in the p'-rank algorithm as
virtual rank i (virtual rank v >= r is rank v + r), and hands the result back at the end.

- reduce-scatter, recursive halving: each step sends the half of the current range the partner keeps,
  reduced; lg p' alpha + (p' - 1)/p' S beta, plus the fold (alpha + S beta) and the hand-back of
  rank 2i's piece (alpha + S/p beta) when p is not a power of two.
- all-gather, recursive doubling: each step sends everything gathered so far; lg p' alpha +
  (p' - 1)/p' S beta for a power of two.
- all-reduce, Rabenseifner: halving reduce-scatter then doubling all-gather over p' equal groups of
  chunks (the pieces are cut into p'/gcd(p, p') chunks so that p' groups are equal);
  2 lg p' alpha + 2 (p' - 1)/p' S beta, plus 2 (alpha + S beta) to fold and unfold.
- all-reduce, recursive doubling: each step exchanges the whole buffer; lg p' (alpha + S beta), plus
  2 (alpha + S beta) to fold and unfold.
"""

from __future__ import annotations

from math import gcd

from fabricsim.collectives.dag import DagBuilder
from fabricsim.collectives.schedule import Schedule

Group = tuple[int, int]  # [first piece id, end piece id) of one virtual rank


def recursive_halving_reduce_scatter(ranks: int, size_bytes: int) -> Schedule:
    steps = Rendezvous(DagBuilder("reduce_scatter", ranks, size_bytes))
    virtual, extra = fold(ranks)
    steps.fold_in(extra)
    halving(steps, virtual, _owned_groups(ranks, extra))
    steps.step([(2 * i + 1, 2 * i, 2 * i, 1, False) for i in range(extra)])
    return steps.dag.schedule("recursive_halving")


def recursive_doubling_all_gather(ranks: int, size_bytes: int) -> Schedule:
    steps = Rendezvous(DagBuilder("all_gather", ranks, size_bytes))
    virtual, extra = fold(ranks)
    steps.step([(2 * i, 2 * i + 1, 2 * i, 1, False) for i in range(extra)])
    doubling(steps, virtual, _owned_groups(ranks, extra))
    steps.step([send for i in range(extra) for send in
                ((2 * i + 1, 2 * i, 0, 2 * i, False), (2 * i + 1, 2 * i, 2 * i + 1, ranks - 2 * i - 1, False))])
    return steps.dag.schedule("recursive_doubling")


def halving_doubling_all_reduce(ranks: int, size_bytes: int) -> Schedule:
    virtual, extra = fold(ranks)
    steps = Rendezvous(DagBuilder("all_reduce", ranks, size_bytes, len(virtual) // gcd(ranks, len(virtual))))
    per_group = steps.dag.piece_count // len(virtual)
    groups = [(v * per_group, (v + 1) * per_group) for v in range(len(virtual))]
    steps.fold_in(extra)
    halving(steps, virtual, groups)
    doubling(steps, virtual, groups)
    steps.fold_out(extra)
    return steps.dag.schedule("halving_doubling")


def recursive_doubling_all_reduce(ranks: int, size_bytes: int) -> Schedule:
    virtual, extra = fold(ranks)
    steps = Rendezvous(DagBuilder("all_reduce", ranks, size_bytes))
    steps.fold_in(extra)
    distance = 1
    while distance < len(virtual):
        steps.step([(rank, virtual[v ^ distance], 0, ranks, True) for v, rank in enumerate(virtual)])
        distance *= 2
    steps.fold_out(extra)
    return steps.dag.schedule("recursive_doubling")


def fold(ranks: int) -> tuple[list[int], int]:
    """The real rank of each of the p' virtual ranks, and r = p - p' (the folded pairs)."""
    extra = ranks - (1 << (ranks.bit_length() - 1))
    return [2 * v + 1 if v < extra else v + extra for v in range(ranks - extra)], extra


Send = tuple[int, int, int, int, bool]  # (src, dst, first piece id, piece count, reduce)


class Rendezvous:
    """Steps of sendrecv exchanges: a send waits until both its ranks have finished their previous
    step (their last send delivered and their last receipt in), as matched MPI calls do."""

    def __init__(self, dag: DagBuilder) -> None:
        self.dag = dag
        self._done: dict[int, tuple[int, ...]] = {}

    def step(self, sends: list[Send]) -> None:
        finished: dict[int, list[int]] = {}
        with self.dag.simultaneous():
            for src, dst, first_piece, pieces, reduce in sends:
                after = self._done.get(src, ()) + self._done.get(dst, ())
                transfer_id = self.dag.send(src, dst, first_piece, pieces, reduce, after)
                if transfer_id is not None:
                    finished.setdefault(src, []).append(transfer_id)
                    finished.setdefault(dst, []).append(transfer_id)
        self._done.update((rank, tuple(ids)) for rank, ids in finished.items())

    def fold_in(self, extra: int) -> None:
        """Rank 2i adds its whole buffer into rank 2i + 1's, for i < r."""
        self.step([(2 * i, 2 * i + 1, 0, self.dag.piece_count, True) for i in range(extra)])

    def fold_out(self, extra: int) -> None:
        """Rank 2i + 1 hands the whole result back to rank 2i."""
        self.step([(2 * i + 1, 2 * i, 0, self.dag.piece_count, False) for i in range(extra)])


def halving(steps: Rendezvous, virtual: list[int], groups: list[Group]) -> None:
    """Recursive halving: virtual rank v ends with the pieces of group v reduced over all ranks."""
    distance = len(virtual) // 2
    while distance:
        sends = []
        for v, rank in enumerate(virtual):
            partner = v ^ distance
            low = partner - partner % distance  # the partner keeps groups low..low + distance - 1
            first, end = groups[low][0], groups[low + distance - 1][1]
            sends.append((rank, virtual[partner], first, end - first, True))
        steps.step(sends)
        distance //= 2


def doubling(steps: Rendezvous, virtual: list[int], groups: list[Group]) -> None:
    """Recursive doubling: virtual rank v, holding group v, ends holding every group."""
    distance = 1
    while distance < len(virtual):
        sends = []
        for v, rank in enumerate(virtual):
            low = v - v % distance  # v holds groups low..low + distance - 1
            first, end = groups[low][0], groups[low + distance - 1][1]
            sends.append((rank, virtual[v ^ distance], first, end - first, False))
        steps.step(sends)
        distance *= 2


def _owned_groups(ranks: int, extra: int) -> list[Group]:
    """Virtual rank v's own pieces: those of ranks 2v and 2v + 1 when folded, else of rank v + r."""
    return [(2 * v, 2 * v + 2) if v < extra else (v + extra, v + extra + 1) for v in range(ranks - extra)]
