"""Pacing a declared connection's calls to the rate its system allows (`rate_limit.per_second`).

A token bucket of `burst` calls refilled at `per_second`: a call takes the next free slot and
waits until it comes. Waiting here is pacing, not a retry: the call has not been sent yet and no
worker state depends on the wait, so it is an in-process sleep and not a durable timer.
"""

from __future__ import annotations

import asyncio
import time

__all__ = ["Pacer"]


class Pacer:
    """Hands out send times at most `per_second` apart, `burst` at once after a quiet moment."""

    def __init__(self, per_second: float, burst: int) -> None:
        self._interval_s = 1.0 / per_second
        self._burst = burst
        self._next = 0.0
        """The monotonic time the next call may leave, ignoring the burst allowance."""

    async def wait(self) -> None:
        """Return when a call may be sent (at once while the bucket has room)."""
        now = time.monotonic()
        earliest = now - (self._burst - 1) * self._interval_s  # a quiet moment fills the bucket up to `burst`
        slot = max(self._next, earliest)
        self._next = slot + self._interval_s
        if slot > now:
            await asyncio.sleep(slot - now)
