"""Size ranges: a geometric list of message sizes, as nccl-tests' -b/-e/-f and KCCB's start/end/step.

``size_range(8, 1 << 30, 2)`` is 8, 16, ..., 1 GiB: from start, multiplying by the factor (rounding
down to whole bytes), while the size is at most end. In YAML a ``data_sizes`` range is written as a
mapping ``{start: 8, end: 1GiB, step: 2}``; ``expand_size_range`` turns it into that list.
"""

from __future__ import annotations

from fabricsim.units import parse_bytes

RANGE_KEYS = ("start", "end", "step")
MAX_SIZES = 100_000


def size_range(start_bytes: int, end_bytes: int, factor: float) -> list[int]:
    """Sizes start, start x factor, ... up to end; raises ValueError for an empty or endless range."""
    if start_bytes < 1:
        raise ValueError(f"expected a start of at least 1 byte, got {start_bytes}")
    if end_bytes < start_bytes:
        raise ValueError(f"expected end >= start, got start {start_bytes} and end {end_bytes}")
    if not 1 < factor < float("inf"):
        raise ValueError(f"expected a finite multiplicative step above 1, got {factor}")
    sizes = [start_bytes]
    while (following := int(sizes[-1] * factor)) <= end_bytes:
        sizes.append(max(following, sizes[-1] + 1))
        if len(sizes) > MAX_SIZES:
            raise ValueError(f"expected a range of at most {MAX_SIZES} sizes, got more from {start_bytes} "
                             f"to {end_bytes} by {factor}")
    return sizes


def expand_size_range(value: object) -> object:
    """A ``{start, end, step}`` mapping becomes its list of sizes; anything else passes through."""
    if not isinstance(value, dict):
        return value
    if set(value) != set(RANGE_KEYS):
        raise ValueError(f"expected a list of sizes or a range with exactly the keys start, end and step, "
                         f"got keys {sorted(value)}")
    step = value["step"]
    if isinstance(step, bool) or not isinstance(step, (int, float)):
        raise ValueError(f"expected step to be a number above 1, got {step!r}")
    return size_range(parse_bytes(value["start"]), parse_bytes(value["end"]), step)
