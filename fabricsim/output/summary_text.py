"""A run's summary in words, for the terminal and report.html: the latency table in one unit chosen
by the median, and what made the slow trials slower than the median trial."""

from __future__ import annotations

from fabricsim.output.tail import PART_WORDS
from fabricsim.units import TimeUnit

_KEYS = ("min", "p50", "p90", "p99", "p999", "max", "mean")
_LABELS = {"p999": "p99.9"}


def latency_table(summary: dict) -> list[str]:
    """The latency percentiles of the successful trials (n/a where the trial count does not support
    them, with what they need) and the bandwidths at the median."""
    latency = summary["latency_us"]
    unit = TimeUnit.for_typical(latency["p50"])
    width = max(9, *(len(unit.number(value)) + 2 for value in latency.values() if value is not None))
    table = [f"latency ({unit.name})".ljust(13) + "".join(f"{_LABELS.get(key, key):>{width}}" for key in _KEYS),
             " " * 13 + "".join(f"{'n/a' if latency[key] is None else unit.number(latency[key]):>{width}}"
                                for key in _KEYS)]
    missing = summary.get("percentiles_unsupported", {})
    if missing:
        table.append(" " * 13 + "n/a: " + "; ".join(f"{_LABELS.get(key, key)} {reason}"
                                                    for key, reason in missing.items()))
    table.append(f"at p50: algbw {summary['algbw_GBps']:.2f} GB/s, busbw {summary['busbw_GBps']:.2f} GB/s")
    return table


def call_kind_lines(summary: dict) -> list[str]:
    """The whole job's step: a line per kind of call, its latency's median and tail over every group."""
    lines = []
    for kind, latency in summary.get("call_latency_us", {}).items():
        unit = TimeUnit.for_typical(latency["p50"])
        tail = "".join(f", {_LABELS.get(key, key)} {unit.text(latency[key])}" for key in ("p99", "max")
                       if latency[key] is not None)
        lines.append(f"{kind}: {latency['calls']} calls, p50 {unit.text(latency['p50'])}{tail}")
    return lines


def step_lines(summary: dict) -> list[str]:
    """The whole job's step: its pipeline bubble, and what held the critical path of its slowest trial."""
    lines = []
    if summary.get("bubble_us"):
        unit = TimeUnit.for_typical(summary["bubble_us"])
        lines.append(f"pipeline bubble: {unit.text(summary['bubble_us'])} "
                     f"({100 * summary['bubble_fraction']:.1f}% of the compute critical path)")
    for path in summary.get("critical_path", ())[:1]:
        unit = TimeUnit.for_typical(path["latency_us"])
        parts = [f"compute {unit.text(path['compute_us'])}",
                 *(f"{kind} {unit.text(kind_us)}" for kind, kind_us in path["by_kind_us"].items())]
        lines.append(f"critical path of the slowest trial {path['trial']}: " + ", ".join(parts))
        if path["group"]:
            lines.append(f"  most on it: {path['group']} ({unit.text(path['group_us'])}; its longest call "
                         f"{path['call']}, {unit.text(path['call_us'])})")
        if path["link"]:
            lines.append(f"  most loaded link on it: {path['link']} ({100 * path['link_utilization']:.1f}%)")
    return lines


def job_lines(summary: dict) -> list[str]:
    """Several jobs on one fabric: a line per job, its step's median shared and alone, and its slowdown."""
    lines = []
    for job in summary.get("jobs", ()):
        shared, alone = job["latency_us"], job["alone_us"]
        if shared is None or alone is None:
            lines.append(f"job {job['name']}: {len(job['gpus'])} GPUs, every trial failed")
            continue
        unit = TimeUnit.for_typical(alone["p50"])
        lines.append(f"job {job['name']}: {len(job['gpus'])} GPUs, step p50 {unit.text(shared['p50'])} "
                     f"(alone {unit.text(alone['p50'])}), slowdown {job['slowdown']:.2f}x")
    return lines


def tail_lines(summary: dict) -> list[str]:
    """What made the slow trials slower than the median trial, and what stopped the failed ones."""
    causes = summary.get("tail_causes", {})
    median = causes.get("median")
    lines = []
    if median is not None:
        unit = TimeUnit.for_typical(median["latency_us"])
        part = max(median["parts_us"], key=median["parts_us"].get)
        lines.append(f"median trial {median['trial']}: {unit.text(median['latency_us'])}, mostly {PART_WORDS[part]} "
                     f"({unit.text(median['parts_us'][part])})" + (f"; ideal {unit.text(median['parts_us']['ideal'])}"
                                                                    if part != "ideal" else ""))
        lines.append("beyond the median:")
        for label, name in (("p99", "p99 trial"), ("max", "slowest trial")):
            if label not in causes:
                continue
            slow = causes[label]
            cause = (f"mostly {PART_WORDS[slow['cause']]} (+{unit.text(slow['cause_us'])})"
                     if slow["cause"] != "none" else "no part above the median trial's")
            lines.append(f"  {name} {slow['trial']}: {unit.text(slow['latency_us'])}, "
                         f"+{unit.text(slow['beyond_median_us'])}, {cause}")
        if "p99" not in causes:
            lines.append(f"  p99 trial: {summary.get('percentiles_unsupported', {}).get('p99', 'not named')}")
    if "failed" in causes:
        failed = causes["failed"]
        lines.append(f"  {failed['trials']} failed trial(s), never completed (first: trial {failed['first_trial']}): "
                     f"{PART_WORDS.get(failed['cause'], failed['cause'])}")
    return lines
