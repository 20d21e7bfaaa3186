"""Tail causes: what made a run's slow trials slower than its median trial, in the parts of the
breakdown (``fabricsim.engine.breakdown``), for summary.json, the terminal and the pictures.
"""

from __future__ import annotations

import math

import numpy as np

from fabricsim.output.stats import trials_needed
from fabricsim.records import CAUSES, PARTS
from fabricsim.units import PS_PER_US


# what each part means to a network engineer, for pictures and the terminal
PART_WORDS = {"ideal": "ideal transfer time", "contention": "contention", "jitter": "launch jitter",
              "retransmit": "go-back-N resends", "timeout": "retransmission timeout", "failure": "link down"}


def median_row(latency_ps: np.ndarray, failed: np.ndarray) -> int | None:
    """Row of the median successful trial (the lower middle one, ties in the order given); None when
    every trial failed. It is the reference that slow trials are measured against."""
    ok = np.flatnonzero(~failed)
    if not ok.size:
        return None
    return int(ok[np.argsort(latency_ps[ok], kind="stable")][(ok.size - 1) // 2])


def dominant_part(excess_ps: np.ndarray) -> str:
    """The part (PARTS order) that added the most beyond the reference, or "none"."""
    index = int(np.argmax(excess_ps))
    return PARTS[index] if excess_ps[index] > 0 else "none"


def tail_causes(trial: np.ndarray, latency_ps: np.ndarray, failed: np.ndarray,
                breakdown_ps: np.ndarray) -> dict[str, dict]:
    """What made the slow trials slower than the median trial: for the trial at the p99 (the first at
    or above the interpolated p99, when there are the 100 successful trials that support it) and the
    slowest successful trial, the time beyond the median trial and the part that added the most of it;
    for failed trials, their count and the cause that took most of their time.

    Columns, one entry per trial: its index, its latency, whether it failed and its breakdown (a row
    in PARTS order). Only trials whose breakdown sums to their latency count; trials of equal latency
    rank in the order given."""
    carried = breakdown_ps.sum(axis=1) == latency_ps
    reference = median_row(latency_ps, failed | ~carried)
    report = {}
    if reference is not None:
        ok = np.flatnonzero(carried & ~failed)
        ranked = ok[np.argsort(latency_ps[ok], kind="stable")]
        report["median"] = {"trial": int(trial[reference]), "latency_us": int(latency_ps[reference]) / PS_PER_US,
                            "parts_us": dict(zip(PARTS, (breakdown_ps[reference] / PS_PER_US).tolist()))}
        picks = {"max": ranked[-1]}
        if ranked.size >= trials_needed(99):
            picks = {"p99": ranked[math.ceil(0.99 * (ranked.size - 1))], **picks}
        for label, row in picks.items():
            excess_ps = breakdown_ps[row] - breakdown_ps[reference]
            part = dominant_part(excess_ps)
            beyond_ps = int(latency_ps[row] - latency_ps[reference])
            part_ps = int(excess_ps[PARTS.index(part)]) if part != "none" else 0
            report[label] = {"trial": int(trial[row]), "latency_us": int(latency_ps[row]) / PS_PER_US,
                             "beyond_median_us": beyond_ps / PS_PER_US, "cause": part, "cause_us": part_ps / PS_PER_US,
                             "share": part_ps / beyond_ps if beyond_ps > 0 else 0.0}
    failed_rows = np.flatnonzero(carried & failed)
    if failed_rows.size:
        totals = breakdown_ps[failed_rows].sum(axis=0)[1:]
        report["failed"] = {"trials": int(failed_rows.size), "first_trial": int(trial[failed_rows[0]]),
                            "cause": CAUSES[int(np.argmax(totals))] if totals.max() > 0 else "none"}
    return report
