"""Ring collectives: every rank sends only to its successor (r + 1) mod p, for p - 1 steps per phase.

All-gather step s: rank r forwards piece (r - s) mod p, so every piece travels once around the ring.
Reduce-scatter step s: rank r adds its copy of piece (r - s - 1) mod p into rank r + 1's, so rank r
ends owning the fully reduced piece r. All-reduce is reduce-scatter then all-gather, each piece
starting its all-gather as soon as its own reduction is complete (no global barrier).

A transfer of chunk j waits for the arrival of that chunk at its sender in the previous step and, to
pipeline chunks on the sender's channel, for the sender's chunk j - 1 of the same step. Uncontended,
an all-gather therefore takes (p - 1)(alpha + S/p beta) with one chunk (Thakur, Rabenseifner & Gropp,
IJHPCA 19(1), 2005). Piece and chunk ids follow ``fabricsim.collectives.verify``.
"""

from __future__ import annotations

from fabricsim.collectives.verify import piece_layout
from fabricsim.schedule import Schedule, Transfer


def ring_all_gather(ranks: int, size_bytes: int, chunks: int = 1) -> Schedule:
    """Ring all-gather of an S = ``size_bytes`` output; each rank contributes piece r (S/p bytes)."""
    transfers: list[Transfer] = []
    _ring_phase(transfers, {}, ranks, size_bytes, chunks, lag=0, reduce=False)
    return Schedule("all_gather", "ring", ranks, size_bytes, tuple(transfers))


def ring_reduce_scatter(ranks: int, size_bytes: int, chunks: int = 1) -> Schedule:
    """Ring reduce-scatter of an S = ``size_bytes`` input; rank r ends with reduced piece r."""
    transfers: list[Transfer] = []
    _ring_phase(transfers, {}, ranks, size_bytes, chunks, lag=1, reduce=True)
    return Schedule("reduce_scatter", "ring", ranks, size_bytes, tuple(transfers))


def ring_all_reduce(ranks: int, size_bytes: int, chunks: int = 1) -> Schedule:
    """Ring all-reduce of an S = ``size_bytes`` buffer: reduce-scatter, then all-gather per piece."""
    transfers: list[Transfer] = []
    arrivals: dict[tuple[int, int], int] = {}
    _ring_phase(transfers, arrivals, ranks, size_bytes, chunks, lag=1, reduce=True)
    _ring_phase(transfers, arrivals, ranks, size_bytes, chunks, lag=0, reduce=False)
    return Schedule("all_reduce", "ring", ranks, size_bytes, tuple(transfers))


def _ring_phase(
    transfers: list[Transfer],
    arrivals: dict[tuple[int, int], int],
    ranks: int,
    size_bytes: int,
    chunks: int,
    lag: int,
    reduce: bool,
) -> None:
    """Append p - 1 ring steps in which rank r sends piece (r - s - lag) mod p at step s.

    ``arrivals`` maps (rank, piece id) to the transfer that last delivered that chunk to the rank; a
    send waits for it, which chains steps and, in an all-reduce, hands each piece from reduce-scatter
    to all-gather.
    """
    layout = piece_layout(ranks, size_bytes, chunks)
    for step in range(ranks - 1):
        for rank in range(ranks):
            owner = (rank - step - lag) % ranks
            previous_chunk: tuple[int, ...] = ()
            for piece in range(owner * chunks, (owner + 1) * chunks):
                if piece not in layout:
                    break
                arrival = arrivals.get((rank, piece))
                after = (() if arrival is None else (arrival,)) + previous_chunk
                transfer = Transfer(len(transfers), rank, (rank + 1) % ranks, layout[piece], after, piece, reduce)
                transfers.append(transfer)
                arrivals[(transfer.dst, piece)] = transfer.id
                previous_chunk = (transfer.id,)
