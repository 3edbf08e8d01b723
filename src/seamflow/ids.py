"""Identifiers of the domain (runs, events, flows) and the `Json` alias for data between layers."""

from __future__ import annotations

import os
import threading
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
_PAIRS = tuple(first + second for first in _ALPHABET for second in _ALPHABET)
"""Every 10-bit value as its two base32 characters: an id is 13 lookups."""
_SHIFTS = tuple(range(120, -1, -10))
_RANDOM_BYTES = 10
_POOL_IDS = 256
"""Ids' worth of random bytes read from the OS at once: one `getrandom` system call per 256 ids."""


class _RandomPool(threading.local):
    """Random bytes from `os.urandom`, read in blocks, one pool per thread (no lock on the hot path)."""

    def __init__(self) -> None:
        self.block = b""
        self.offset = 0

    def take(self) -> bytes:
        if self.offset >= len(self.block):
            self.block, self.offset = os.urandom(_RANDOM_BYTES * _POOL_IDS), 0
        start = self.offset
        self.offset = start + _RANDOM_BYTES
        return self.block[start : start + _RANDOM_BYTES]


_pool = _RandomPool()


def _forget_pool() -> None:
    """A forked child must not hand out the random bytes its parent also holds."""
    global _pool
    _pool = _RandomPool()


os.register_at_fork(after_in_child=_forget_pool)


def new_id(prefix: str) -> str:
    """Return a time-ordered, globally unique id such as `run_01jc8z0q3m5w7x9y2a4b6c8d0e`.

    48 bits of milliseconds then 80 random bits (from the OS's CSPRNG), in Crockford base32,
    so ids sort by creation time in the store and in listings.
    """
    value = ((int(time.time() * 1000) & 0xFFFF_FFFF_FFFF) << 80) | int.from_bytes(_pool.take(), "big")
    # 128 bits as 26 characters of 5 bits (130 bits: the first character is 0-7), two at a time
    return prefix + "_" + "".join([_PAIRS[(value >> shift) & 1023] for shift in _SHIFTS])
