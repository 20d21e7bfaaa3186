"""DAG building: the bookkeeping every collective algorithm shares while it appends transfers.

A ``DagBuilder`` holds the op's piece layout and, for every (rank, piece), the receipts a send of that
piece must wait for: the last overwrite, or every reduction received since. A send of a range of
pieces waits for all of theirs, so algorithms only say who sends what to whom, in a topological order.
Each connection (src, dst, channel) sends in order: a transfer follows the previous one on its
connection once that one is on the wire (``after_sent``), as NCCL's proxy sends a channel's chunks
one by one; algorithms that run independent streams (two trees, two rings) give each its channel.
Sends made inside ``simultaneous()`` see the receipts from before it: both sides of an exchange send
what they held before the exchange.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from fabricsim.collectives.schedule import Dependencies, Schedule, TransferTable
from fabricsim.collectives.verify import block_bytes, piece_layout


class DagBuilder:
    """Transfers of one schedule being built; ``send`` appends one and returns its id."""

    def __init__(self, op: str, ranks: int, size_bytes: int, chunks: int = 1, root: int = 0) -> None:
        if not 0 <= root < ranks:
            raise ValueError(f"root must be a rank in 0..{ranks - 1}, got {root}")
        self.op, self.ranks, self.size_bytes, self.chunks, self.root = op, ranks, size_bytes, chunks, root
        self.layout = piece_layout(ranks, size_bytes, chunks, op)
        self.piece_count = len(block_bytes(op, ranks, size_bytes)) * chunks  # empty chunks included
        # the schedule's columns (schedule.TransferTable), row by row
        self._columns: tuple[list[int], ...] = ([], [], [], [], [], [])  # src, dst, nbytes, piece, pieces, reduce
        self._after: list[tuple[int, ...]] = []
        self._after_sent: list[tuple[int, ...]] = []
        self._frontier: dict[tuple[int, int], tuple[int, ...]] = {}  # ascending transfer ids
        self._last_on: dict[tuple[int, int, int], int] = {}
        self._last_by: dict[int, int] = {}
        self._streamed: list[int] = []  # transfers behind an earlier one on their connection
        self._deferred: list[tuple[int, int, bool, int]] | None = None

    def send(self, src: int, dst: int, first_piece: int, pieces: int = 1, reduce: bool = False,
             after: tuple[int | None, ...] = (), channel: int = 0,
             after_sent: tuple[int | None, ...] = ()) -> int | None:
        """Append a transfer of pieces first_piece.. (+ ``pieces``); None when they hold no bytes.

        It waits for the receipts of its pieces at ``src``, for the transfers in ``after`` (None
        entries are ignored) to be delivered, and for its connection's previous transfer and those in
        ``after_sent`` to be sent.
        """
        layout = self.layout
        carried = [piece for piece in range(first_piece, first_piece + pieces) if piece in layout]
        if not carried:
            return None
        waits = [self._frontier.get((src, piece), ()) for piece in carried]
        waits.append(tuple(sorted({parent for parent in after if parent is not None})))
        waits = [ids for ids in waits if ids]
        tid = len(self._after)
        for column, value in zip(self._columns, (src, dst, sum(layout[piece] for piece in carried), first_piece,
                                                 pieces, reduce)):
            column.append(value)
        self._after.append(waits[0] if len(waits) == 1 else tuple(sorted(set().union(*waits))))
        sent = {self._last_on.get((src, dst, channel)), *after_sent} - {None}
        self._after_sent.append(tuple(sorted(sent)))
        receipts = [(dst, piece, reduce, tid) for piece in carried]
        if self._deferred is None:
            self._record(receipts)
        else:
            self._deferred.extend(receipts)
        if (src, dst, channel) in self._last_on:
            self._streamed.append(tid)
        self._last_on[(src, dst, channel)] = self._last_by[src] = tid
        return tid

    @contextmanager
    def simultaneous(self) -> Iterator[None]:
        """Sends inside wait only for receipts recorded before it (one step of exchanges)."""
        self._deferred = []
        try:
            yield
        finally:
            deferred, self._deferred = self._deferred, None
            self._record(deferred)

    def _record(self, receipts: list[tuple[int, int, bool, int]]) -> None:
        frontier = self._frontier
        for dst, piece, reduce, transfer_id in receipts:
            frontier[(dst, piece)] = frontier.get((dst, piece), ()) + (transfer_id,) if reduce else (transfer_id,)

    def receipts(self, rank: int, pieces: list[int]) -> tuple[int, ...]:
        """The receipts a send of ``pieces`` from ``rank`` waits for (to send them together)."""
        return tuple(sorted({tid for piece in pieces for tid in self._frontier.get((rank, piece), ())}))

    def streamed(self) -> tuple[int, ...]:
        """Every transfer but the first of each connection: one stream of chunks, as ``continues``."""
        return tuple(self._streamed)

    def last_sent_by(self, rank: int) -> int | None:
        """The latest transfer appended from ``rank``, if any."""
        return self._last_by.get(rank)

    def schedule(self, algorithm: str, continues: tuple[int, ...] = (), relays: int = 0) -> Schedule:
        src, dst, nbytes, piece, pieces, reduce = (np.array(column, dtype=dtype) for column, dtype in
                                                   zip(self._columns, (np.int64,) * 5 + (bool,)))
        table = TransferTable(src, dst, nbytes, piece, pieces, reduce, Dependencies.of(self._after),
                              Dependencies.of(self._after_sent))
        return Schedule(self.op, algorithm, self.ranks, self.size_bytes, table, root=self.root, chunks=self.chunks,
                        continues=continues, relays=relays)
