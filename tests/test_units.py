"""Unit strings parse to base units, and anything else is refused with what was expected."""

import pytest

from fabricsim.units import UnitError, format_bytes, parse_bytes, parse_rate_bps, parse_time_ps


@pytest.mark.parametrize("text, nbytes", [
    ("64MiB", 64 * 2**20), ("1.5KB", 1500), (4096, 4096), ("1GiB", 2**30), ("2 KiB", 2048),
    ("1e3", 1000), ("0", 0), ("6438912", 6438912),
])
def test_sizes(text, nbytes):
    assert parse_bytes(text) == nbytes


@pytest.mark.parametrize("text, bps", [
    ("100Gbps", 100e9), ("25GB/s", 200e9), ("400 Gbit/s", 400e9), ("1.5Tbps", 1.5e12)
])
def test_rates(text, bps):
    assert parse_rate_bps(text) == pytest.approx(bps, rel=0, abs=1e-3)


@pytest.mark.parametrize("text, ps", [
    ("1.5us", 1_500_000), ("600ns", 600_000), ("4ms", 4_000_000_000), ("2s", 2 * 10**12), ("250ps", 250),
])
def test_times(text, ps):
    assert parse_time_ps(text) == ps


@pytest.mark.parametrize("parse, text", [
    (parse_bytes, "1.5B"), (parse_bytes, "100Gbps"), (parse_bytes, "-3"), (parse_bytes, True),
    (parse_rate_bps, "100Gb"), (parse_rate_bps, "fast"), (parse_time_ps, "5"), (parse_time_ps, "1.5 hours"),
    (parse_time_ps, None), (parse_rate_bps, -1), (parse_time_ps, 250), (parse_rate_bps, 1e9),
])
def test_refused(parse, text):
    with pytest.raises(UnitError, match="got"):
        parse(text)


def test_format_bytes():
    assert format_bytes(6438912) == "6.14 MiB"
    assert format_bytes(512) == "512 B"
