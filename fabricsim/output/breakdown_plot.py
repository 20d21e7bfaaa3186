"""The picture of what made the slow trials slow: beside the median trial's own breakdown (the
reference bar), each slow trial's parts minus the median trial's, so every bar shows what that trial
spent *beyond the median*, and on what.

Same conventions as ``fabricsim.output.plots`` (numbers in, a Figure built without pyplot, one unit by the
median). Parts that added time stack up from zero, parts that took less than in the median trial stack
down, and a black tick marks the net time beyond the median. Outliers (beyond OUTLIER_FACTOR x the
median) get their own panel and scale, so a 4.3 s timeout leaves the 100 us of jitter of the others
readable. Failed trials are hatched and labelled in FAILED_COLOR.
"""

from __future__ import annotations

import matplotlib.style
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from fabricsim.output.plots import FAILED_COLOR, OUTLIER_FACTOR, grid, new_figure, save_figure
from fabricsim.output.tail import PART_WORDS
from fabricsim.records import PARTS
from fabricsim.units import TimeUnit

PART_COLORS = dict(zip(PARTS, ("0.65", "tab:blue", "tab:orange", "tab:purple", "tab:red", "tab:brown")))


def breakdown_figure(median_trial: int, median_parts_us: np.ndarray, trials, latency_us, excess_us,
                     failed, title: str, subtitle: str) -> Figure:
    """`median_parts_us`: the median trial's parts (PARTS order); per slow trial (slowest first) its
    index, latency, parts minus the median trial's (one row each, PARTS order) and whether it failed."""
    median_parts_us = np.asarray(median_parts_us, dtype=float)
    latency_us, excess_us = np.asarray(latency_us, dtype=float), np.asarray(excess_us, dtype=float)
    failed = np.asarray(failed, dtype=bool)
    median_us = float(median_parts_us.sum())
    unit = TimeUnit.for_typical(median_us)
    outlier = latency_us > OUTLIER_FACTOR * median_us
    groups = [("slowest trials", ~outlier), ("outliers", outlier)]
    groups = [(name, np.flatnonzero(mask)) for name, mask in groups if mask.any()]
    with matplotlib.style.context("default"):
        fig = new_figure(title, subtitle)
        axes = fig.subplots(1, 1 + len(groups), width_ratios=[1.6] + [max(1.6, len(rows)) for _, rows in groups],
                            squeeze=False)[0]
        _bars(axes[0], [f"{median_trial}\nmedian"], median_parts_us[None, :] / unit.us, np.zeros(1, bool))
        axes[0].set_ylabel(f"median trial ({unit.name})")
        for ax, (name, rows) in zip(axes[1:], groups):
            _bars(ax, [str(trial) for trial in np.asarray(trials)[rows]], excess_us[rows] / unit.us, failed[rows])
            ax.plot(np.arange(rows.size), (latency_us[rows] - median_us) / unit.us, linestyle="none",
                    marker="_", markersize=14, markeredgewidth=2, color="black")
            ax.axhline(0, color="0.3", linewidth=0.8)
            ax.set_title(name, fontsize=9)
            ax.set_ylabel(f"time beyond the median ({unit.name})")
        handles = [Patch(color=PART_COLORS[part], label=PART_WORDS[part]) for part in PARTS]
        if groups:
            handles.append(axes[-1].lines[0])
            handles[-1].set_label("net beyond the median")
        if failed.any():
            handles.append(Patch(facecolor="white", edgecolor=FAILED_COLOR, hatch="//", label="failed trial"))
        for ax, (name, _) in zip(axes[1:], groups):
            ax.set_xlabel("trial (slowest first)" if name == "slowest trials" else "trial", fontsize=9)
        fig.legend(handles=handles, loc="outside lower center", ncols=4, fontsize=8)
    return fig


def _bars(ax: Axes, labels: list[str], parts: np.ndarray, failed: np.ndarray) -> None:
    """Stacked bars, one per row of `parts`: positive parts up from zero, negative ones down."""
    grid(ax)
    positions = np.arange(len(labels))
    up, down = np.zeros(len(labels)), np.zeros(len(labels))
    for column, part in enumerate(PARTS):
        values = parts[:, column]
        bottom = np.where(values >= 0, up, down)
        spent = values != 0  # a part a trial spent nothing on has no bar (a bar of height 0 shows nothing)
        if spent.any():
            ax.bar(positions[spent], values[spent], bottom=bottom[spent], color=PART_COLORS[part], width=0.75)
        up += np.maximum(values, 0)
        down += np.minimum(values, 0)
    for position, is_failed in zip(positions, failed):
        if is_failed:
            ax.bar(position, up[position] - down[position], bottom=down[position], width=0.75, fill=False,
                   edgecolor=FAILED_COLOR, hatch="//", linewidth=1.2)
    span = (up.max() - down.min()) or 1.0
    ax.set_ylim(down.min() - 0.06 * span * (down.min() < 0), up.max() + 0.06 * span)
    # upright when they cannot collide: a few short trial numbers, or one label
    crowded = len(labels) > 3 or (len(labels) > 1 and max(map(len, labels)) > 3)
    ax.set_xticks(positions, labels, rotation=90 if crowded else 0, fontsize=7)
    for tick, is_failed in zip(ax.get_xticklabels(), failed):
        if is_failed:
            tick.set_color(FAILED_COLOR)


def plot_breakdown(median_trial: int, median_parts_us, trials, latency_us, excess_us, failed, path, title: str,
                   subtitle: str) -> None:
    save_figure(breakdown_figure(median_trial, median_parts_us, trials, latency_us, excess_us, failed, title,
                                 subtitle), path)
