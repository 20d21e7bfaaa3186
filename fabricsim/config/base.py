"""The base of every scenario section: frozen models that refuse unknown keys, quantity types
that parse units, and the errors bad input becomes."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from fabricsim.units import exact_rate, exact_time, parse_bytes, parse_rate_bps, parse_time_ps


Bytes = Annotated[int, BeforeValidator(parse_bytes)]
# Rates and times always carry their unit, in the resolved scenario too (bare numbers are refused).
RateBps = Annotated[float, BeforeValidator(parse_rate_bps), Field(gt=0),
                    PlainSerializer(exact_rate, return_type=str)]
TimePs = Annotated[int, BeforeValidator(parse_time_ps), PlainSerializer(exact_time, return_type=str)]



class ScenarioError(ValueError):
    """Bad input: one line naming the file, the key path and what was expected."""


class KeyedValueError(ValueError):
    """A check made where several keys meet, about one of them: the error names that key."""

    def __init__(self, key_path: str, message: str) -> None:
        super().__init__(message)
        self.key_path = key_path


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
