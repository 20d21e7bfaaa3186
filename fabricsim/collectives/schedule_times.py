"""Schedule times: when each transfer of a DAG is sent and delivered, given how long each one takes.

A transfer is ready at the latest of the run's start, its ``after`` dependencies' deliveries and its
``after_sent`` dependencies' last bits; it is sent ``send_ps`` after it is ready and delivered
``deliver_ps`` after it is sent. That is a longest path, found depth first in one pass over the
transfers and their dependencies: in plain Python for a call's few transfers, compiled (numba) from
``COMPILED_FROM`` transfers on (a whole-job step's millions), by one and the same function.
"""

from __future__ import annotations

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


COMPILED_FROM = 20_000  # transfers: from this many, the longest path runs compiled (numba's import pays)


def dag_times(transfers: TransferTable, start_ps: int, send_ps: np.ndarray, deliver_ps: np.ndarray) -> np.ndarray:
    """Each transfer's sent time (slot i), then its delivery (slot n + i), then ``start_ps`` (slot 2 n).
    Raises ValueError if the dependencies form a cycle."""
    after, after_sent = transfers.after, transfers.after_sent
    columns = (after.starts, after.ids, after_sent.starts, after_sent.ids, np.asarray(send_ps, dtype=np.int64),
               np.asarray(deliver_ps, dtype=np.int64))
    n, dependencies = len(transfers), len(after.ids) + len(after_sent.ids)
    if n >= COMPILED_FROM:
        from fabricsim.collectives.compiled import longest_path as compiled

        times = np.zeros(2 * n + 1, dtype=np.int64)
        compiled(*columns, start_ps, times, np.zeros(n, dtype=np.int8), np.zeros(n + dependencies + 1, dtype=np.int64))
        return times
    times = [0] * (2 * n + 1)  # plain Python runs faster on lists than on numpy's scalars
    longest_path(*(column.tolist() for column in columns), start_ps, times, [0] * n, [0] * (n + dependencies + 1))
    return np.array(times, dtype=np.int64)


def longest_path(after_starts, after_ids, sent_starts, sent_ids, send_ps, deliver_ps, start_ps: int, times, state,
                 stack) -> None:
    """``dag_times`` into ``times`` (2 n + 1 zeros) over the dependencies' compressed rows, depth first
    from each transfer to its dependencies (the ids need not be in a topological order); ``state`` (n
    zeros) and ``stack`` (room for every transfer and dependency, and one) are its scratch. Written for
    numba too (``collectives.compiled``, over arrays): indexing and loops only."""
    n = len(send_ps)
    times[2 * n] = start_ps
    # state: 0 not reached, 1 on the stack, 2 its dependencies on the stack above it, 3 timed
    for root in range(n):
        if state[root] == 3:
            continue
        depth = 1
        stack[0] = root
        while depth:
            tid = stack[depth - 1]
            if state[tid] == 3:
                depth -= 1
                continue
            if state[tid] < 2:  # first reached: stack the dependencies not yet timed
                state[tid] = 2
                pushed = False
                for starts, ids in ((after_starts, after_ids), (sent_starts, sent_ids)):
                    for place in range(starts[tid], starts[tid + 1]):
                        parent = ids[place]
                        if state[parent] == 2:  # waiting, below on the stack, for this one
                            raise ValueError("the schedule's dependencies form a cycle")
                        if state[parent] < 2:
                            state[parent] = 1
                            stack[depth] = parent
                            depth += 1
                            pushed = True
                if pushed:
                    continue
            ready_ps = start_ps
            for place in range(after_starts[tid], after_starts[tid + 1]):
                ready_ps = max(ready_ps, times[n + after_ids[place]])
            for place in range(sent_starts[tid], sent_starts[tid + 1]):
                ready_ps = max(ready_ps, times[sent_ids[place]])
            times[tid] = ready_ps + send_ps[tid]
            times[n + tid] = times[tid] + deliver_ps[tid]
            state[tid] = 3
            depth -= 1


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
