"""Ring collectives: every rank sends only to its successor (r + 1) mod p, for p - 1 steps per phase.

All-gather step s: rank r forwards piece (r - s) mod p, so every piece travels once around the ring.
Reduce-scatter step s: rank r adds its copy of piece (r - s - 1) mod p into rank r + 1's, so rank r
ends owning the fully reduced piece r. All-reduce is reduce-scatter then all-gather, each piece
starting its all-gather as soon as its own reduction is complete (no global barrier).

A transfer of chunk j waits for the arrival of that chunk at its sender in the previous step and,
since a rank's channel sends in order (as NCCL's proxy does), for the sender's previous transfer to
be sent. Uncontended, with T = S/(p c) beta the time of one chunk, a p-rank all-gather in c chunks
takes (p - 2) max(T + alpha, c T) + c T + alpha: (p - 1)(alpha + S/p beta) with one chunk (Thakur,
Rabenseifner & Gropp, IJHPCA 19(1), 2005), and down to (p - 1) S/p beta + alpha once the chunks are
enough to hide the latency. All-reduce is the same with 2(p - 1) steps. Piece and chunk ids follow ``fabricsim.collectives.verify``.
"""

from __future__ import annotations

from fabricsim.collectives.verify import piece_layout
from fabricsim.schedule import Schedule, Transfer


def ring_all_gather(ranks: int, size_bytes: int, chunks: int = 1) -> Schedule:
    """Ring all-gather of an S = ``size_bytes`` output; each rank contributes piece r (S/p bytes)."""
    transfers: list[Transfer] = []
    _ring_phase(transfers, {}, {}, ranks, size_bytes, chunks, lag=0, reduce=False)
    return Schedule("all_gather", "ring", ranks, size_bytes, tuple(transfers))


def ring_reduce_scatter(ranks: int, size_bytes: int, chunks: int = 1) -> Schedule:
    """Ring reduce-scatter of an S = ``size_bytes`` input; rank r ends with reduced piece r."""
    transfers: list[Transfer] = []
    _ring_phase(transfers, {}, {}, ranks, size_bytes, chunks, lag=1, reduce=True)
    return Schedule("reduce_scatter", "ring", ranks, size_bytes, tuple(transfers))


def ring_all_reduce(ranks: int, size_bytes: int, chunks: int = 1) -> Schedule:
    """Ring all-reduce of an S = ``size_bytes`` buffer: reduce-scatter, then all-gather per piece."""
    transfers: list[Transfer] = []
    arrivals: dict[tuple[int, int], int] = {}
    last_sent: dict[int, int] = {}
    _ring_phase(transfers, arrivals, last_sent, ranks, size_bytes, chunks, lag=1, reduce=True)
    _ring_phase(transfers, arrivals, last_sent, ranks, size_bytes, chunks, lag=0, reduce=False)
    return Schedule("all_reduce", "ring", ranks, size_bytes, tuple(transfers))


def _ring_phase(
    transfers: list[Transfer],
    arrivals: dict[tuple[int, int], int],
    last_sent: dict[int, int],
    ranks: int,
    size_bytes: int,
    chunks: int,
    lag: int,
    reduce: bool,
) -> None:
    """Append p - 1 ring steps in which rank r sends piece (r - s - lag) mod p at step s.

    ``arrivals`` maps (rank, piece id) to the transfer that last delivered that chunk to the rank; a
    send waits for it, which chains steps and, in an all-reduce, hands each piece from reduce-scatter
    to all-gather. ``last_sent`` maps a rank to its latest transfer, which its next one follows.
    """
    layout = piece_layout(ranks, size_bytes, chunks)
    for step in range(ranks - 1):
        for rank in range(ranks):
            owner = (rank - step - lag) % ranks
            for piece in range(owner * chunks, (owner + 1) * chunks):
                if piece not in layout:
                    break
                arrival = arrivals.get((rank, piece))
                after = () if arrival is None else (arrival,)
                successor = (rank + 1) % ranks
                previous = last_sent.get(rank)
                transfer = Transfer(len(transfers), rank, successor, layout[piece], after, piece, reduce,
                                    after_sent=() if previous is None else (previous,))
                transfers.append(transfer)
                arrivals[(transfer.dst, piece)] = transfer.id
                last_sent[rank] = transfer.id
