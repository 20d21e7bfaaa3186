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
"""

from __future__ import annotations

from dataclasses import dataclass


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


@dataclass(frozen=True, slots=True)
class Schedule:
    """A collective as a DAG of transfers, ids 0..len-1 in a topological order."""

    op: str
    algorithm: str
    ranks: int
    size_bytes: int
    transfers: tuple[Transfer, ...]
    root: int = 0
    chunks: int | None = None

    def bytes_sent_by(self, rank: int) -> int:
        return sum(t.nbytes for t in self.transfers if t.src == rank)
