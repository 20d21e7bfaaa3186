"""Unit strings parse to base units, and anything else is refused with what was expected."""

from pathlib import Path

import pytest
import yaml

from fabricsim.config import load_scenario
from fabricsim.units import (TimeUnit, UnitError, exact_rate, exact_time, format_bytes, parse_bytes, parse_rate_bps,
                             parse_time_ps)


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


@pytest.mark.parametrize("bps, text", [(1e11, "100Gbps"), (2.4e12, "2.4Tbps"), (3.90625e6, "3.90625Mbps"),
                                       (1e11 / 3, "33333333333.333332bps")])
def test_rates_write_in_the_largest_exact_unit(bps, text):
    assert exact_rate(bps) == text and parse_rate_bps(text) == bps


@pytest.mark.parametrize("ps, text", [(600_000, "600ns"), (10**6, "1us"), (4_096_000, "4096ns"), (0, "0ps"),
                                      (4 * 10**12, "4s"), (1_500_001, "1500001ps")])
def test_times_write_in_the_largest_unit_that_divides_them(ps, text):
    assert exact_time(ps) == text and parse_time_ps(text) == ps


def test_resolved_scenario_reads_in_human_units_and_loads_to_the_same_numbers(tmp_path):
    scenario = load_scenario(Path(__file__).parent.parent / "scenarios" / "tp4_ring_allgather.yaml")
    text = yaml.safe_dump(scenario.resolved(), sort_keys=False)
    assert "bandwidth: 100Gbps" in text and "latency: 600ns" in text and "000000bps" not in text
    path = tmp_path / "scenario.resolved.yaml"
    path.write_text(text)
    assert load_scenario(path) == scenario


@pytest.mark.parametrize("typical_us, value_us, text", [
    (812.0, 812.0, "812.0 us"), (1599.11, 4296541.86, "4296.542 ms"), (104_000, 104_000, "104.0 ms"),
    (4.2e6, 4296541.86, "4.297 s"),
])
def test_one_unit_by_magnitude_for_a_whole_result(typical_us, value_us, text):
    assert TimeUnit.for_typical(typical_us).text(value_us) == text
