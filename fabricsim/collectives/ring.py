"""Ring collectives: every rank sends only to its ring successor, for p - 1 steps per phase.

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

import numpy as np

from fabricsim.collectives.dag import DagBuilder
from fabricsim.collectives.verify import piece_layout
from fabricsim.schedule import Dependencies, Schedule, TransferTable

Segments = list[tuple[int, int]]  # (first piece id, piece count) of each message of one group


def ring_all_gather(ranks: int, size_bytes: int, chunks: int = 1) -> Schedule:
    """Ring all-gather of an S = ``size_bytes`` output; each rank contributes piece r (S/p bytes)."""
    return _one_direction_ring("all_gather", ranks, size_bytes, chunks, ((0, False),))


def ring_reduce_scatter(ranks: int, size_bytes: int, chunks: int = 1) -> Schedule:
    """Ring reduce-scatter of an S = ``size_bytes`` input; rank r ends with reduced piece r."""
    return _one_direction_ring("reduce_scatter", ranks, size_bytes, chunks, ((1, True),))


def ring_all_reduce(ranks: int, size_bytes: int, chunks: int = 1) -> Schedule:
    """Ring all-reduce of an S = ``size_bytes`` buffer: reduce-scatter, then all-gather per piece."""
    return _one_direction_ring("all_reduce", ranks, size_bytes, chunks, ((1, True), (0, False)))


def _one_direction_ring(op: str, ranks: int, size_bytes: int, chunks: int,
                        phases: tuple[tuple[int, bool], ...]) -> Schedule:
    """The DAG that ``ring_phase`` builds on ranks 0..p-1 for each (lag, reduce) phase in turn, in
    closed form, one numpy array per field (a 1024-rank all-reduce has 2 M transfers). Transfers
    are numbered step by step, rank by rank, chunk by chunk, skipping empty chunks; chunk j of step
    g at rank i waits for the same chunk's arrival at step g - 1 (from rank i - 1: the same piece
    travels round the ring, across the phase boundary too) and for rank i's previous transfer to be
    sent (its connection to rank i + 1)."""
    layout = piece_layout(ranks, size_bytes, chunks, op)
    piece_bytes = np.zeros(ranks * chunks, dtype=np.int64)
    piece_bytes[list(layout)] = list(layout.values())
    steps = len(phases) * (ranks - 1)
    lag = np.repeat([phase_lag for phase_lag, _ in phases], ranks - 1)
    step_in_phase = np.arange(steps) % (ranks - 1)
    reduce = np.repeat([phase_reduce for _, phase_reduce in phases], ranks - 1)
    group = (np.arange(ranks)[None, :] - (step_in_phase + lag)[:, None]) % ranks  # [step, rank]
    piece = group[:, :, None] * chunks + np.arange(chunks)[None, None, :]  # [step, rank, chunk]
    carried = piece_bytes[piece] > 0
    ids = np.where(carried, np.cumsum(carried).reshape(carried.shape) - 1, -1)
    arrival = np.full_like(ids, -1)
    arrival[1:] = np.roll(ids[:-1], 1, axis=1)
    by_rank = ids.transpose(1, 0, 2).reshape(ranks, -1)  # each rank's transfers in sending order
    previous = np.full_like(by_rank, -1)
    previous[:, 1:] = np.maximum.accumulate(by_rank, axis=1)[:, :-1]
    previous = previous.reshape(ranks, steps, chunks).transpose(1, 0, 2)
    rank = np.broadcast_to(np.arange(ranks)[None, :, None], carried.shape)[carried]
    table = TransferTable(rank, (rank + 1) % ranks, piece_bytes[piece[carried]], piece[carried],
                          np.ones(len(rank), dtype=np.int64),
                          np.broadcast_to(reduce[:, None, None], carried.shape)[carried],
                          _single_dependencies(arrival[carried]), _single_dependencies(previous[carried]))
    return Schedule(op, "ring", ranks, size_bytes, table)


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


def multi_ring_all_reduce(ranks: int, size_bytes: int, chunks: int = 1, local_ranks: int = 1) -> Schedule:
    """NCCL's channels: L = ``local_ranks`` ring all-reduces at once, each on 1/L of every piece. Ring k
    visits each host's GPUs from local index k on, so it leaves every host from local k - 1 to local k
    of the next: each ring crosses hosts through a different pair of NICs (rails), and every NIC
    carries one ring's share instead of the whole buffer."""
    if local_ranks < 1 or ranks % local_ranks:
        raise ValueError(f"multi-ring all-reduce needs the {ranks} ranks to be whole hosts of "
                         f"{local_ranks} GPUs each")
    dag = DagBuilder("all_reduce", ranks, size_bytes, local_ranks * chunks)
    rings = []
    for channel in range(local_ranks):
        members = [host + (channel + i) % local_ranks for host in range(0, ranks, local_ranks)
                   for i in range(local_ranks)]
        segments = [[(q * local_ranks * chunks + channel * chunks + j, 1) for j in range(chunks)]
                    for q in range(ranks)]
        rings.append((members, segments))
    for lag, reduce in ((1, True), (0, False)):
        for step in range(ranks - 1):
            for channel, (members, segments) in enumerate(rings):
                ring_step(dag, members, segments, step, lag, reduce, 1, channel)
    return dag.schedule("multi_ring")


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
