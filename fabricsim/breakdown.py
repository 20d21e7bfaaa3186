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

import math
from dataclasses import dataclass, fields

from fabricsim.schedule import Schedule

CAUSES = ("contention", "jitter", "retransmit", "timeout", "failure")


@dataclass(slots=True)
class Causes:
    """Time (ps) the named causes added: to one transfer, or summed along a critical path."""

    jitter_ps: int = 0
    retransmit_ps: int = 0
    timeout_ps: int = 0
    failure_ps: int = 0

    def add(self, other: Causes) -> None:
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    def values(self) -> list[int]:
        return [max(0, getattr(self, field.name)) for field in fields(self)]


@dataclass(frozen=True, slots=True)
class Breakdown:
    ideal_ps: int
    contention_ps: int
    jitter_ps: int
    retransmit_ps: int
    timeout_ps: int
    failure_ps: int


def ideal_makespan_ps(schedule: Schedule, send_ps: list[int], latency_ps: list[int]) -> int:
    """Longest path through the DAG: a transfer sends for send_ps once its dependencies allow, and is
    delivered latency_ps after its last bit."""
    sent_at = [0] * len(schedule.transfers)
    delivered_at = [0] * len(schedule.transfers)
    for t in schedule.transfers:
        ready_ps = max([delivered_at[p] for p in t.after] + [sent_at[p] for p in t.after_sent], default=0)
        sent_at[t.id] = ready_ps + send_ps[t.id]
        delivered_at[t.id] = sent_at[t.id] + latency_ps[t.id]
    return max(delivered_at, default=0)


def critical_path_causes(last: tuple[int, str], released_by: list[tuple[int, str] | None],
                         to_sent: list[Causes], after_sent: list[Causes]) -> Causes:
    """Sum the causes along the chain that ended a run at ``last`` = (transfer, "delivered" | "failed").

    A transfer released by its parent's last bit ("sent") contributes only what happened to the
    parent before that bit left; released by a delivery, everything.
    """
    total = Causes()
    tid, kind = last
    while tid >= 0:
        total.add(to_sent[tid])
        if kind != "sent":
            total.add(after_sent[tid])
        tid, kind = released_by[tid] or (-1, "")
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


PARTS = ("ideal",) + CAUSES


def parts_ps(record) -> list[int]:
    """A trial record's breakdown, in PARTS order (fields ``<part>_ps`` of runner.TrialRecord)."""
    return [getattr(record, f"{part}_ps") for part in PARTS]


def tail_causes(records: list) -> dict[str, dict]:
    """The trial at the p99 (nearest rank) and the slowest trial: the cause beyond ideal that added
    the most to each, with its share of the latency (over the records that carry a breakdown)."""
    ranked = sorted((r for r in records if sum(parts_ps(r)) == r.latency_ps), key=lambda r: r.latency_ps)
    if not ranked:
        return {}
    picks = {"p99": ranked[math.ceil(0.99 * len(ranked)) - 1], "max": ranked[-1]}
    report = {}
    for label, record in picks.items():
        parts = dict(zip(PARTS, parts_ps(record)))
        cause = max(CAUSES, key=parts.get)
        latency_ps = record.latency_ps or 1
        report[label] = {"trial": record.trial, "latency_us": record.latency_ps / 1e6,
                         "cause": cause if parts[cause] else "none", "share": parts[cause] / latency_ps,
                         "ideal_share": parts["ideal"] / latency_ps}
    return report
