"""The CDF and per-trial delay pictures: valid PNGs of the fixed size, log scales for long tails."""

import matplotlib.image
import numpy as np
import pytest
from matplotlib.figure import Figure

from fabricsim.plots import (DPI, FIGURE_SIZE_IN, MAX_LINE_POINTS, _format_us, draw_delay, draw_ecdf, plot_cdf,
                             plot_delay, use_log_scale)

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
    assert _format_us(time_us) == text


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
