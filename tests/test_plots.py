"""The CDF, CCDF, delay and breakdown pictures: valid PNGs of the fixed size; on data with known
outliers, the numbers the plots compute (axis limits, the artists' data), not pixels."""

import matplotlib.image
import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from fabricsim.output.breakdown_plot import PART_COLORS, breakdown_figure
from fabricsim.output.compare_plots import compare_tail_figure
from fabricsim.records import PARTS
from fabricsim.output.plots import (DPI, FIGURE_SIZE_IN, MAX_LINE_POINTS, ccdf_figure, cdf_figure, delay_figure, draw_delay,
                             draw_ecdf, plot_cdf, plot_delay, use_log_scale)
from fabricsim.units import format_time_us

EXPECTED_SHAPE = (FIGURE_SIZE_IN[1] * DPI, FIGURE_SIZE_IN[0] * DPI, 4)  # rows, columns, RGBA


@pytest.fixture
def latency_us():
    """200 trials near 14 ms with two 4.3 s retransmission-timeout tails."""
    latency_us = np.random.default_rng(1).normal(14_000, 800, 200)
    latency_us[[30, 150]] += 4.29e6
    return latency_us


def test_cdf_is_a_png_of_the_fixed_size(tmp_path, latency_us):
    path = tmp_path / "cdf.png"
    assert plot_cdf(latency_us, path, "Data parallel", "all_reduce, 429 KiB, 4 ranks") is None
    assert matplotlib.image.imread(path).shape == EXPECTED_SHAPE


def test_delay_is_a_png_of_the_fixed_size(tmp_path, latency_us):
    failed_mask = np.zeros(latency_us.size, dtype=bool)
    failed_mask[[5, 60]] = True
    path = tmp_path / "delay.png"
    plot_delay(np.arange(latency_us.size), latency_us, failed_mask, path, "Data parallel", "4 ranks")
    assert matplotlib.image.imread(path).shape == EXPECTED_SHAPE


def test_delay_draws_a_run_where_every_trial_failed(tmp_path):
    path = tmp_path / "delay.png"
    plot_delay(np.arange(4), np.full(4, np.nan), np.ones(4, dtype=bool), path, "all failed", "")
    assert matplotlib.image.imread(path).shape == EXPECTED_SHAPE


def test_plots_are_deterministic(tmp_path, latency_us):
    plot_cdf(latency_us, tmp_path / "a.png", "t", "s")
    plot_cdf(latency_us, tmp_path / "b.png", "t", "s")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_cdf_of_no_trials_raises_and_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match="no successful trials"):
        plot_cdf(np.array([]), tmp_path / "cdf.png", "t", "s")
    assert not (tmp_path / "cdf.png").exists()


def test_delay_rejects_arrays_of_different_lengths(tmp_path):
    with pytest.raises(ValueError, match="same length"):
        plot_delay(np.arange(3), np.ones(3), np.zeros(2, dtype=bool), tmp_path / "d.png", "t", "s")


def test_long_tail_uses_log_scale(latency_us):
    assert use_log_scale(latency_us)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1.0, 100.0], False),  # exactly 100x: still linear
        ([1.0, 100.1], True),
        ([14_000.0, 16_000.0], False),
        ([0.0, 1e6], False),  # log needs positive values
        ([], False),
    ],
)
def test_log_scale_threshold(values, expected):
    assert use_log_scale(values) is expected


@pytest.mark.parametrize(
    ("time_us", "text"), [(812.0, "812.0 us"), (14_200.0, "14.20 ms"), (4.29e6, "4.290 s"), (1599.74, "1.600 ms")]
)
def test_durations_print_in_a_readable_unit(time_us, text):
    assert format_time_us(time_us) == text


def test_a_million_trials_draw_a_thinned_line_that_keeps_every_spike():
    """Past MAX_LINE_POINTS the delay line keeps each bin's extremes: the slowest and fastest trials
    are still drawn, and the CDF keeps its first and last points."""
    rng = np.random.default_rng(3)
    latency_us = rng.lognormal(7, 0.1, 10**6)
    latency_us[[12_345, 777_777]] = [5e6, 1.0]  # one timeout spike, one impossibly fast trial
    ax = Figure().add_subplot()
    draw_delay(ax, np.arange(latency_us.size), latency_us, np.zeros(latency_us.size, dtype=bool))
    x, y = ax.lines[0].get_data()
    assert len(x) <= MAX_LINE_POINTS
    assert {12_345, 777_777} <= set(x.tolist()) and y.max() == 5e6 and y.min() == 1.0
    draw_ecdf(ax, latency_us, "tab:blue", "cdf")
    x, y = ax.lines[-1].get_data()
    assert len(x) <= MAX_LINE_POINTS + 1 and x.min() == 1.0 and x.max() == 5e6 and y[-1] == 1.0


def _curves(ax):
    """The data lines of an axis (not the slashes of a broken axis, nor empty legend-only lines)."""
    return [line for line in ax.lines if line.get_gid() != "break" and len(line.get_xdata()) > 2]


@pytest.fixture
def healthy_2000():
    """2,000 trials of a 1.6 ms body with one 4.3 s retransmission timeout, as the main scenario."""
    latency_us = np.random.default_rng(7).lognormal(np.log(1600), 0.02, 2000)
    latency_us[124] = 4.2966e6
    return latency_us


def test_cdf_body_spans_most_of_its_axis_and_the_outlier_gets_its_own_panel(healthy_2000):
    fig = cdf_figure(healthy_2000, "t", "s", causes=np.where(np.arange(2000) == 124, "timeout", "jitter"))
    body, outliers = fig.axes
    body_ms = np.delete(healthy_2000, 124) / 1e3
    low, high = body.get_xlim()
    assert (body_ms.max() - body_ms.min()) / (high - low) > 0.9 and body.get_xscale() == "linear"
    assert outliers.get_xlim()[0] < 4296.5 < outliers.get_xlim()[1]
    assert fig.get_supxlabel() == "completion time (ms)"
    labels = body.get_legend_handles_labels()[1]
    assert any(label.startswith("p99.9 = ") for label in labels)
    assert "max = 4296.600 ms" in labels
    notes = [child.get_text() for child in outliers.texts]
    assert notes == ["1 trial, 4.297 s:\nretransmission timeout"]


def test_percentile_markers_absent_when_the_count_is_too_small():
    latency_us = np.random.default_rng(0).normal(100_000, 5_000, 8)
    labels = cdf_figure(latency_us, "t", "s").axes[0].get_legend_handles_labels()[1]
    marked = {label.split(" = ")[0] for label in labels if " = " in label}
    assert marked == {"p50", "max"}
    assert "p90, p99, p99.9 need 10, 100, 1000 trials (have 8)" in labels
    guides = ccdf_figure(latency_us, "t", "s").axes[0].get_legend_handles_labels()[1]
    assert not any(label.startswith("p99") and " = " in label for label in guides)


def test_ccdf_puts_the_slowest_trial_at_one_over_n_and_shades_below(healthy_2000):
    fig = ccdf_figure(healthy_2000, "t", "s")
    for ax in fig.axes:
        (curve,) = _curves(ax)
        x, y = curve.get_data()
        assert curve.get_drawstyle() == "steps-pre"  # each level held up to and including its trial
        assert x[-1] == pytest.approx(healthy_2000.max() / 1e3) and y[-1] == 1 / 2000
        assert y[0] == 1.0 and y[-2] == 2 / 2000
        (shade,) = [patch for patch in ax.patches if patch.get_gid() == "unresolved"]
        assert shade.get_y() == ax.get_ylim()[0] < shade.get_y() + shade.get_height() == pytest.approx(1 / 2000)
        assert ax.get_yscale() == "log"


def test_compare_tail_steps_are_not_one_trial_off(healthy_2000):
    fig = compare_tail_figure({"a": healthy_2000, "b": healthy_2000[:100] * 2}, "t", "s")
    (a, b) = _curves(fig.axes[0])
    assert a.get_drawstyle() == b.get_drawstyle() == "steps-pre"
    assert a.get_ydata()[-1] == 1 / 2000 and b.get_ydata()[-1] == 1 / 100
    assert a.get_xdata()[-1] == pytest.approx(4296.6)  # one unit, ms, for both: by the smaller median
    assert fig.axes[0].get_xlabel() == "completion time (ms)"


def test_delay_keeps_the_body_readable_beside_an_outlier(healthy_2000):
    failed = np.zeros(2000, dtype=bool)
    failed[[5, 60]] = True
    fig = delay_figure(np.arange(2000), healthy_2000, failed, "t", "s")
    outliers, body = fig.axes
    ok_body_ms = np.delete(healthy_2000, [5, 60, 124]) / 1e3
    low, high = body.get_ylim()
    assert (ok_body_ms.max() - ok_body_ms.min()) / (high - low) > 0.9
    dots = _curves(body)[0]
    assert dots.get_markersize() <= 2 and dots.get_linewidth() == 0  # 2,000 trials: small dots, no line
    crosses = [line for line in outliers.lines if line.get_marker() == "x"]
    assert crosses[0].get_color() == "magenta" and list(crosses[0].get_xdata()) == [5, 60]


def test_breakdown_measures_slow_trials_against_the_median_trial():
    median_parts_us = np.array([1500.0, 0, 20, 0, 0, 0])  # ideal, contention, jitter, ...
    excess_us = np.array([[0, 0, 5, 0, 4.2e6, 0], [0, 0, 90, 10, 0, 0], [0, 0, 50, -5, 0, 0]])
    latency_us = median_parts_us.sum() + excess_us.sum(axis=1)
    fig = breakdown_figure(7, median_parts_us, [124, 3, 9], latency_us, excess_us, [False, False, True], "t", "s")
    reference, slow, outliers = fig.axes
    assert [tick.get_text() for tick in reference.get_xticklabels()] == ["7\nmedian"]
    assert sum(bar.get_height() for bar in reference.patches) == pytest.approx(1.52)  # ms: the median trial
    jitter = [bar.get_height() for bar in slow.patches if bar.get_facecolor() == to_rgba(PART_COLORS["jitter"])]
    assert jitter == pytest.approx([0.09, 0.05])
    assert all(bar.get_height() for bar in slow.patches)  # a part a trial spent nothing on draws no bar
    assert slow.get_ylim()[0] < -0.005  # the part below the median's stacks down
    net = [line for line in slow.lines if line.get_marker() == "_"][0]
    assert net.get_ydata() == pytest.approx([0.1, 0.045])
    assert outliers.get_ylim()[1] > 4200 and slow.get_ylim()[1] < 1  # its own scale
    assert [tick.get_color() for tick in slow.get_xticklabels()] == ["black", "magenta"]
