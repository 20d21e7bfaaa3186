"""Compare: fabrics side by side, as a table and as pictures.

Each sample gives a row of p50, p90, p99, p99.9, max and busbw, each also as a ratio to the first
sample's; a percentile its trial count does not support (``stats.trials_needed``) is n/a. Percentiles
carry bootstrap confidence intervals. Each sample's p99 (or, with fewer than the 100 trials it
needs on either side, the highest percentile both support) is set against the first one's: the two
are distinguishable when the bootstrap interval of their difference leaves out zero; when it does
not, the row says so and estimates the trial count that would tell them apart. The same cells make
the terminal table and compare.md (times in one unit chosen by magnitude) and compare.csv (us).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fabricsim.output import report, stats
from fabricsim.output.result_folder import staged_folder
from fabricsim.output.sample import METRICS, Sample
from fabricsim.units import PS_PER_US, TimeUnit

CONFIDENCE = 0.95
GUARDED_PERCENTILE = 99


@dataclass(frozen=True)
class Verdict:
    """A percentile of a sample against the first sample's, at the trial count used."""

    percentile: float
    difference_us: float
    ci_us: tuple[float, float]
    trials: int

    @property
    def distinguishable(self) -> bool:
        return self.ci_us[0] > 0 or self.ci_us[1] < 0

    @property
    def trials_to_separate(self) -> int | None:
        return stats.trials_to_separate(self.trials, self.difference_us, *self.ci_us, self.percentile)


@dataclass(frozen=True)
class Row:
    label: str
    trials: int
    failed_trials: int
    values: dict[str, float | None]
    ratios: dict[str, float | None]
    ci_us: dict[str, tuple[float, float]]
    verdict: Verdict | None


def verdict_percentile(trials: int) -> float | None:
    """The percentile two samples of `trials` trials each are compared on: the p99, or the highest of
    PERCENTILES below it that the trial count supports."""
    supported = [p for p in stats.PERCENTILES if p <= GUARDED_PERCENTILE and trials >= stats.trials_needed(p)]
    return supported[-1] if supported else None


def compare_samples(samples: list[Sample]) -> list[Row]:
    """One row per sample, ratios and the p99 verdict taken against the first sample."""
    first = samples[0]
    first_values = first.metric_values()
    rows = []
    for sample in samples:
        values = sample.metric_values()
        ratios = {key: None if value is None or not first_values[key] else value / first_values[key]
                  for key, value in values.items()}
        ok_us = sample.ok_latency_us
        ci_us = {f"p{p:g}": stats.bootstrap_percentile_ci(ok_us, p, CONFIDENCE)
                 for p in stats.PERCENTILES if ok_us.size and ok_us.size >= stats.trials_needed(p)}
        verdict = None
        trials = min(ok_us.size, first.ok_latency_us.size)
        percentile = verdict_percentile(trials)
        if sample is not first and trials and percentile is not None:
            key = f"p{percentile:g}"
            verdict = Verdict(
                percentile, values[key] - first_values[key],
                stats.bootstrap_difference_ci(first.ok_latency_us, ok_us, percentile, CONFIDENCE), trials)
        rows.append(Row(sample.label, sample.summary["trials"], sample.summary["failed_trials"],
                        values, ratios, ci_us, verdict))
    return rows


def format_table(rows: list[Row]) -> str:
    """The comparison as aligned plain text: the table, then one line per p99 verdict."""
    header, *body = _cells(rows)
    widths = [max(len(line[i]) for line in (header, *body)) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths)))
             for line in (header, *body)]
    return "\n".join(lines + _notes(rows))


def format_markdown(rows: list[Row]) -> str:
    header, *body = _cells(rows)
    lines = ["| " + " | ".join(line) + " |" for line in (header, ["---"] * len(header), *body)]
    return "\n".join(lines + [""] + [f"- {note}" for note in _notes(rows)]) + "\n"


def table_unit(rows: list[Row]) -> TimeUnit:
    """One time unit for the whole comparison: by the smallest median."""
    medians = [row.values["p50"] for row in rows if row.values["p50"] is not None]
    return TimeUnit.for_typical(min(medians) if medians else 1.0)


def _cells(rows: list[Row]) -> list[list[str]]:
    confidence_pct = f"{CONFIDENCE * 100:g}%"
    time = table_unit(rows)
    header = ["fabric", "trials"] + [f"{label} ({time.name if unit == 'us' else unit})" for label, unit in METRICS]
    header[header.index(f"p99 ({time.name})")] = f"p99 ({time.name}) [{confidence_pct} CI]"
    body = []
    for index, row in enumerate(rows):
        cells = [row.label, f"{row.trials}" + (f" ({row.failed_trials} failed)" if row.failed_trials else "")]
        for label, unit in METRICS:
            value, ratio = row.values[label], row.ratios[label]
            cell = "n/a" if value is None else time.number(value) if unit == "us" else f"{value:.2f}"
            if label == "p99" and label in row.ci_us:
                cell += " [{}, {}]".format(*map(time.number, row.ci_us[label]))
            if index and ratio is not None:
                cell += f" x{ratio:.3f}"
            cells.append(cell)
        body.append(cells)
    return [header] + body


def _notes(rows: list[Row]) -> list[str]:
    first = rows[0].label
    time = table_unit(rows)
    notes = []
    for row in rows[1:]:
        verdict = row.verdict
        trials = min(row.trials - row.failed_trials, rows[0].trials - rows[0].failed_trials)
        if trials < stats.trials_needed(GUARDED_PERCENTILE):
            notes.append(f"p{GUARDED_PERCENTILE:g} of {row.label} vs {first}: needs "
                         f"{stats.trials_needed(GUARDED_PERCENTILE)} successful trials each, got {trials}")
        if verdict is None:
            notes.append(f"{row.label} vs {first}: not compared (too few successful trials on one side)")
            continue
        name = f"p{verdict.percentile:g}"
        interval = " .. ".join(f"{'+' if bound >= 0 else '-'}{time.text(abs(bound))}" for bound in verdict.ci_us)
        sign = "+" if verdict.difference_us >= 0 else "-"
        text = (f"{name} of {row.label} vs {first}: {sign}{time.text(abs(verdict.difference_us))} "
                f"({CONFIDENCE * 100:g}% CI {interval}), ")
        if verdict.distinguishable:
            notes.append(text + f"distinguishable at {verdict.trials} trials")
        elif verdict.trials_to_separate is None:
            notes.append(text + f"not distinguishable at {verdict.trials} trials; equal in this sample")
        else:
            notes.append(text + f"not distinguishable at {verdict.trials} trials; "
                                f"about {verdict.trials_to_separate} trials each would tell them apart")
    return notes


def write_comparison(out_dir: Path, samples: list[Sample], rows: list[Row], title: str, subtitle: str) -> None:
    """compare.csv, compare.md, the three pictures and report.html, moved into out_dir in one rename."""
    from fabricsim.output.compare_plots import plot_compare_cdf, plot_compare_delay, plot_compare_tail  # matplotlib

    ok_us = {sample.label: sample.ok_latency_us for sample in samples}
    with staged_folder(out_dir) as stage:
        _write_csv(stage / "compare.csv", rows)
        (stage / "compare.md").write_text(f"# {title}\n\n{subtitle}\n\n{format_markdown(rows)}")
        plot_compare_cdf(ok_us, stage / "compare_cdf.png", title, subtitle)
        plot_compare_tail(ok_us, stage / "compare_tail.png", title, subtitle)
        plot_compare_delay({s.label: (s.trial_latency_ps / PS_PER_US, s.failed) for s in samples},
                           stage / "compare_delay.png", title)
        header, *body = _cells(rows)
        (stage / "report.html").write_text(report.page(title, subtitle, [
            ("Comparison", report.table(header, body) + report.preformatted("\n".join(_notes(rows)))),
            ("Pictures", report.pictures([stage / f"compare_{name}.png" for name in ("cdf", "tail", "delay")])),
        ]))


def _write_csv(path: Path, rows: list[Row]) -> None:
    keys = [label.replace(".", "") for label, _ in METRICS]
    units = [unit.replace("/", "p") for _, unit in METRICS]
    percentiles = [f"p{p:g}" for p in stats.PERCENTILES]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["fabric", "trials", "failed_trials"]
                        + [f"{key}_{unit}" for key, unit in zip(keys, units)]
                        + [f"{p.replace('.', '')}_ci_{side}_us" for p in percentiles for side in ("low", "high")]
                        + [f"{key}_ratio" for key in keys]
                        + ["verdict_percentile", "distinguishable", "difference_us", "difference_ci_low_us",
                           "difference_ci_high_us", "trials_to_separate"])
        for row in rows:
            verdict = row.verdict
            writer.writerow(
                [row.label, row.trials, row.failed_trials]
                + [_number(row.values[label]) for label, _ in METRICS]
                + [_number(bound) for p in percentiles for bound in row.ci_us.get(p, (None, None))]
                + [_number(row.ratios[label]) for label, _ in METRICS]
                + (["", "", "", "", "", ""] if verdict is None else
                   [f"p{verdict.percentile:g}", int(verdict.distinguishable), _number(verdict.difference_us),
                    *map(_number, verdict.ci_us),
                    verdict.trials_to_separate or ""]))


def _number(value: float | None) -> str:
    return "" if value is None or not np.isfinite(value) else f"{value:.10g}"
