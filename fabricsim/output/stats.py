"""Statistics of collective completion times: tail percentiles, the empirical CDF, the
nccl-tests bandwidth figures, and bootstrap confidence intervals of percentiles.

All functions are pure functions of numbers or numpy arrays. Bandwidths follow the nccl-tests
conventions (NVIDIA/nccl-tests, doc/PERFORMANCE.md): algbw = S / t with 1 GB = 1e9 B, and
busbw = algbw x a per-collective factor that makes it comparable to the link bandwidth.
"""

import math

import numpy as np

PERCENTILES = (50, 90, 99, 99.9)

# busbw / algbw per collective, n = ranks (nccl-tests doc/PERFORMANCE.md; gather and scatter
# move each rank's share once, like broadcast and reduce).
_BUSBW_FACTORS = {
    "all_reduce": lambda n: 2 * (n - 1) / n,
    "all_gather": lambda n: (n - 1) / n,
    "reduce_scatter": lambda n: (n - 1) / n,
    "all_to_all": lambda n: (n - 1) / n,
    "broadcast": lambda n: 1.0,
    "reduce": lambda n: 1.0,
    "send_recv": lambda n: 1.0,
    "gather": lambda n: 1.0,
    "scatter": lambda n: 1.0,
}


def percentile_key(percentile: float) -> str:
    """Name of a percentile in a summary: 50 -> "p50", 99.9 -> "p999"."""
    return "p" + f"{percentile:g}".replace(".", "")


def trials_needed(percentile: float) -> int:
    """Trials for one of them, on average, to lie beyond the percentile: 10 for p90, 100 for p99,
    1000 for p99.9; the median (and below) of any trial count."""
    return 1 if percentile <= 50 else math.ceil(round(100 / (100 - percentile), 9))


def unsupported_percentiles(trials: int) -> dict[str, str]:
    """The PERCENTILES that `trials` trials cannot support, by summary key, each with its reason."""
    return {percentile_key(p): f"needs {trials_needed(p)} trials, got {trials}"
            for p in PERCENTILES if trials < trials_needed(p)}


def latency_summary(latency_us: np.ndarray) -> dict[str, float | None]:
    """Min, mean, the PERCENTILES and max of the completion times of the successful trials; a
    percentile the trial count does not support (see ``trials_needed``) is None.

    Percentiles use numpy's default "linear" method: the p-th percentile of n sorted values sits at
    position p/100 x (n - 1), interpolated linearly between its two neighbours (so 1..100 gives
    p50 = 50.5, p90 = 90.1). Raises ValueError when there is no trial to summarise (all failed) or a
    value is not finite; failed trials are the caller's to count and leave out.
    """
    latency_us = np.asarray(latency_us, dtype=float)
    if latency_us.size == 0:
        raise ValueError("no successful trials")
    if not np.all(np.isfinite(latency_us)):
        raise ValueError("latency_us holds NaN or infinite values; leave failed trials out")
    percentile_values_us = np.percentile(latency_us, PERCENTILES)
    summary = {"min": float(latency_us.min()), "mean": float(latency_us.mean())}
    for percentile, value_us in zip(PERCENTILES, percentile_values_us):
        supported = latency_us.size >= trials_needed(percentile)
        summary[percentile_key(percentile)] = float(value_us) if supported else None
    summary["max"] = float(latency_us.max())
    return summary


def busbw_factor(op: str, ranks: int) -> float:
    """The nccl-tests factor turning algbw into busbw for collective `op` over `ranks` ranks."""
    if op not in _BUSBW_FACTORS:
        raise ValueError(f"unknown collective {op!r}; expected one of {', '.join(_BUSBW_FACTORS)}")
    if ranks < 1:
        raise ValueError(f"ranks must be at least 1, got {ranks}")
    return float(_BUSBW_FACTORS[op](ranks))


def algbw_GBps(size_bytes, time_us):
    """Algorithm bandwidth S / t in GB/s (1 GB = 1e9 B); works element-wise on numpy arrays."""
    return np.asarray(size_bytes, dtype=float) / np.asarray(time_us, dtype=float) / 1e3


def busbw_GBps(op: str, ranks: int, size_bytes, time_us):
    """Bus bandwidth in GB/s: algbw x the nccl-tests factor of `op` over `ranks` ranks."""
    return algbw_GBps(size_bytes, time_us) * busbw_factor(op, ranks)


def ecdf(values) -> tuple[np.ndarray, np.ndarray]:
    """Empirical CDF: the sorted values and, for the i-th of them (i = 1..n), the fraction i / n."""
    values_sorted = np.sort(np.asarray(values, dtype=float))
    fraction = np.arange(1, values_sorted.size + 1) / values_sorted.size
    return values_sorted, fraction


def ccdf(values) -> tuple[np.ndarray, np.ndarray]:
    """Empirical complementary CDF, the fraction of values at or above each sorted value: the
    i-th of n (i = 1..n) at (n - i + 1) / n, so the fastest at 1 and the slowest at 1 / n. As a
    function of x it holds each level up to and including its value (a "pre" step)."""
    values_sorted = np.sort(np.asarray(values, dtype=float))
    return values_sorted, np.arange(values_sorted.size, 0, -1) / values_sorted.size


def bootstrap_percentile_ci(values, percentile: float, confidence: float = 0.95,
                            resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the `percentile`-th percentile of `values`:
    the central `confidence` range of that percentile over `resamples` resamples drawn with
    replacement. The seed fixes the resamples, so the interval is reproducible."""
    estimates = _bootstrap_percentiles(values, percentile, resamples, np.random.default_rng(seed))
    return _central_range(estimates, confidence)


def bootstrap_difference_ci(baseline, other, percentile: float, confidence: float = 0.95,
                            resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of percentile(other) - percentile(baseline) for two
    independent samples, each resampled on its own."""
    rng = np.random.default_rng(seed)
    differences = (_bootstrap_percentiles(other, percentile, resamples, rng)
                   - _bootstrap_percentiles(baseline, percentile, resamples, rng))
    return _central_range(differences, confidence)


def trials_to_separate(trials: int, difference: float, ci_low: float, ci_high: float,
                       percentile: float) -> int | None:
    """Trials per sample at which the confidence interval [ci_low, ci_high] of a difference of
    percentiles, measured at `trials` trials and shrinking as 1/sqrt(trials), would stop reaching
    zero: an estimate that takes the observed difference as the true one, and never fewer than the
    100 / (100 - percentile) trials that put one trial, on average, beyond the percentile. None when
    the difference is zero."""
    if difference == 0:
        return None
    reach = difference - ci_low if difference > 0 else ci_high - difference
    return max(trials, trials_needed(percentile), math.ceil(trials * (reach / abs(difference)) ** 2))


def _bootstrap_percentiles(values, percentile: float, resamples: int, rng: np.random.Generator) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        raise ValueError("no values to resample")
    rows_per_block = max(1, 2**22 // values.size)  # bounds memory at ~32 MB per block
    estimates = [np.percentile(values[rng.integers(0, values.size, (min(rows_per_block, resamples - done),
                                                                    values.size))], percentile, axis=1)
                 for done in range(0, resamples, rows_per_block)]
    return np.concatenate(estimates)


def _central_range(estimates: np.ndarray, confidence: float) -> tuple[float, float]:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie between 0 and 1, got {confidence}")
    tail = (1 - confidence) / 2
    low, high = np.quantile(estimates, [tail, 1 - tail])
    return float(low), float(high)
