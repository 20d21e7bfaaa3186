"""Pictures of collective completion times, as KCCB draws them: the CDF over trials and the
per-trial delay plot.

Plots take numbers, never simulation objects, write one PNG and return None. They build a
`matplotlib.figure.Figure` directly and never import pyplot, so they run headless (PNG output is
rendered by Agg), leave the caller's backend alone, and hold no global figure to close. Every plot
is drawn under matplotlib's default style, whatever the user's matplotlibrc, so output is
deterministic. An axis turns logarithmic when its values span more than LOG_SCALE_SPAN x, which is
when the tail reaches decades beyond the body (retransmission timeouts, pauses). A line of more than
MAX_LINE_POINTS points is thinned to what the figure can show (a million-trial run draws no more
than a thousand-pixel figure holds): the delay plot keeps each bin's lowest and highest trial, so
every spike stays; the CDF keeps evenly spaced ranks, the first and the last.
"""

from pathlib import Path

import matplotlib.style
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from fabricsim.stats import PERCENTILES, ecdf, latency_summary, percentile_key

LOG_SCALE_SPAN = 100
MAX_LINE_POINTS = 20_000
FIGURE_SIZE_IN = (8, 5)
DPI = 120
_MARKER_COLORS = ("tab:green", "tab:olive", "tab:orange", "tab:red", "tab:purple")


def use_log_scale(values) -> bool:
    """True when positive values span more than LOG_SCALE_SPAN x (max / min)."""
    values = np.asarray(values, dtype=float)
    if values.size == 0 or values.min() <= 0:
        return False
    return bool(values.max() / values.min() > LOG_SCALE_SPAN)


def _format_us(time_us: float) -> str:
    """A duration in microseconds, in the unit that reads best, to four significant digits (close
    percentiles stay distinguishable): 812.0 us, 14.20 ms, 4.295 s."""
    if time_us >= 1e6:
        return f"{time_us / 1e6:#.4g} s"
    if time_us >= 1e3:
        return f"{time_us / 1e3:#.4g} ms"
    return f"{time_us:#.4g} us"


def new_figure(title: str, subtitle: str) -> tuple[Figure, Axes]:
    fig = Figure(figsize=FIGURE_SIZE_IN, dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    fig.suptitle(title, fontsize=13)
    ax.set_title(subtitle, fontsize=10, color="0.35", pad=10)
    ax.grid(True, which="major", alpha=0.4)
    ax.grid(True, which="minor", alpha=0.15)
    return fig, ax


def save_figure(fig: Figure, path) -> None:
    fig.savefig(Path(path), dpi=DPI, format="png")


def plot_cdf(latency_us, path, title: str, subtitle: str) -> None:
    """CDF of completion times over the successful trials, with dashed markers at the tail
    percentiles and the max. Raises ValueError when there is no successful trial."""
    summary_us = latency_summary(latency_us)
    markers = [(f"p{p:g}", summary_us[percentile_key(p)]) for p in PERCENTILES]
    markers.append(("max", summary_us["max"]))
    with matplotlib.style.context("default"):
        fig, ax = new_figure(title, subtitle)
        draw_ecdf(ax, latency_us, "tab:blue", f"{np.size(latency_us)} trials")
        for (name, value_us), color in zip(markers, _MARKER_COLORS):
            ax.axvline(value_us, color=color, linestyle="--", linewidth=1,
                       label=f"{name} = {_format_us(value_us)}")
        finish_cdf_axes(ax, latency_us)
        save_figure(fig, path)


def finish_cdf_axes(ax: Axes, latency_us) -> None:
    """Axes of a CDF of completion times: log x when ``latency_us`` spans decades, fraction 0..1."""
    if use_log_scale(latency_us):
        ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("completion time (us)")
    ax.set_ylabel("cumulative fraction of trials")
    ax.legend(loc="lower right", fontsize=9)


def draw_ecdf(ax: Axes, latency_us, color: str, label: str) -> None:
    """The empirical CDF of completion times as a step line from 0 to 1 on `ax`."""
    latency_sorted_us, fraction = ecdf(latency_us)
    if latency_sorted_us.size > MAX_LINE_POINTS:
        kept = np.unique(np.linspace(0, latency_sorted_us.size - 1, MAX_LINE_POINTS).round().astype(int))
        latency_sorted_us, fraction = latency_sorted_us[kept], fraction[kept]
    ax.step(
        np.concatenate(([latency_sorted_us[0]], latency_sorted_us)),
        np.concatenate(([0.0], fraction)),
        where="post",
        color=color,
        linewidth=1.5,
        label=label,
    )


def plot_delay(trial_index, latency_us, failed_mask, path, title: str, subtitle: str) -> None:
    """Completion time of each trial against its index, with the median as a dashed line; failed
    trials (whose latency is ignored) are red crosses on the top edge of the axis."""
    with matplotlib.style.context("default"):
        fig, ax = new_figure(title, subtitle)
        draw_delay(ax, trial_index, latency_us, failed_mask)
        fig.legend(loc="outside lower center", ncols=3, fontsize=9)
        save_figure(fig, path)


def _extremes_by_bin(values: np.ndarray) -> np.ndarray:
    """Positions of the points of a line to draw: every one, or beyond MAX_LINE_POINTS the lowest and
    the highest of each of MAX_LINE_POINTS / 2 runs of consecutive points."""
    if values.size <= MAX_LINE_POINTS:
        return np.arange(values.size)
    width = -(-values.size // (MAX_LINE_POINTS // 2))
    runs = np.full(width * -(-values.size // width), np.nan)
    runs[:values.size] = values
    runs = runs.reshape(-1, width)
    starts = np.arange(len(runs)) * width
    return np.unique(np.concatenate((starts + np.nanargmin(runs, axis=1), starts + np.nanargmax(runs, axis=1))))


def draw_delay(ax: Axes, trial_index, latency_us, failed_mask) -> None:
    """The per-trial delay picture of plot_delay, drawn on `ax`."""
    trial_index = np.asarray(trial_index)
    latency_us = np.asarray(latency_us, dtype=float)
    failed_mask = np.asarray(failed_mask, dtype=bool)
    if not trial_index.shape == latency_us.shape == failed_mask.shape:
        raise ValueError(
            "trial_index, latency_us and failed_mask must have the same length, got "
            f"{trial_index.size}, {latency_us.size}, {failed_mask.size}"
        )
    ok_index, ok_latency_us = trial_index[~failed_mask], latency_us[~failed_mask]
    if ok_latency_us.size:
        drawn = _extremes_by_bin(ok_latency_us)
        ax.plot(ok_index[drawn], ok_latency_us[drawn], color="tab:blue", linewidth=0.6, marker="o",
                markersize=3, label=f"{ok_latency_us.size} completed")
        median_us = float(np.median(ok_latency_us))
        ax.axhline(median_us, color="tab:green", linestyle="--", linewidth=1,
                   label=f"median = {_format_us(median_us)}")
    else:
        ax.set_yticks([])  # every trial failed: no completion time to scale
    if failed_mask.any():
        ax.plot(trial_index[failed_mask], np.ones(int(failed_mask.sum())),
                transform=ax.get_xaxis_transform(), clip_on=False, linestyle="none",
                marker="x", color="red", markersize=7, markeredgewidth=1.5,
                label=f"{int(failed_mask.sum())} failed")
    if use_log_scale(ok_latency_us):
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial index")
    ax.set_ylabel("completion time (us)")


_CAUSE_COLORS = ("tab:blue", "tab:orange", "tab:purple", "tab:red", "black")


def plot_breakdown(trial_index, causes_us: dict[str, np.ndarray], path, title: str, subtitle: str) -> None:
    """The given trials (the slowest, in order) as stacked bars of what each cause added to them.

    `causes_us` maps a cause (contention, jitter, ...) to one value per trial. The axis stays linear,
    as stacked heights must; a cause too thin to see still has its legend entry.
    """
    fig, ax = new_figure(title, subtitle)
    labels = [str(index) for index in trial_index]
    bottom = np.zeros(len(labels))
    for (cause, values), color in zip(causes_us.items(), _CAUSE_COLORS):
        values = np.asarray(values, dtype=float)
        ax.bar(labels, values, bottom=bottom, color=color, label=cause.replace("_", " "), width=0.8)
        bottom += values
    ax.set_xlabel("trial (slowest first)")
    ax.set_ylabel("time beyond ideal (us)")
    ax.tick_params(axis="x", labelrotation=90, labelsize=7)
    ax.legend(loc="upper right", fontsize=8)
    save_figure(fig, path)
