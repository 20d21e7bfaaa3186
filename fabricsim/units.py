"""Units: the one place where strings such as "100Gbps", "25GB/s", "1.5us" and "64MiB" become numbers.

Every quantity inside fabricsim is an integer or float in a base unit named by its variable:
bytes (``nbytes``), bits per second (``bandwidth_bps``) and picoseconds (``latency_ps``).
Decimal prefixes (k, M, G, T) are powers of 1000 and binary ones (Ki, Mi, Gi, Ti) powers of 1024,
as in nccl-tests and the IEC standard. A bare number is a size in bytes; rates and times must say
their unit, since a bare "5" could as well mean 5 us as 5 ps. Quantities are finite and within
ranges that keep integer picoseconds in 64 bits: sizes up to 1 PiB, rates from 1 kbps to 1 Pbps,
times up to one day.

Going the other way, completion times are shown in one unit chosen by magnitude (us, ms or s: see
``TimeUnit``), and the resolved scenario writes rates and times in the largest unit that keeps them
exact (``100Gbps``, ``600ns``), so they load back to the same numbers.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_NUMBER = r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
_PREFIX = {"": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
# picoseconds per unit of time: the one place they are written
PS_PER_NS, PS_PER_US, PS_PER_MS, PS_PER_S = 10**3, 10**6, 10**9, 10**12
PS_PER_DAY = 86_400 * PS_PER_S
PS_PER_UNIT = {"ps": 1, "ns": PS_PER_NS, "us": PS_PER_US, "µs": PS_PER_US, "ms": PS_PER_MS, "s": PS_PER_S}
MAX_BYTES = 2**50
MIN_RATE_BPS, MAX_RATE_BPS = 1e3, 1e15
MAX_TIME_PS = PS_PER_DAY

_SIZE_RE = re.compile(rf"^{_NUMBER}\s*(|k|K|M|G|T|Ki|Mi|Gi|Ti)B?$")
_RATE_RE = re.compile(rf"^{_NUMBER}\s*(|k|K|M|G|T)(bps|bit/s|B/s|Bps)$")
_TIME_RE = re.compile(rf"^{_NUMBER}\s*(ps|ns|us|µs|ms|s)$")


class UnitError(ValueError):
    """A quantity string that does not parse; the message says what was expected."""


def _text(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise UnitError(f"a quantity, got {value!r}")
    return str(value).strip()


def parse_bytes(value: object) -> int:
    """'64MiB' -> 67108864, '1.5KB' -> 1500, 4096 -> 4096. Fractions of a byte are refused."""
    match = _SIZE_RE.match(_text(value))
    if not match:
        raise UnitError(f"a size such as 4096, 64KiB or 1.5MB, got {value!r}")
    number, prefix = match.groups()
    quantity = float(number) * _PREFIX[prefix]
    if not quantity <= MAX_BYTES:
        raise UnitError(f"a size from 0 to 1PiB, got {value!r}")
    nbytes = round(quantity)
    if abs(quantity - nbytes) > 1e-9 * max(1.0, quantity):
        raise UnitError(f"a whole number of bytes, got {value!r}")
    return nbytes


def parse_rate_bps(value: object) -> float:
    """'100Gbps' -> 1e11 bits/s, '25GB/s' -> 2e11 bits/s."""
    text = _text(value)
    match = _RATE_RE.match(text)
    if not match:
        raise UnitError(f"a rate such as 100Gbps or 25GB/s, got {value!r}")
    number, prefix, unit = match.groups()
    bits = 8 if unit in ("B/s", "Bps") else 1
    bandwidth_bps = float(number) * _PREFIX[prefix] * bits
    if not MIN_RATE_BPS <= bandwidth_bps <= MAX_RATE_BPS:
        raise UnitError(f"a rate from 1kbps to 1Pbps, got {value!r}")
    return bandwidth_bps


def parse_time_ps(value: object) -> int:
    """'1.5us' -> 1500000 ps, '600ns' -> 600000 ps."""
    text = _text(value)
    match = _TIME_RE.match(text)
    if not match:
        raise UnitError(f"a time such as 600ns, 1.5us or 4ms, got {value!r}")
    number, unit = match.groups()
    return time_within(float(number) * PS_PER_UNIT[unit], MAX_TIME_PS, value)


def time_within(time_ps: float, max_ps: int, value: object) -> int:
    """A time in whole picoseconds, refused (UnitError) beyond max_ps."""
    if not time_ps <= max_ps:
        raise UnitError(f"a time from 0ps to {exact_time(max_ps)}, got {value!r}")
    return round(time_ps)


def format_bytes(nbytes: int) -> str:
    """6438912 -> '6.14 MiB' (for titles and tables)."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{nbytes} B"


def format_rate(bandwidth_bps: float) -> str:
    """1e11 -> '100 Gbps'."""
    for unit, scale in (("Tbps", 1e12), ("Gbps", 1e9), ("Mbps", 1e6)):
        if bandwidth_bps >= scale:
            return f"{bandwidth_bps / scale:.4g} {unit}"
    return f"{bandwidth_bps:.4g} bps"


@dataclass(frozen=True, slots=True)
class TimeUnit:
    """The unit a set of completion times is shown in, with the decimals that give its typical value
    four significant digits: every axis, legend, table and line of one result uses one of these."""

    name: str  # "us", "ms" or "s"
    us: float  # microseconds in one unit
    decimals: int

    @classmethod
    def for_typical(cls, typical_us: float) -> TimeUnit:
        """The unit of a result whose typical (median) completion time is ``typical_us``."""
        name, us = next(((name, us) for name, us in _TIME_UNITS_US if typical_us >= us), _TIME_UNITS_US[-1])
        in_unit = typical_us / us
        return cls(name, us, max(0, 3 - math.floor(math.log10(in_unit))) if in_unit > 0 else 2)

    def number(self, time_us: float) -> str:
        """``time_us`` in this unit, without the unit: 1599.11 us in ms -> '1.599'."""
        return f"{time_us / self.us:.{self.decimals}f}"

    def text(self, time_us: float) -> str:
        """``time_us`` in this unit, with it: '1.599 ms'."""
        return f"{self.number(time_us)} {self.name}"


_TIME_UNITS_US = (("s", 1e6), ("ms", 1e3), ("us", 1.0))


def format_time_us(time_us: float) -> str:
    """One duration in the unit that reads best, to four significant digits: 812.0 us, 14.20 ms, 4.295 s."""
    name, us = next(((name, us) for name, us in _TIME_UNITS_US if time_us >= us), _TIME_UNITS_US[-1])
    return f"{time_us / us:#.4g} {name}"


def exact_rate(bandwidth_bps: float) -> str:
    """A rate in the largest unit that keeps it exact for parse_rate_bps: 1e11 -> '100Gbps'."""
    for prefix in (p for p in ("T", "G", "M", "k") if bandwidth_bps >= _PREFIX[p]):
        number = f"{bandwidth_bps / _PREFIX[prefix]:.12g}"
        if float(number) * _PREFIX[prefix] == bandwidth_bps:
            return f"{number}{prefix}bps"
    return f"{bandwidth_bps!r}bps"


def exact_time(time_ps: int) -> str:
    """A time in the largest unit that divides it: 600000 -> '600ns', 4096000 -> '4096ns', 0 -> '0ps'."""
    for unit in ("s", "ms", "us", "ns"):
        if time_ps and time_ps % PS_PER_UNIT[unit] == 0:
            return f"{time_ps // PS_PER_UNIT[unit]}{unit}"
    return f"{time_ps}ps"
