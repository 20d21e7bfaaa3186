"""Schedule times: when each transfer of a DAG is sent and delivered, given how long each one takes.

A transfer is ready at the latest of the run's start, its ``after`` dependencies' deliveries and its
``after_sent`` dependencies' last bits; it is sent ``send_ps`` after it is ready and delivered
``deliver_ps`` after it is sent. That is a longest-path computation, done wave by wave in numpy:
wave 0 holds the transfers that wait on nothing, wave w those whose last dependency is in wave
w - 1 (Kahn's levels). The waves depend only on the DAG, so they are found once per schedule; a
ring's are its steps, so 2 (p - 1) vector operations time a p-rank ring all-reduce's 2 p (p - 1)
transfers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fabricsim.units import PS_PER_S

if TYPE_CHECKING:
    from fabricsim.collectives.schedule import TransferTable


def serialisation_ps(nbits: float, rate_bps: float) -> int:
    """Time to put ``nbits`` on the wire at ``rate_bps``, to the nearest picosecond (halves to even)."""
    return round(nbits * PS_PER_S / rate_bps)


def serialisation_ps_each(nbits: np.ndarray, rate_bps: np.ndarray | float) -> np.ndarray:
    """``serialisation_ps`` element by element, with the same float operations and rounding."""
    return np.rint(nbits * PS_PER_S / rate_bps).astype(np.int64)


@dataclass(frozen=True, eq=False)
class Waves:
    """The transfers wave by wave (``order[bounds[w]:bounds[w + 1]]``), and for each, in that order,
    the slots of the times it waits for (``refs``, its segment starting at ``ref_starts``): slot
    i < n is transfer i's sent time, n + i its delivery, 2 n the run's start (every segment has it)."""

    order: np.ndarray
    bounds: np.ndarray
    refs: np.ndarray
    ref_starts: np.ndarray

    @classmethod
    def of(cls, transfers: TransferTable) -> Waves:
        n = len(transfers)
        order, bounds = _kahn_levels(transfers)
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n)
        after, after_sent = transfers.after, transfers.after_sent
        counts = 1 + after.counts() + after_sent.counts()
        ref_starts = np.concatenate(([0], np.cumsum(counts[order])))
        refs = np.full(int(ref_starts[-1]), 2 * n, dtype=np.int64)  # the start slot first in each segment
        for deps, first, offset in ((after, 1, n), (after_sent, 1 + after.counts(), 0)):
            owner = deps.owners()
            within = np.arange(len(deps.ids)) - deps.starts[owner]
            base = first[owner] if isinstance(first, np.ndarray) else first
            refs[ref_starts[rank[owner]] + base + within] = deps.ids + offset
        return cls(order, bounds, refs, ref_starts)


def _kahn_levels(transfers: TransferTable) -> tuple[np.ndarray, np.ndarray]:
    """Transfer ids wave by wave (ascending within a wave) and the waves' bounds."""
    n = len(transfers)
    dependents = (transfers.after.dependents(), transfers.after_sent.dependents())
    waiting = transfers.after.counts() + transfers.after_sent.counts()
    wave = np.flatnonzero(waiting == 0)
    waves = []
    while len(wave):
        waves.append(wave)
        children, released = np.unique(np.concatenate([rows.named_by(wave)[0] for rows in dependents]),
                                       return_counts=True)
        waiting[children] -= released
        wave = children[waiting[children] == 0]
    order = np.concatenate(waves) if waves else np.zeros(0, dtype=np.int64)
    if len(order) != n:
        raise ValueError("the schedule's dependencies form a cycle")
    return order, np.concatenate(([0], np.cumsum([len(w) for w in waves]))).astype(np.int64)


def dag_times(waves: Waves, start_ps: int, send_ps: np.ndarray, deliver_ps: np.ndarray) -> np.ndarray:
    """Slots as in ``Waves``: each transfer's sent time, then its delivery, then ``start_ps``."""
    n = len(waves.order)
    times = np.empty(2 * n + 1, dtype=np.int64)
    times[2 * n] = start_ps
    send_in_order, deliver_in_order = send_ps[waves.order], deliver_ps[waves.order]
    for first, last in zip(waves.bounds[:-1].tolist(), waves.bounds[1:].tolist()):
        ref_first, ref_last = waves.ref_starts[first], waves.ref_starts[last]
        ready = np.maximum.reduceat(times[waves.refs[ref_first:ref_last]], waves.ref_starts[first:last] - ref_first)
        ids = waves.order[first:last]
        sent = ready + send_in_order[first:last]
        times[ids] = sent
        times[n + ids] = sent + deliver_in_order[first:last]
    return times


def released_by(transfers: TransferTable, times: np.ndarray, tid: int) -> tuple[int, str] | None:
    """The dependency whose time made ``tid`` ready: (parent, "delivered" | "sent"), None if none did
    (it was ready at the start). Of dependencies done at the same moment, a delivery, then the
    highest id, is taken."""
    n = len(transfers)
    candidates = [(int(times[n + parent]), 1, parent) for parent in transfers.after[tid]] + \
                 [(int(times[parent]), 0, parent) for parent in transfers.after_sent[tid]]
    if not candidates:
        return None
    _, delivered, parent = max(candidates)
    return parent, "delivered" if delivered else "sent"
