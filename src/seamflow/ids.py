"""Identifiers of the domain (runs, events, flows) and the `Json` alias for data between layers."""

from __future__ import annotations

import os
import time
from decimal import Decimal
from typing import NewType, TypeAlias

__all__ = ["EventId", "FlowId", "Json", "JsonObject", "RunId", "StepPath", "new_id"]

Json: TypeAlias = "bool | int | float | Decimal | str | list[Json] | dict[str, Json] | None"
JsonObject: TypeAlias = "dict[str, Json]"

FlowId = NewType("FlowId", str)
RunId = NewType("RunId", str)
EventId = NewType("EventId", str)
StepPath = NewType("StepPath", str)
"""Where a step sits in a run: `order`, `lines[3].post`, `check.then.notify`."""

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def new_id(prefix: str) -> str:
    """Return a time-ordered, globally unique id such as `run_01jc8z0q3m5w7x9y2a4b6c8d0e`.

    48 bits of milliseconds then 80 random bits, in Crockford base32, so ids sort by
    creation time in the store and in listings.
    """
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"
