"""Bootstrap confidence intervals of percentiles: they cover the true percentile of a known
distribution about as often as they claim, and the trial-count estimate follows 1/sqrt(n)."""

import numpy as np
import pytest

from fabricsim.output.stats import bootstrap_difference_ci, bootstrap_percentile_ci, trials_to_separate


@pytest.mark.parametrize("percentile", [50, 90])
def test_a_90_percent_interval_covers_the_true_percentile_about_90_percent_of_the_time(percentile):
    rng = np.random.default_rng(7)
    true_value = -np.log(1 - percentile / 100)  # exponential(1) quantile
    repeats = 150
    covered = 0
    for repeat in range(repeats):
        low, high = bootstrap_percentile_ci(rng.exponential(1.0, 200), percentile, 0.9, 500, seed=repeat)
        covered += low <= true_value <= high
    assert 0.8 <= covered / repeats <= 0.97


def test_intervals_are_reproducible_and_narrow_with_more_trials():
    rng = np.random.default_rng(1)
    small, large = rng.normal(100, 10, 50), rng.normal(100, 10, 5000)
    assert bootstrap_percentile_ci(small, 99) == bootstrap_percentile_ci(small, 99)
    width = lambda ci: ci[1] - ci[0]  # noqa: E731
    assert width(bootstrap_percentile_ci(large, 90)) < width(bootstrap_percentile_ci(small, 90)) / 4


def test_difference_interval_holds_zero_for_one_distribution_and_not_for_two():
    rng = np.random.default_rng(2)
    low, high = bootstrap_difference_ci(rng.normal(100, 10, 400), rng.normal(100, 10, 400), 90)
    assert low < 0 < high
    low, high = bootstrap_difference_ci(rng.normal(100, 10, 400), rng.normal(120, 10, 400), 90)
    assert 15 < low < high < 25


def test_identical_values_give_a_point_interval():
    assert bootstrap_percentile_ci(np.full(20, 3.5), 99) == (3.5, 3.5)


def test_trials_to_separate_scales_as_the_square_of_the_interval_reach():
    # an interval reaching 2x the difference past it needs 4x the trials to shrink to the difference
    assert trials_to_separate(200, 10.0, -10.0, 30.0, 99) == 800
    assert trials_to_separate(200, -10.0, -30.0, 10.0, 99) == 800
    assert trials_to_separate(20, 10.0, 5.0, 15.0, 99) == 100  # but one trial beyond p99 at least
    assert trials_to_separate(20, 0.0, -1.0, 1.0, 99) is None
