"""Pictures that put fabrics side by side: their CDFs overlaid on shared axes, their tails as CCDFs
on a log scale (where p99 and p99.9 live), and one per-trial delay panel per fabric.

Same conventions as ``fabricsim.plots``: numbers in (a mapping from each fabric's label to its
completion times in microseconds), one PNG out, matplotlib's default style, no pyplot. Every
picture uses one scale for all fabrics, logarithmic when their values together span more than
LOG_SCALE_SPAN x.
"""

from __future__ import annotations

import matplotlib.style
import numpy as np
from matplotlib.figure import Figure

from fabricsim.plots import (DPI, FIGURE_SIZE_IN, draw_delay, draw_ecdf, finish_cdf_axes, new_figure, save_figure,
                             use_log_scale)

# fraction of trials at or above a percentile, and its name, drawn as guides on the tail plot
_TAIL_GUIDES = ((1e-2, "p99"), (1e-3, "p99.9"))
_PANEL_HEIGHT_IN = 2.2


def _color(index: int) -> str:
    return f"C{index % 10}"


def _all_values_us(latency_us_by_label: dict[str, np.ndarray]) -> np.ndarray:
    return np.concatenate([np.asarray(v, dtype=float) for v in latency_us_by_label.values()] + [np.empty(0)])


def plot_compare_cdf(latency_us_by_label: dict[str, np.ndarray], path, title: str, subtitle: str) -> None:
    """Each fabric's CDF of completion times over its successful trials, overlaid."""
    with matplotlib.style.context("default"):
        fig, ax = new_figure(title, subtitle)
        for index, (label, latency_us) in enumerate(latency_us_by_label.items()):
            if np.size(latency_us):
                draw_ecdf(ax, latency_us, _color(index), f"{label} ({np.size(latency_us)} trials)")
        finish_cdf_axes(ax, _all_values_us(latency_us_by_label))
        save_figure(fig, path)


def plot_compare_tail(latency_us_by_label: dict[str, np.ndarray], path, title: str, subtitle: str) -> None:
    """Each fabric's CCDF (fraction of trials at or above a completion time) on a log y axis, with
    guides at 1e-2 and 1e-3 where a curve crosses its p99 and p99.9."""
    with matplotlib.style.context("default"):
        fig, ax = new_figure(title, subtitle)
        smallest_fraction = 1.0
        for index, (label, latency_us) in enumerate(latency_us_by_label.items()):
            latency_sorted_us = np.sort(np.asarray(latency_us, dtype=float))
            if latency_sorted_us.size:
                at_or_above = np.arange(latency_sorted_us.size, 0, -1) / latency_sorted_us.size
                ax.step(latency_sorted_us, at_or_above, where="post", color=_color(index), linewidth=1.5,
                        label=f"{label} ({latency_sorted_us.size} trials)")
                smallest_fraction = min(smallest_fraction, at_or_above[-1])
        for fraction, name in _TAIL_GUIDES:
            ax.axhline(fraction, color="0.4", linestyle="--", linewidth=0.8)
            ax.annotate(name, (1, fraction), xycoords=("axes fraction", "data"), xytext=(-3, 2),
                        textcoords="offset points", ha="right", fontsize=8, color="0.3")
        ax.set_yscale("log")
        ax.set_ylim(min(smallest_fraction, _TAIL_GUIDES[-1][0]) / 2, 1.5)
        if use_log_scale(_all_values_us(latency_us_by_label)):
            ax.set_xscale("log")
        ax.set_xlabel("completion time (us)")
        ax.set_ylabel("fraction of trials at or above")
        fig.legend(loc="outside lower center", ncols=2, fontsize=9)
        save_figure(fig, path)


def plot_compare_delay(trials_by_label: dict[str, tuple[np.ndarray, np.ndarray]], path, title: str) -> None:
    """One per-trial delay panel per fabric (label -> (completion time of every trial in us, failed
    mask)), stacked on one trial axis and one completion-time axis."""
    ok_us = {label: np.asarray(latency_us, dtype=float)[~np.asarray(failed, dtype=bool)]
             for label, (latency_us, failed) in trials_by_label.items()}
    values_us = _all_values_us(ok_us)
    width_in = FIGURE_SIZE_IN[0]
    with matplotlib.style.context("default"):
        fig = Figure(figsize=(width_in, 1.2 + _PANEL_HEIGHT_IN * len(trials_by_label)), dpi=DPI,
                     layout="constrained")
        fig.suptitle(title, fontsize=13)
        axes = fig.subplots(len(trials_by_label), 1, sharex=True, squeeze=False)[:, 0]
        for ax, (label, (latency_us, failed)) in zip(axes, trials_by_label.items()):
            draw_delay(ax, np.arange(np.size(latency_us)), latency_us, failed)
            ax.set_title(label, fontsize=10, loc="left")
            ax.grid(True, alpha=0.4)
            ax.legend(loc="upper right", fontsize=8)
            if values_us.size:
                _share_completion_axis(ax, values_us)
        for ax in axes[:-1]:
            ax.set_xlabel("")
        save_figure(fig, path)


def _share_completion_axis(ax, values_us: np.ndarray) -> None:
    """One completion-time scale for every panel: the range of all fabrics' values, padded."""
    low_us, high_us = float(values_us.min()), float(values_us.max())
    if use_log_scale(values_us):
        ax.set_yscale("log")
        ax.set_ylim(low_us / 1.3, high_us * 1.3)
    else:
        ax.set_yscale("linear")
        pad_us = 0.05 * (high_us - low_us) or 0.05 * abs(high_us) or 1.0
        ax.set_ylim(low_us - pad_us, high_us + pad_us)
