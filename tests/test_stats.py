"""Tail percentiles, nccl-tests bandwidth factors and the empirical CDF against hand-computed values."""

import numpy as np
import pytest

from fabricsim.output.stats import (
    PERCENTILES,
    algbw_GBps,
    busbw_factor,
    busbw_GBps,
    ccdf,
    ecdf,
    latency_summary,
    percentile_key,
    trials_needed,
    unsupported_percentiles,
)


def test_summary_of_1_to_1000_matches_linear_interpolation_by_hand():
    # Position p/100 x (n - 1) in the sorted values: p90 -> 899.1, between 900 and 901.
    summary = latency_summary(np.arange(1, 1001))
    assert summary == pytest.approx(
        {"min": 1.0, "mean": 500.5, "p50": 500.5, "p90": 900.1, "p99": 990.01, "p999": 999.001, "max": 1000.0}
    )
    assert all(type(value) is float for value in summary.values())


def test_summary_ignores_input_order_and_handles_one_trial():
    assert latency_summary(np.array([30.0, 10.0, 20.0]))["p50"] == 20.0
    assert latency_summary(np.array([7.0])) == {"min": 7.0, "mean": 7.0, "p50": 7.0, "p90": None, "p99": None,
                                                "p999": None, "max": 7.0}


@pytest.mark.parametrize(("trials", "missing"), [
    (8, {"p90": "needs 10 trials, got 8", "p99": "needs 100 trials, got 8", "p999": "needs 1000 trials, got 8"}),
    (100, {"p999": "needs 1000 trials, got 100"}),
    (999, {"p999": "needs 1000 trials, got 999"}),
    (1000, {}),
])
def test_a_percentile_needs_one_trial_beyond_it_on_average(trials, missing):
    assert [trials_needed(p) for p in PERCENTILES] == [1, 10, 100, 1000]
    assert unsupported_percentiles(trials) == missing
    summary = latency_summary(np.arange(trials, dtype=float))
    assert {key for key, value in summary.items() if value is None} == set(missing)


def test_ccdf_puts_the_slowest_of_n_at_one_over_n():
    x_sorted, at_or_above = ccdf(np.array([3.0, 1.0, 2.0, 2.0]))
    np.testing.assert_array_equal(x_sorted, [1.0, 2.0, 2.0, 3.0])
    np.testing.assert_allclose(at_or_above, [1.0, 0.75, 0.5, 0.25])  # the slowest of 4 at 1/4


def test_summary_keys_follow_percentiles():
    assert [percentile_key(p) for p in PERCENTILES] == ["p50", "p90", "p99", "p999"]


def test_summary_of_no_trials_raises():
    with pytest.raises(ValueError, match="no successful trials"):
        latency_summary(np.array([]))


def test_summary_rejects_nan():
    with pytest.raises(ValueError, match="NaN"):
        latency_summary(np.array([1.0, np.nan]))


@pytest.mark.parametrize(
    ("op", "ranks", "factor"),
    [
        ("all_reduce", 8, 1.75),
        ("all_reduce", 2, 1.0),
        ("all_gather", 8, 0.875),
        ("reduce_scatter", 4, 0.75),
        ("all_to_all", 16, 15 / 16),
        ("broadcast", 8, 1.0),
        ("reduce", 8, 1.0),
        ("send_recv", 2, 1.0),
        ("gather", 8, 1.0),
        ("scatter", 8, 1.0),
    ],
)
def test_busbw_factor_matches_nccl_tests_table(op, ranks, factor):
    assert busbw_factor(op, ranks) == pytest.approx(factor)


def test_busbw_factor_rejects_unknown_op_and_bad_ranks():
    with pytest.raises(ValueError, match="allreduce"):
        busbw_factor("allreduce", 8)
    with pytest.raises(ValueError, match="ranks"):
        busbw_factor("all_reduce", 0)


def test_algbw_units_are_1e9_bytes_per_second():
    assert algbw_GBps(1e9, 1e6) == pytest.approx(1.0)  # 1 GB in 1 s
    assert algbw_GBps(4096, 1.0) == pytest.approx(4.096)  # 4096 B in 1 us


def test_bandwidths_are_vectorised():
    size_bytes = np.array([1e6, 1e9])
    time_us = np.array([1e3, 1e4])
    np.testing.assert_allclose(algbw_GBps(size_bytes, time_us), [1.0, 100.0])
    np.testing.assert_allclose(busbw_GBps("all_reduce", 8, size_bytes, time_us), [1.75, 175.0])


def test_ecdf_sorts_and_steps_by_one_over_n():
    x_sorted, fraction = ecdf(np.array([3.0, 1.0, 2.0, 2.0]))
    np.testing.assert_array_equal(x_sorted, [1.0, 2.0, 2.0, 3.0])
    np.testing.assert_allclose(fraction, [0.25, 0.5, 0.75, 1.0])


def test_ecdf_is_monotone_and_ends_at_one():
    x_sorted, fraction = ecdf(np.random.default_rng(0).lognormal(size=1000))
    assert np.all(np.diff(x_sorted) >= 0)
    assert np.all(np.diff(fraction) > 0)
    assert fraction[-1] == 1.0
