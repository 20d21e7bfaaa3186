"""Breakdown: why a trial took as long as it did, in parts that sum to its latency by construction.

- ideal: the same trial alone on an ideal fabric: every transfer at its route's bottleneck rate,
  no other flow, no impairment; for a DAG of transfers this is the longest path of ideal
  transfer times (send time, then route latency), computed without simulating.
- jitter, retransmit, timeout, failure: what those causes added along the critical path of the
  real run, the chain of transfers, each released by the last of its dependencies, that ended the
  run: start delays and launch skew; go-back-N resends and NACK round trips; retransmission
  timeouts (QP failure included); time stalled on a link that was down.
- contention: the rest: latency - ideal - the causes above. That is sharing links max-min
  with other flows of the collective or background traffic, ECMP collisions, and any waiting off
  the critical path.

When the critical path of the real run is not the ideal run's longest path, the named causes can
exceed latency - ideal; they are then scaled down together (largest remainder, whole picoseconds)
and contention is 0. A failed trial never finished, so its causes come first and ideal takes
what is left.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable

import numpy as np

from fabricsim.collectives.schedule import Schedule
from fabricsim.collectives.schedule_times import dag_times, serialisation_ps_each
from fabricsim.fabric.routing import Route, route_columns
from fabricsim.records import Breakdown, Causes


@dataclass(frozen=True, eq=False)
class TransferCauses:
    """Per transfer of a run (arrays by transfer id), what its own causes added, by the names of
    ``records.CAUSES``: before its last bit left (jitter: its drawn start delay; retransmit: resent
    bytes' wire time; failure: time stalled on a link that was down) and after (retransmit_after: NACK
    round trips, and in the packet model the resent packets' wire time; timeout: retransmission
    timeouts)."""

    jitter_ps: np.ndarray
    retransmit_ps: np.ndarray
    failure_ps: np.ndarray
    retransmit_after_ps: np.ndarray
    timeout_ps: np.ndarray

    @classmethod
    def zeros(cls, transfers: int) -> TransferCauses:
        return cls(*(np.zeros(transfers, dtype=np.int64) for _ in fields(cls)))

    def to_sent(self, tid: int) -> Causes:
        return Causes(jitter_ps=int(self.jitter_ps[tid]), retransmit_ps=int(self.retransmit_ps[tid]),
                      failure_ps=int(self.failure_ps[tid]))

    def after_sent(self, tid: int) -> Causes:
        return Causes(retransmit_ps=int(self.retransmit_after_ps[tid]), timeout_ps=int(self.timeout_ps[tid]))


def ideal_makespan_ps(schedule: Schedule, route_of_pair: Callable[[int, int], Route], fixed_delay_ps: np.ndarray) -> int:
    """The schedule alone on an ideal fabric: the longest path through the DAG of each transfer's
    software latency, its bytes at its route's bottleneck rate, then its route's latency."""
    transfers = schedule.transfers
    if not len(transfers):
        return 0
    pairs, pair_of = transfers.pairs
    rate_bps, latency_ps = route_columns([route_of_pair(int(src), int(dst)) for src, dst in pairs], pair_of)
    send_ps = fixed_delay_ps + serialisation_ps_each(8.0 * transfers.nbytes, rate_bps)
    return int(dag_times(transfers, 0, send_ps, latency_ps)[len(transfers):2 * len(transfers)].max())


def critical_path_causes(last: tuple[int, str], released_by: Callable[[int], tuple[int, str] | None],
                         causes: TransferCauses) -> Causes:
    """Sum the causes along the chain that ended a run at ``last`` = (transfer, "delivered" | "failed").

    A transfer released by its parent's last bit ("sent") contributes only what happened to the
    parent before that bit left; released by a delivery, everything.
    """
    total = Causes()
    tid, kind = last
    while tid >= 0:
        total.add(causes.to_sent(tid))
        if kind != "sent":
            total.add(causes.after_sent(tid))
        tid, kind = released_by(tid) or (-1, "")
    return total


def attribute(latency_ps: int, ideal_ps: int, causes: Causes, failed: bool) -> Breakdown:
    """Split ``latency_ps`` into ideal, contention and the named causes; the parts sum to it exactly."""
    named = causes.values()
    ideal_ps = max(0, min(ideal_ps, latency_ps - (sum(named) if failed else 0)))
    budget_ps = latency_ps - ideal_ps
    if sum(named) > budget_ps:
        named = _scaled(named, budget_ps)
    return Breakdown(ideal_ps, budget_ps - sum(named), *named)


def _scaled(values: list[int], total: int) -> list[int]:
    """Integers proportional to ``values`` that sum to ``total`` (largest remainder)."""
    whole = sum(values)
    shares = [v * total // whole for v in values]
    remainders = sorted(range(len(values)), key=lambda i: values[i] * total % whole, reverse=True)
    for i in remainders[: total - sum(shares)]:
        shares[i] += 1
    return shares
