"""Schedules: a collective algorithm's output, as pure data.

A schedule is a DAG of transfers. A transfer moves ``nbytes`` of one data piece from rank ``src`` to
rank ``dst`` and may start only when every transfer named in ``after`` has been delivered and every
transfer named in ``after_sent`` has put its last bit on the wire (a sender's channel sends its
chunks one after another: the next may go while the previous one is still in flight). ``piece``
names the slice of the collective's buffer the bytes belong to, and ``reduce`` says whether the
receiver adds them into its copy (reduce-scatter) or overwrites its copy with them (all-gather).
A transfer may carry ``pieces`` consecutive piece ids at once (one message for a whole range).
Ranks are collective-local indices 0..p-1; the runner maps them onto GPUs. ``root`` is the rank a
rooted collective (broadcast, reduce, gather, send_recv) starts or ends at; ``chunks`` is the number
of chunks each rank's share is cut into, or None to have ``verify`` infer it from the piece sizes.

The transfers are stored column by column (a ``TransferTable``: one numpy array per field, the
dependencies in compressed rows), so a schedule of millions of transfers costs tens of bytes each
and the engine reads whole columns; indexing or iterating the table gives ``Transfer`` objects.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True, slots=True)
class Transfer:
    id: int
    src: int
    dst: int
    nbytes: int
    after: tuple[int, ...] = ()
    piece: int = 0
    reduce: bool = False
    after_sent: tuple[int, ...] = ()
    pieces: int = 1


@dataclass(frozen=True, eq=False)
class Dependencies:
    """Compressed rows: transfer i depends on ``ids[starts[i]:starts[i + 1]]`` (ascending)."""

    starts: np.ndarray
    ids: np.ndarray

    @classmethod
    def of(cls, rows: Sequence[Sequence[int]]) -> Dependencies:
        counts = np.fromiter((len(row) for row in rows), dtype=np.int64, count=len(rows))
        return cls(np.concatenate(([0], np.cumsum(counts))),
                   np.fromiter((i for row in rows for i in row), dtype=np.int64, count=int(counts.sum())))

    def counts(self) -> np.ndarray:
        return np.diff(self.starts)

    def owners(self) -> np.ndarray:
        """For each entry of ``ids``, the transfer whose row it is."""
        return np.repeat(np.arange(len(self.starts) - 1), self.counts())

    def named_by(self, tids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rows of ``tids``, concatenated in that order, and each row's length."""
        counts = self.starts[tids + 1] - self.starts[tids]
        first = np.repeat(self.starts[tids] - np.cumsum(counts) + counts, counts)
        return self.ids[first + np.arange(int(counts.sum()))], counts

    @cached_property
    def dependents(self) -> Dependencies:
        """The reverse rows: for each transfer, the transfers whose rows name it (ascending); computed
        once, as a schedule is run trial after trial."""
        counts = np.bincount(self.ids, minlength=len(self.starts) - 1)
        return Dependencies(np.concatenate(([0], np.cumsum(counts))), self.owners()[np.argsort(self.ids, kind="stable")])

    def __getitem__(self, tid: int) -> tuple[int, ...]:
        return tuple(self.ids[self.starts[tid]:self.starts[tid + 1]].tolist())


@dataclass(frozen=True, eq=False)
class TransferTable(Sequence):
    """A schedule's transfers, one array per field; row i is transfer i."""

    src: np.ndarray
    dst: np.ndarray
    nbytes: np.ndarray
    piece: np.ndarray
    pieces: np.ndarray
    reduce: np.ndarray
    after: Dependencies
    after_sent: Dependencies

    @classmethod
    def of(cls, transfers: Sequence[Transfer]) -> TransferTable:
        """The table of transfers given as objects, whose ids must be 0..len-1 in order."""
        for index, transfer in enumerate(transfers):
            if transfer.id != index:
                raise ValueError(f"transfer at position {index} has id {transfer.id}; ids must be 0..n-1 in order")

        def column(field: str, dtype=np.int64) -> np.ndarray:
            return np.fromiter((getattr(t, field) for t in transfers), dtype=dtype, count=len(transfers))
        return cls(column("src"), column("dst"), column("nbytes"), column("piece"), column("pieces"),
                   column("reduce", bool), Dependencies.of([t.after for t in transfers]),
                   Dependencies.of([t.after_sent for t in transfers]))

    def __len__(self) -> int:
        return len(self.src)

    def __getitem__(self, tid: int | slice) -> Transfer | tuple[Transfer, ...]:
        if isinstance(tid, slice):
            return tuple(self[i] for i in range(len(self))[tid])
        if not -len(self) <= tid < len(self):
            raise IndexError(tid)
        tid %= len(self)
        return Transfer(tid, int(self.src[tid]), int(self.dst[tid]), int(self.nbytes[tid]), self.after[tid],
                        int(self.piece[tid]), bool(self.reduce[tid]), self.after_sent[tid], int(self.pieces[tid]))

    def __iter__(self) -> Iterator[Transfer]:
        return (self[tid] for tid in range(len(self)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TransferTable) and all(
            np.array_equal(mine, theirs) for mine, theirs in zip(self._arrays(), other._arrays()))

    def _arrays(self) -> tuple[np.ndarray, ...]:
        return (self.src, self.dst, self.nbytes, self.piece, self.pieces, self.reduce, self.after.starts,
                self.after.ids, self.after_sent.starts, self.after_sent.ids)

    __hash__ = None

    @cached_property
    def is_root(self) -> np.ndarray:
        """Per transfer: whether it waits on no other transfer."""
        return (self.after.counts() == 0) & (self.after_sent.counts() == 0)

    @cached_property
    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """The distinct (src, dst) pairs, ascending, and each transfer's index among them."""
        ranks = int(max(self.src.max(initial=0), self.dst.max(initial=0))) + 1
        keys, pair_of = np.unique(self.src * ranks + self.dst, return_inverse=True)
        return np.stack([keys // ranks, keys % ranks], axis=1), pair_of.reshape(-1)


@dataclass(frozen=True)
class Schedule:
    """A collective as a DAG of transfers, ids 0..len-1 in a topological order. ``transfers`` may be
    given as any sequence of ``Transfer``; it is kept as a ``TransferTable``."""

    op: str
    algorithm: str
    ranks: int
    size_bytes: int
    transfers: TransferTable
    root: int = 0
    chunks: int | None = None
    continues: tuple[int, ...] = ()  # transfers that carry on the message of the one before them on
    # their connection (pieces of one aggregated message): they pay no per-message software latency
    relays: int = 0  # ranks past ``ranks`` that are switches reducing in the network (NVLS, SHARP; which
    # devices, the algorithm says: fabric/relays.py); they hold no data of their own

    def __post_init__(self) -> None:
        if not isinstance(self.transfers, TransferTable):
            object.__setattr__(self, "transfers", TransferTable.of(tuple(self.transfers)))

    def bytes_sent_by(self, rank: int) -> int:
        return int(self.transfers.nbytes[self.transfers.src == rank].sum())
