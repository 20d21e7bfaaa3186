"""Pictures of collective completion times, as KCCB draws them and as a tail needs them: the CDF, the
CCDF on a log scale (where p99 and p99.9 live) and the per-trial delay plot.

Plots take numbers, never simulation objects. Each ``*_figure`` function builds a
`matplotlib.figure.Figure` directly (tests read its axes and artists) and each ``plot_*`` writes it as
one PNG; no pyplot, so they run headless, leave the caller's backend alone and hold no global
figure. Every plot is drawn under matplotlib's default style, whatever the user's matplotlibrc, so
output is deterministic.

- Times are shown in one unit chosen by the median (``units.TimeUnit``): axis, legend and labels agree.
- Outliers, trials slower than OUTLIER_FACTOR x the median (a retransmission timeout, a pause), break
  the time axis in two: a wide panel of the body and a narrow one of the outliers, each on its own
  linear scale, so one 4.3 s trial leaves the 1,999 trials of 1.6 ms readable. Given a cause per
  trial, the outliers are annotated with it.
- A percentile is marked only when the trial count supports it (``stats.trials_needed``); the legend
  says what a missing one needs. The CCDF shades the fractions below 1/n, which n trials cannot show.
- Failed trials are drawn in FAILED_COLOR.
- A line of more than MAX_LINE_POINTS points is thinned to what the figure can show: the delay plot
  keeps each bin's lowest and highest trial, so every spike stays; the CDF keeps evenly spaced ranks,
  the first and the last.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import matplotlib.style
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.mathtext import MathTextParser
from matplotlib.ticker import MaxNLocator

from fabricsim.output.stats import PERCENTILES, ccdf, ecdf, latency_summary, percentile_key, trials_needed
from fabricsim.output.tail import PART_WORDS
from fabricsim.units import TimeUnit, format_time_us

LOG_SCALE_SPAN = 100
OUTLIER_FACTOR = 3
MAX_LINE_POINTS = 20_000
MANY_TRIALS = 200  # beyond this, the delay plot draws dots without a joining line
FIGURE_SIZE_IN = (8, 5)
DPI = 120
FAILED_COLOR = "magenta"
_MARKER_COLORS = {"p50": "tab:green", "p90": "tab:olive", "p99": "tab:orange", "p99.9": "tab:red",
                  "max": "tab:purple"}
TAIL_GUIDES = ((99, 1e-2), (99.9, 1e-3))  # the CCDF crosses a percentile at 1 - p/100
_BODY_WIDTH = 4  # width of the body panel over the outliers' panel


def use_log_scale(values) -> bool:
    """True when positive values span more than LOG_SCALE_SPAN x (max / min)."""
    values = np.asarray(values, dtype=float)
    if values.size == 0 or values.min() <= 0:
        return False
    return bool(values.max() / values.min() > LOG_SCALE_SPAN)


def outlier_limit(values) -> float | None:
    """The slowest value of the body when some values are outliers (beyond OUTLIER_FACTOR x the
    median), else None."""
    values = np.asarray(values, dtype=float)
    if not values.size or np.median(values) <= 0:
        return None
    body = values[values <= OUTLIER_FACTOR * np.median(values)]
    return float(body.max()) if body.size < values.size else None


def time_unit(latency_us) -> TimeUnit:
    """The unit the completion times are shown in: by their median."""
    latency_us = np.asarray(latency_us, dtype=float)
    latency_us = latency_us[np.isfinite(latency_us)]
    return TimeUnit.for_typical(float(np.median(latency_us)) if latency_us.size else 1.0)


def new_figure(title: str, subtitle: str) -> Figure:
    """A figure with its title and, on a second smaller line, its subtitle."""
    fig = Figure(figsize=FIGURE_SIZE_IN, dpi=DPI, layout="constrained")
    fig.suptitle(f"{title}\n{subtitle}" if subtitle else title, fontsize=11)
    return fig


def grid(ax: Axes) -> None:
    ax.grid(True, which="major", alpha=0.4)
    ax.grid(True, which="minor", alpha=0.15)


def warm_up() -> None:
    """Build matplotlib's mathtext parser, which the labels of a log axis (10^-3) need, by parsing one
    of them: a painter does it while it waits for the run, so that the CCDF drawn later starts with it
    built, and so do the painters it forks."""
    MathTextParser("agg").parse(r"$\mathdefault{10^{-1}}$", dpi=DPI, prop=FontProperties(size=10))


def save_figure(fig: Figure, path) -> None:
    fig.savefig(Path(path), dpi=DPI, format="png")


def time_panels(fig: Figure, values, axis: str = "x") -> list[Axes]:
    """One axis for `values`, or, when some are outliers, two panels that break the `axis`: the body
    (wide, or tall) and the outliers, each fitted to its own values."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    limit = outlier_limit(values)
    if limit is None:
        ax = fig.add_subplot()
        grid(ax)
        if values.size:
            fit_axis(ax, axis, values)
        return [ax]
    if axis == "x":
        body, outliers = fig.subplots(1, 2, sharey=True, width_ratios=(_BODY_WIDTH, 1))
    else:
        outliers, body = fig.subplots(2, 1, sharex=True, height_ratios=(1, _BODY_WIDTH - 1))
    fig.get_layout_engine().set(wspace=0.01, hspace=0.01, w_pad=0.02, h_pad=0.02)
    for ax, part in ((body, values[values <= limit]), (outliers, values[values > limit])):
        grid(ax)
        fit_axis(ax, axis, part)
    _break_marks(body, outliers, axis)
    return [body, outliers]


def fit_axis(ax: Axes, axis: str, values: np.ndarray) -> None:
    """Limits of `ax`'s `axis` ("x" or "y") around `values`, padded; log when they span decades."""
    low, high = float(values.min()), float(values.max())
    if use_log_scale(values):
        getattr(ax, f"set_{axis}scale")("log")
        getattr(ax, f"set_{axis}lim")(low / 1.3, high * 1.3)
        return
    pad = 0.04 * (high - low) or 0.02 * abs(high) or 1.0
    getattr(ax, f"set_{axis}lim")(low - pad, high + pad)
    plain_ticks(ax, axis)


def plain_ticks(ax: Axes, axis: str) -> None:
    """Ticks of `ax`'s linear `axis` read as they are (4296.56), never as an offset added to small
    ticks (0.56 + 4.296e3)."""
    getattr(ax, f"{axis}axis").get_major_formatter().set_useOffset(False)


def _break_marks(body: Axes, outliers: Axes, axis: str) -> None:
    """Hide the spines where the axis breaks and draw the two slashes of a broken axis."""
    marks = dict(marker=[(-1, -0.5), (1, 0.5)], markersize=10, linestyle="none", color="k", mec="k", mew=1,
                 clip_on=False, gid="break")
    if axis == "x":
        body.spines["right"].set_visible(False)
        outliers.spines["left"].set_visible(False)
        outliers.tick_params(axis="y", which="both", left=False, labelleft=False)
        outliers.xaxis.set_major_locator(MaxNLocator(2))
        body.plot([1, 1], [0, 1], transform=body.transAxes, **marks)
        outliers.plot([0, 0], [0, 1], transform=outliers.transAxes, **marks)
    else:
        body.spines["top"].set_visible(False)
        outliers.spines["bottom"].set_visible(False)
        outliers.tick_params(axis="x", which="both", bottom=False, labelbottom=False)
        outliers.yaxis.set_major_locator(MaxNLocator(3))
        body.plot([0, 1], [1, 1], transform=body.transAxes, **marks)
        outliers.plot([0, 1], [0, 0], transform=outliers.transAxes, **marks)


def percentile_markers(latency_us) -> list[tuple[str, float]]:
    """(name, value in us) of each percentile the trial count supports, then the max."""
    summary_us = latency_summary(latency_us)
    markers = [(f"p{p:g}", summary_us[percentile_key(p)]) for p in PERCENTILES
               if summary_us[percentile_key(p)] is not None]
    return markers + [("max", summary_us["max"])]


def _note_missing_percentiles(ax: Axes, trials: int) -> None:
    """A legend line naming the percentiles `trials` trials cannot support and what they need."""
    missing = [p for p in PERCENTILES if trials < trials_needed(p)]
    if missing:
        needs = ", ".join(f"p{p:g}" for p in missing) + " need " + ", ".join(f"{trials_needed(p)}" for p in missing)
        ax.plot([], [], " ", label=f"{needs} trials (have {trials})")


def _annotate_outliers(ax: Axes, values: np.ndarray, heights: np.ndarray, causes, limit: float,
                       unit: TimeUnit, axis: str) -> None:
    """Label the outliers (values beyond `limit`, in `unit`) on `ax`, one label per cause at the
    slowest of them; `heights` are their positions on the other axis."""
    beyond = np.flatnonzero(values > limit)
    by_cause: dict[str, list[int]] = {}
    for index in beyond[np.argsort(-values[beyond], kind="stable")]:
        by_cause.setdefault(str(causes[index]), []).append(index)
    for order, (cause, members) in enumerate(by_cause.items()):
        slowest = members[0]
        count = f"{len(members)} trials up to" if len(members) > 1 else "1 trial,"
        text = f"{count} {format_time_us(values[slowest] * unit.us)}:\n{PART_WORDS.get(cause, cause)}"
        point = (values[slowest], heights[slowest]) if axis == "x" else (heights[slowest], values[slowest])
        across, up = ax.transAxes.inverted().transform(ax.transData.transform(point))
        right, low = axis == "y" and across < 0.5, up < 0.5  # the outliers' panel is narrow: text to its left
        step = (28 + 30 * order) if axis == "x" else 14 * order
        # away from the nearer edge of the panel (above a low point, below a high one), so it stays inside
        offset = (12 if right else -12, step if low else -step)
        note = ax.annotate(text, point, xytext=offset, textcoords="offset points", ha="left" if right else "right",
                           va="bottom" if low else "top", fontsize=8,
                           arrowprops=dict(arrowstyle="->", color="0.3", linewidth=0.8), annotation_clip=False,
                           bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="0.7", alpha=0.9))
        note.set_in_layout(False)


def _finish_curve(fig: Figure, axes: list[Axes], values: np.ndarray, unit: TimeUnit, causes, failed: int,
                  complementary: bool) -> None:
    """What a CDF (or, `complementary`, a CCDF) has besides its curve: the legend with the missing
    percentiles and the failed trials, the axis labels, and the outliers labelled with their causes."""
    _note_missing_percentiles(axes[0], values.size)
    _note_failed(axes[0], failed)
    axes[0].set_ylabel("fraction of trials at or above" if complementary else "cumulative fraction of trials")
    _time_label(fig, axes, unit, "x")
    axes[0].legend(loc="upper right" if complementary else "lower right", fontsize=8)
    if causes is None or len(axes) < 2:
        return
    rank = np.empty(values.size)
    rank[np.argsort(values, kind="stable")] = np.arange(1, values.size + 1)
    fraction = (values.size + 1 - rank if complementary else rank) / values.size
    _annotate_outliers(axes[1], values, fraction, causes, outlier_limit(values), unit, "x")


def _time_label(fig: Figure, axes: list[Axes], unit: TimeUnit, axis: str) -> None:
    text = f"completion time ({unit.name})"
    if len(axes) == 1:
        getattr(axes[0], f"set_{axis}label")(text)
    else:
        (fig.supxlabel if axis == "x" else fig.supylabel)(text, fontsize=10)


@contextmanager
def _curve_panels(latency_us: np.ndarray, title: str, subtitle: str) -> Iterator[tuple[Figure, list[Axes], TimeUnit,
                                                                                      np.ndarray]]:
    """A CDF or CCDF figure under way, in the default style: the figure, its time panels (outliers on
    their own), the time unit and the times in it."""
    unit = time_unit(latency_us)
    values = latency_us / unit.us
    with matplotlib.style.context("default"):
        fig = new_figure(title, subtitle)
        yield fig, time_panels(fig, values, "x"), unit, values


def cdf_figure(latency_us, title: str, subtitle: str, causes=None, failed: int = 0) -> Figure:
    """CDF of completion times over the successful trials, with dashed markers at the supported
    percentiles and the max; outliers on their own panel, labelled with `causes` (one per trial)
    when given; the `failed` trials counted in the legend. Raises ValueError when there is no
    successful trial."""
    latency_us = np.asarray(latency_us, dtype=float)
    markers = percentile_markers(latency_us)
    with _curve_panels(latency_us, title, subtitle) as (fig, axes, unit, values):
        for ax in axes:
            draw_ecdf(ax, values, "tab:blue", f"{values.size} trials")
            for name, value_us in markers:
                ax.axvline(value_us / unit.us, color=_MARKER_COLORS[name], linestyle="--", linewidth=1,
                           label=f"{name} = {unit.text(value_us)}")
            ax.set_ylim(0, 1.02)
        _finish_curve(fig, axes, values, unit, causes, failed, complementary=False)
    return fig


def plot_cdf(latency_us, path, title: str, subtitle: str, causes=None, failed: int = 0) -> None:
    save_figure(cdf_figure(latency_us, title, subtitle, causes, failed), path)


def _note_failed(ax: Axes, failed: int) -> None:
    """A legend line in FAILED_COLOR counting the trials that never completed (left out of the curve)."""
    if failed:
        ax.plot([], [], linestyle="none", marker="x", color=FAILED_COLOR,
                label=f"{failed} failed (never completed; not in the curve)")


def ccdf_figure(latency_us, title: str, subtitle: str, causes=None, failed: int = 0) -> Figure:
    """The fraction of completed trials at or above each completion time, on a log axis: the slowest
    of n at 1/n, the fractions below 1/n shaded as not enough trials, guides where the curve crosses
    its p99 and p99.9 when the trial count supports them. `failed` trials never completed: like the
    percentiles, the curve leaves them out, and the legend counts them in FAILED_COLOR."""
    latency_us = np.asarray(latency_us, dtype=float)
    trials = latency_us.size
    with _curve_panels(latency_us, title, subtitle) as (fig, axes, unit, values):
        for ax in axes:
            draw_ccdf(ax, values, "tab:blue", f"{values.size} completed trials")
            ax.set_yscale("log")
            ax.set_ylim(1 / trials / 3, 1.5)
            shade_unresolved(ax, trials)
        for percentile, fraction in TAIL_GUIDES:
            if trials >= trials_needed(percentile):
                value_us = float(np.percentile(latency_us, percentile))
                for ax in axes:
                    ax.axhline(fraction, color=_MARKER_COLORS[f"p{percentile:g}"], linestyle="--", linewidth=0.9,
                               label=f"p{percentile:g} = {unit.text(value_us)}" if ax is axes[0] else None)
        _finish_curve(fig, axes, values, unit, causes, failed, complementary=True)
    return fig


def plot_ccdf(latency_us, path, title: str, subtitle: str, causes=None, failed: int = 0) -> None:
    save_figure(ccdf_figure(latency_us, title, subtitle, causes, failed), path)


def draw_ecdf(ax: Axes, latency, color: str, label: str) -> None:
    """The empirical CDF of completion times as a step line from 0 to 1 on `ax`."""
    latency_sorted, fraction = _thinned(*ecdf(latency))
    ax.step(np.concatenate(([latency_sorted[0]], latency_sorted)), np.concatenate(([0.0], fraction)),
            where="post", color=color, linewidth=1.5, label=label)


def draw_ccdf(ax: Axes, latency, color: str, label: str) -> None:
    """The empirical CCDF as a step line on `ax`: each level held up to and including its value, so
    the slowest of n sits at 1/n."""
    latency_sorted, at_or_above = _thinned(*ccdf(latency))
    ax.step(latency_sorted, at_or_above, where="pre", color=color, linewidth=1.5, label=label)


def _thinned(latency_sorted: np.ndarray, fraction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A sorted curve's points, or beyond MAX_LINE_POINTS that many of them spread evenly over it."""
    if latency_sorted.size <= MAX_LINE_POINTS:
        return latency_sorted, fraction
    kept = np.unique(np.linspace(0, latency_sorted.size - 1, MAX_LINE_POINTS).round().astype(int))
    return latency_sorted[kept], fraction[kept]


def shade_unresolved(ax: Axes, trials: int) -> None:
    """Shade the fractions below 1/`trials`: no curve of `trials` trials can reach them."""
    ax.axhspan(ax.get_ylim()[0], 1 / trials, color="0.88", zorder=0, gid="unresolved",
               label="below 1/n: not enough trials")


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


def draw_delay(ax: Axes, trial_index, latency, failed_mask, unit: TimeUnit | None = None,
               failed_marks: bool = True, limit: float | None = None) -> None:
    """Each trial's completion time (in `unit`, default us) against its index on `ax`: a line with
    markers, or small dots beyond MANY_TRIALS trials, left out above `limit` (drawn on another panel);
    the median dashed; failed trials (whose latency is ignored) as crosses in FAILED_COLOR on the top
    edge unless `failed_marks` is False."""
    trial_index, latency, failed_mask = _trial_columns(trial_index, latency, failed_mask)
    unit = unit or TimeUnit.for_typical(1.0)
    ok_index, ok_latency = trial_index[~failed_mask], latency[~failed_mask]
    if ok_latency.size:
        drawn = _extremes_by_bin(ok_latency)
        many = ok_latency.size > MANY_TRIALS
        shown = ok_latency[drawn] if limit is None else np.where(ok_latency[drawn] > limit, np.nan, ok_latency[drawn])
        ax.plot(ok_index[drawn], shown, color="tab:blue", linewidth=0 if many else 0.6,
                marker="." if many else "o", markersize=2 if many else 3, label=f"{ok_latency.size} completed")
        median = float(np.median(ok_latency))
        ax.axhline(median, color=_MARKER_COLORS["p50"], linestyle="--", linewidth=1,
                   label=f"median = {unit.text(median * unit.us)}")
    else:
        ax.set_yticks([])  # every trial failed: no completion time to scale
    if failed_marks:
        _failed_marks(ax, trial_index, failed_mask)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _trial_columns(trial_index, latency, failed_mask) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The per-trial columns of a delay plot as arrays, checked to be of one length."""
    trial_index, latency = np.asarray(trial_index), np.asarray(latency, dtype=float)
    failed_mask = np.asarray(failed_mask, dtype=bool)
    if not trial_index.shape == latency.shape == failed_mask.shape:
        raise ValueError(
            "trial_index, latency and failed_mask must have the same length, got "
            f"{trial_index.size}, {latency.size}, {failed_mask.size}"
        )
    return trial_index, latency, failed_mask


def _failed_marks(ax: Axes, trial_index: np.ndarray, failed_mask: np.ndarray) -> None:
    """Failed trials as crosses in FAILED_COLOR on the top edge of `ax`."""
    if failed_mask.any():
        ax.plot(trial_index[failed_mask], np.ones(int(failed_mask.sum())),
                transform=ax.get_xaxis_transform(), clip_on=False, linestyle="none",
                marker="x", color=FAILED_COLOR, markersize=7, markeredgewidth=1.5,
                label=f"{int(failed_mask.sum())} failed (never completed)")


def delay_figure(trial_index, latency_us, failed_mask, title: str, subtitle: str, causes=None) -> Figure:
    """The per-trial delay plot: the body on its own linear scale, the outliers (annotated with
    `causes`, one per trial, when given) on a panel above it."""
    trial_index, latency_us, failed_mask = _trial_columns(trial_index, latency_us, failed_mask)
    ok_us = latency_us[~failed_mask]
    unit = time_unit(ok_us)
    values = latency_us / unit.us
    with matplotlib.style.context("default"):
        fig = new_figure(title, subtitle)
        axes = time_panels(fig, values[~failed_mask], "y")
        body, top = axes[0], axes[-1]
        limit = outlier_limit(values[~failed_mask])
        draw_delay(body, trial_index, values, failed_mask, unit, failed_marks=top is body, limit=limit)
        if top is not body:
            slow = ~failed_mask & (values > limit)
            top.plot(trial_index[slow], values[slow], linestyle="none", marker="o", markersize=4, color="tab:blue")
            _failed_marks(top, trial_index, failed_mask)
            if causes is not None:
                _annotate_outliers(top, values, trial_index.astype(float), np.asarray(causes), limit, unit, "y")
        body.set_xlabel("trial index")
        _time_label(fig, axes, unit, "y")
        fig.legend(*_legend_entries(axes), loc="outside lower center", ncols=3, fontsize=9)
    return fig


def _legend_entries(axes: list[Axes]) -> tuple[list, list]:
    handles, labels = [], []
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    return handles, labels


def plot_delay(trial_index, latency_us, failed_mask, path, title: str, subtitle: str, causes=None) -> None:
    save_figure(delay_figure(trial_index, latency_us, failed_mask, title, subtitle, causes), path)
