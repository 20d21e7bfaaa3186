"""Pictures that put fabrics side by side: their CDFs overlaid on shared axes, their tails as CCDFs
on a log scale (where p99 and p99.9 live), and one per-trial delay panel per fabric.

Same conventions as ``fabricsim.output.plots``: numbers in (a mapping from each fabric's label to its
completion times in microseconds), one PNG out, matplotlib's default style, no pyplot. Every
picture uses one scale for all fabrics, logarithmic when their values together span more than
LOG_SCALE_SPAN x.
"""

from __future__ import annotations

import matplotlib.style
import numpy as np
from matplotlib.figure import Figure

from fabricsim.output.plots import (DPI, FIGURE_SIZE_IN, TAIL_GUIDES, draw_ccdf, draw_delay, draw_ecdf, fit_axis, grid,
                             new_figure, plain_ticks, save_figure, shade_unresolved, use_log_scale)
from fabricsim.output.stats import trials_needed
from fabricsim.units import TimeUnit

_PANEL_HEIGHT_IN = 2.2


def _color(index: int) -> str:
    return f"C{index % 10}"


def _all_values_us(latency_us_by_label: dict[str, np.ndarray]) -> np.ndarray:
    return np.concatenate([np.asarray(v, dtype=float) for v in latency_us_by_label.values()] + [np.empty(0)])


def compare_unit(latency_us_by_label: dict[str, np.ndarray]) -> TimeUnit:
    """One unit for every fabric: by the smallest of their medians."""
    medians = [float(np.median(v)) for v in latency_us_by_label.values() if np.size(v)]
    return TimeUnit.for_typical(min(medians) if medians else 1.0)


def _time_axis(ax, values_us: np.ndarray, unit: TimeUnit, axis: str = "x") -> None:
    """The completion-time axis shared by all fabrics: log when their values together span decades."""
    if use_log_scale(values_us):
        getattr(ax, f"set_{axis}scale")("log")
    else:
        plain_ticks(ax, axis)
    getattr(ax, f"set_{axis}label")(f"completion time ({unit.name})")


def _draw_each(ax, latency_us_by_label: dict[str, np.ndarray], unit, draw) -> None:
    """Each fabric's curve (``draw``: draw_ecdf or draw_ccdf) of its successful trials, in its colour."""
    for index, (label, latency_us) in enumerate(latency_us_by_label.items()):
        if np.size(latency_us):
            draw(ax, np.asarray(latency_us, dtype=float) / unit.us, _color(index),
                 f"{label} ({np.size(latency_us)} trials)")


def compare_cdf_figure(latency_us_by_label: dict[str, np.ndarray], title: str, subtitle: str) -> Figure:
    """Each fabric's CDF of completion times over its successful trials, overlaid."""
    unit = compare_unit(latency_us_by_label)
    with matplotlib.style.context("default"):
        fig = new_figure(title, subtitle)
        ax = fig.add_subplot()
        grid(ax)
        _draw_each(ax, latency_us_by_label, unit, draw_ecdf)
        _time_axis(ax, _all_values_us(latency_us_by_label), unit)
        ax.set_ylim(0, 1.02)
        ax.set_ylabel("cumulative fraction of trials")
        ax.legend(loc="lower right", fontsize=9)
    return fig


def plot_compare_cdf(latency_us_by_label: dict[str, np.ndarray], path, title: str, subtitle: str) -> None:
    save_figure(compare_cdf_figure(latency_us_by_label, title, subtitle), path)


def compare_tail_figure(latency_us_by_label: dict[str, np.ndarray], title: str, subtitle: str) -> Figure:
    """Each fabric's CCDF (fraction of trials at or above a completion time, the slowest of n at 1/n)
    on a log y axis; the fractions below 1/n of the largest sample shaded as not enough trials, and
    guides at 1e-2 and 1e-3, where a curve crosses its p99 and p99.9, when some sample supports them."""
    unit = compare_unit(latency_us_by_label)
    most_trials = max([np.size(v) for v in latency_us_by_label.values()] + [1])
    with matplotlib.style.context("default"):
        fig = new_figure(title, subtitle)
        ax = fig.add_subplot()
        grid(ax)
        _draw_each(ax, latency_us_by_label, unit, draw_ccdf)
        ax.set_yscale("log")
        ax.set_ylim(min(1 / most_trials, TAIL_GUIDES[-1][1]) / 3, 1.5)
        shade_unresolved(ax, most_trials)
        for percentile, fraction in TAIL_GUIDES:
            if most_trials >= trials_needed(percentile):
                ax.axhline(fraction, color="0.4", linestyle="--", linewidth=0.8)
                ax.annotate(f"p{percentile:g}", (1, fraction), xycoords=("axes fraction", "data"), xytext=(-3, 2),
                            textcoords="offset points", ha="right", fontsize=8, color="0.3")
        _time_axis(ax, _all_values_us(latency_us_by_label), unit)
        ax.set_ylabel("fraction of trials at or above")
        fig.legend(loc="outside lower center", ncols=2, fontsize=9)
    return fig


def plot_compare_tail(latency_us_by_label: dict[str, np.ndarray], path, title: str, subtitle: str) -> None:
    save_figure(compare_tail_figure(latency_us_by_label, title, subtitle), path)


def plot_compare_delay(trials_by_label: dict[str, tuple[np.ndarray, np.ndarray]], path, title: str) -> None:
    """One per-trial delay panel per fabric (label -> (completion time of every trial in us, failed
    mask)), stacked on one trial axis and one completion-time axis."""
    ok_us = {label: np.asarray(latency_us, dtype=float)[~np.asarray(failed, dtype=bool)]
             for label, (latency_us, failed) in trials_by_label.items()}
    unit = compare_unit(ok_us)
    values = _all_values_us(ok_us) / unit.us
    width_in = FIGURE_SIZE_IN[0]
    with matplotlib.style.context("default"):
        fig = Figure(figsize=(width_in, 1.2 + _PANEL_HEIGHT_IN * len(trials_by_label)), dpi=DPI,
                     layout="constrained")
        fig.suptitle(title, fontsize=13)
        axes = fig.subplots(len(trials_by_label), 1, sharex=True, squeeze=False)[:, 0]
        for ax, (label, (latency_us, failed)) in zip(axes, trials_by_label.items()):
            draw_delay(ax, np.arange(np.size(latency_us)), np.asarray(latency_us, dtype=float) / unit.us, failed, unit)
            ax.set_title(label, fontsize=10, loc="left")
            ax.grid(True, alpha=0.4)
            ax.legend(loc="upper right", fontsize=8)
            ax.set_ylabel(f"completion time ({unit.name})", fontsize=9)
            if values.size:
                fit_axis(ax, "y", values)
        axes[-1].set_xlabel("trial index")
        save_figure(fig, path)

