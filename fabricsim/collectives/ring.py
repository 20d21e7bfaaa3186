"""Ring collectives: every rank sends only to its ring successor, for p - 1 steps per phase.

NCCL's Ring runs one ring per channel, each on its own share of every piece: ``orders`` gives each
channel's ring as a permutation of the ranks (``fabricsim.collectives.channels`` lays them out on a
fabric), and with one channel in rank order it is the single flat ring (``flat_ring``).

All-gather step s: rank r forwards piece (r - s) mod p, so every piece travels once around the ring.
Reduce-scatter step s: rank r adds its copy of piece (r - s - 1) mod p into rank r + 1's, so rank r
ends owning the fully reduced piece r. All-reduce is reduce-scatter then all-gather, each piece
starting its all-gather as soon as its own reduction is complete (no global barrier). The
bidirectional all-reduce runs two such rings at once in opposite directions, half the data each.

A transfer of chunk j waits for the arrival of that chunk at its sender in the previous step and,
since a rank's channel sends in order (as NCCL's proxy does), for the sender's previous transfer to
be sent. Uncontended, with T = S/(p c) beta the time of one chunk, a p-rank all-gather in c chunks
takes (p - 2) max(T + alpha, c T) + c T + alpha: (p - 1)(alpha + S/p beta) with one chunk (Thakur,
Rabenseifner & Gropp, IJHPCA 19(1), 2005), and down to (p - 1) S/p beta + alpha once the chunks are
enough to hide the latency. All-reduce is the same with 2(p - 1) steps. Piece and chunk ids follow
``fabricsim.collectives.verify``; the one-direction rings leave their chunk count to be inferred.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fabricsim.collectives.dag import DagBuilder
from fabricsim.collectives.schedule import Dependencies, Schedule, TransferTable
from fabricsim.collectives.verify import piece_layout

Segments = list[tuple[int, int]]  # (first piece id, piece count) of each message of one group


Orders = tuple[tuple[int, ...], ...]  # each channel's ring, as a permutation of the ranks


PHASES = {"all_gather": ((0, False),), "reduce_scatter": ((1, True),), "all_reduce": ((1, True), (0, False))}


def channel_ring(op: str) -> Callable[..., Schedule]:
    """NCCL's Ring for ``op`` (all-gather, reduce-scatter, or all-reduce: reduce-scatter, then
    all-gather per piece): ``(ranks, size_bytes, chunks, orders)``, one ring per channel's order,
    one ring in rank order when ``orders`` is None."""
    return lambda ranks, size_bytes, chunks=1, orders=None: _one_direction_ring(op, ranks, size_bytes, chunks,
                                                                                orders, "ring")


def flat_ring(op: str) -> Callable[..., Schedule]:
    """The single ring of ``op`` through ranks 0..p-1 in order: ``(ranks, size_bytes, chunks)``."""
    return lambda ranks, size_bytes, chunks=1: _one_direction_ring(op, ranks, size_bytes, chunks, None, "flat_ring")


def _one_direction_ring(op: str, ranks: int, size_bytes: int, chunks: int, orders: Orders | None,
                        name: str) -> Schedule:
    """The DAG that ``ring_phase`` builds for each (lag, reduce) phase in turn on each channel's ring
    at once, in closed form, one numpy array per field (a 1024-rank all-reduce has 2 M transfers).
    Block q's c-th share of chunks is channel c's (pieces q C c' + c c' + j for C channels of c'
    chunks). Transfers are numbered step by step, channel by channel, ring position by position,
    chunk by chunk, skipping empty chunks; chunk j of step g at position i waits for the same chunk's
    arrival at step g - 1 (from position i - 1: the same piece travels round the ring, across the
    phase boundary too) and for the previous transfer at position i to be sent (its connection)."""
    order = np.array(orders if orders else (tuple(range(ranks)),), dtype=np.int64)  # [channel, position]
    channels = len(order)
    if order.shape[1] != ranks or (np.sort(order, axis=1) != np.arange(ranks)).any():
        raise ValueError(f"each ring's order must be a permutation of the {ranks} ranks")
    layout = piece_layout(ranks, size_bytes, channels * chunks, op)
    phases = PHASES[op]
    piece_bytes = np.zeros(ranks * channels * chunks, dtype=np.int64)
    piece_bytes[list(layout)] = list(layout.values())
    steps = len(phases) * (ranks - 1)
    lag = np.repeat([phase_lag for phase_lag, _ in phases], ranks - 1)
    step_in_phase = np.arange(steps) % (ranks - 1)
    reduce = np.repeat([phase_reduce for _, phase_reduce in phases], ranks - 1)
    position = (np.arange(ranks)[None, :] - (step_in_phase + lag)[:, None]) % ranks  # [step, position]
    block = order[np.arange(channels)[None, :, None], position[:, None, :]]  # [step, channel, position]
    piece = ((block * channels + np.arange(channels)[None, :, None])[..., None] * chunks
             + np.arange(chunks))  # [step, channel, position, chunk]
    carried = piece_bytes[piece] > 0
    ids = np.where(carried, np.cumsum(carried).reshape(carried.shape) - 1, -1)
    arrival = np.full_like(ids, -1)
    arrival[1:] = np.roll(ids[:-1], 1, axis=2)
    by_sender = ids.transpose(1, 2, 0, 3).reshape(channels * ranks, -1)  # each connection's transfers in order
    previous = np.full_like(by_sender, -1)
    previous[:, 1:] = np.maximum.accumulate(by_sender, axis=1)[:, :-1]
    previous = previous.reshape(channels, ranks, steps, chunks).transpose(2, 0, 1, 3)
    src = np.broadcast_to(order[None, :, :, None], carried.shape)[carried]
    dst = np.broadcast_to(np.roll(order, -1, axis=1)[None, :, :, None], carried.shape)[carried]
    table = TransferTable(src, dst, piece_bytes[piece[carried]], piece[carried],
                          np.ones(len(src), dtype=np.int64),
                          np.broadcast_to(reduce[:, None, None, None], carried.shape)[carried],
                          _single_dependencies(arrival[carried]), _single_dependencies(previous[carried]))
    return Schedule(op, name, ranks, size_bytes, table, chunks=channels * chunks if channels > 1 else None)


def _single_dependencies(parent: np.ndarray) -> Dependencies:
    """Each transfer's one dependency, or none where ``parent`` is -1."""
    return Dependencies(np.concatenate(([0], np.cumsum(parent >= 0))), parent[parent >= 0])


def bidirectional_ring_all_reduce(ranks: int, size_bytes: int, chunks: int = 1) -> Schedule:
    """Two ring all-reduces at once, successor-ward on chunks 0..c-1 of each piece and
    predecessor-ward on chunks c..2c-1, so each carries half the data."""
    dag = DagBuilder("all_reduce", ranks, size_bytes, 2 * chunks)
    members = list(range(ranks))
    halves = [[[(q * 2 * chunks + half * chunks + j, 1) for j in range(chunks)] for q in members]
              for half in (0, 1)]
    for lag, reduce in ((1, True), (0, False)):
        for step in range(ranks - 1):
            for channel, (segments, direction) in enumerate(zip(halves, (1, -1))):
                ring_step(dag, members, segments, step, lag, reduce, direction, channel)
    return dag.schedule("bidirectional_ring")


def chunk_segments(ranks: int, chunks: int) -> list[Segments]:
    """Rank q's group is piece q, sent as its ``chunks`` chunks one message each."""
    return [[(q * chunks + j, 1) for j in range(chunks)] for q in range(ranks)]


def ring_phase(dag: DagBuilder, members: list[int], segments: list[Segments], lag: int, reduce: bool,
               direction: int = 1) -> None:
    """Append the n - 1 steps of one ring phase among ``members`` (in ring order)."""
    for step in range(len(members) - 1):
        ring_step(dag, members, segments, step, lag, reduce, direction)


def ring_step(dag: DagBuilder, members: list[int], segments: list[Segments], step: int, lag: int,
              reduce: bool, direction: int, channel: int = 0) -> None:
    """Member i sends group (i - direction (step + lag)) mod n to member i + direction, message by message."""
    n = len(members)
    for i, rank in enumerate(members):
        group = (i - direction * (step + lag)) % n
        for first_piece, pieces in segments[group]:
            dag.send(rank, members[(i + direction) % n], first_piece, pieces, reduce, channel=channel)
