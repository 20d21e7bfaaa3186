"""The base of every scenario section: frozen models that refuse unknown keys, quantity types
that parse units, and the errors bad input becomes."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, model_serializer

from fabricsim.units import (UnitError, exact_rate, exact_time, parse_bytes, parse_rate_bps, parse_time_ps,
                             time_within)

MAX_LINK_LATENCY_PS = 10**12  # 1 s: a cable, NIC, switch or link latency
BARE_SIZE_FROM_BYTES = 2**20  # a bare number below this, where sizes are MiB-scale, surely lacks its unit


def _link_latency_ps(value: object) -> int:
    return time_within(parse_time_ps(value), MAX_LINK_LATENCY_PS, value)


def _size_with_unit(value: object) -> int:
    nbytes = parse_bytes(value)
    if nbytes < BARE_SIZE_FROM_BYTES and str(value).strip().isdigit():
        raise UnitError(f"a size with its unit such as 25MiB (a bare number is bytes), got {value!r}")
    return nbytes


Bytes = Annotated[int, BeforeValidator(parse_bytes)]
# where a size is MiB-scale, a small bare number is refused: "bucket: 25" is not meant as 25 bytes
SizeWithUnit = Annotated[int, BeforeValidator(_size_with_unit)]
# Rates and times always carry their unit, in the resolved scenario too (bare numbers are refused).
RateBps = Annotated[float, BeforeValidator(parse_rate_bps), Field(gt=0),
                    PlainSerializer(exact_rate, return_type=str)]
_EXACT_TIME = PlainSerializer(exact_time, return_type=str)
TimePs = Annotated[int, BeforeValidator(parse_time_ps), _EXACT_TIME]
LinkLatencyPs = Annotated[int, BeforeValidator(_link_latency_ps), _EXACT_TIME]



class ScenarioError(ValueError):
    """Bad input: one line naming the file, the key path and what was expected."""


class KeyedValueError(ValueError):
    """A check made where several keys meet, about one of them: the error names that key."""

    def __init__(self, key_path: str, message: str) -> None:
        super().__init__(message)
        self.key_path = key_path


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)
    # keys (by alias) written only when given, so that scenarios without them resolve as they always have
    omitted_when_none: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _without_absent_keys(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        if not self.omitted_when_none:
            return data
        return {key: value for key, value in data.items() if value is not None or key not in self.omitted_when_none}
