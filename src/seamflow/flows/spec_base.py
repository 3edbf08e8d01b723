"""What every part of the flow file format shares: durations and the strict, frozen model base."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, WithJsonSchema

__all__ = ["Duration", "SpecModel", "parse_duration"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> timedelta:
    """Parse `"500ms"`, `"30s"`, `"5m"`, `"2h"`, `"3d"` or a number of seconds.

    Raises:
        ValueError: the value is not a duration.
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m, 2h or 3d")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("expected a duration that is not negative")
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(seconds=float(match.group(1)) * _UNIT_S[match.group(2)])
    raise ValueError("expected a duration such as 30s, 5m, 2h or 3d")


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    WithJsonSchema({"type": ["string", "number"], "examples": ["500ms", "30s", "5m", "2h", "3d"]}),
]


class SpecModel(BaseModel):
    """Unknown keys are errors; a parsed flow never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
