"""Recent answers: the Insight page's KPIs and diagnosis answered from the last computed result while
the log grows (stale-while-revalidate), each answer saying when it was computed and how much of the
log it covers; a recompute starts in the background, one at a time per question and at most once
every `every` (10 s): on a busy log each load would otherwise start one, and the recomputes would
take the index from the questions being answered.

An answer is recomputed before it is given (the request waits) only the first time it is asked, when
the caller asks for a fresh one, or when events arrived since and it is older than `max_age`. The
serve's upkeep refreshes the answers asked lately once a minute (`refresh`), so a question asked
again after a quiet spell is answered at once with an answer at most about a minute behind.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from seamflow import clock, errors, store
from seamflow.ids import Json

__all__ = ["Recent", "RecentAnswer"]

log = logging.getLogger(__name__)
_T = TypeVar("_T")
_KEPT = 64
_COUNTED = 100  # arrivals counted at most (a bounded read of the log)
_ASKED_LATELY = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class RecentAnswer(Generic[_T]):
    """An answer, and how much of the event log it covers."""

    value: _T
    computed_at: datetime
    through_seq: int
    """The answer counts the log's events up to this seq (the log's row number)."""
    arrived_since: int
    """Events appended to the log after `through_seq` (counted up to 100: 100 means 100 or more)."""

    def as_of(self) -> Json:
        """`computed_at`, `through_seq` and `arrived_since` as JSON (the `as_of` of an API answer)."""
        return {
            "computed_at": self.computed_at.isoformat(),
            "through_seq": self.through_seq,
            "arrived_since": self.arrived_since,
        }


@dataclass(slots=True)
class _Held:
    compute: Callable[[], Awaitable[object]]
    value: object
    computed_at: datetime
    through_seq: int
    asked_at: datetime


class Recent:
    """The recent answers of one insight, by question (a key the caller makes of the question).

    Args:
        log_reads: the event log (a bounded read tells how many events arrived since an answer).
        catch_up: reads the log into the index; `read_seq()` is then the last seq read.
        read_seq: the last seq of the log the index has read.
        max_age: an answer older than this, with events arrived since, is recomputed before answering.
        every: a question is recomputed in the background at most this often.
    """

    def __init__(
        self,
        log_reads: store.EventLogReads,
        catch_up: Callable[[], Awaitable[int]],
        read_seq: Callable[[], int],
        max_age: timedelta = timedelta(seconds=60),
        every: timedelta = timedelta(seconds=10),
    ) -> None:
        self._log = log_reads
        self._catch_up = catch_up
        self._read_seq = read_seq
        self.max_age = max_age
        self.every = every
        self._held: dict[str, _Held] = {}
        self._running: dict[str, asyncio.Task[None]] = {}

    async def answer(
        self, key: str, compute: Callable[[], Awaitable[_T]], *, is_fresh: bool = False
    ) -> RecentAnswer[_T]:
        """The answer to the question `key`: the last one computed, or `compute()` now (see the module).

        Raises whatever `compute` raises when it runs in the request (a background recompute's failure
        is logged, and the last answer stays).
        """
        held = self._held.get(key)
        if held is not None and not is_fresh:
            held.asked_at = clock.now()
            arrived = await self._arrived_after(held.through_seq)
            if not arrived or clock.now() - held.computed_at <= self.max_age:
                if arrived and clock.now() - held.computed_at >= self.every:
                    self._start_refresh(key)
                return RecentAnswer(held.value, held.computed_at, held.through_seq, arrived)  # type: ignore[arg-type]  # stored for this key by `compute`
        running = self._running.get(key)
        if running is not None:
            await asyncio.shield(running)  # one computation at a time per question: wait for the one running
        await self._compute(key, compute)
        found = self._held[key]
        return RecentAnswer(found.value, found.computed_at, found.through_seq, 0)  # type: ignore[arg-type]  # as above

    async def refresh(self) -> int:
        """Recompute the answers asked in the last 15 minutes that events arrived after; forget the others.

        Returns how many were recomputed. The serve's upkeep calls this once a minute.
        """
        now, done = clock.now(), 0
        for key, held in list(self._held.items()):
            if now - held.asked_at > _ASKED_LATELY:
                del self._held[key]
            elif key not in self._running and held.through_seq < self._read_seq():
                await self._refresh(key)
                done += 1
        return done

    def is_recomputing(self, key: str) -> bool:
        """True while the question `key` is being recomputed in the background."""
        return key in self._running

    def close(self) -> None:
        """Cancel the recomputes running in the background."""
        for task in self._running.values():
            task.cancel()

    async def _arrived_after(self, seq: int) -> int:
        if self._read_seq() > seq:  # already read into the index (by seq: a skipped row counts too)
            return min(self._read_seq() - seq, _COUNTED)
        try:
            return len(await self._log.list_event_log(after_seq=seq, limit=_COUNTED))
        except errors.StoreError as exc:
            log.warning("insight: counting the events since an answer failed", extra={"error": exc.message})
            return 0

    async def _compute(self, key: str, compute: Callable[[], Awaitable[object]]) -> None:
        await self._catch_up()
        seq, at = self._read_seq(), clock.now()
        value = await compute()
        held = self._held.get(key)
        if held is None and len(self._held) >= _KEPT:  # forget the question asked longest ago
            del self._held[min(self._held, key=lambda k: self._held[k].asked_at)]
        self._held[key] = _Held(compute, value, at, seq, held.asked_at if held else at)

    def _start_refresh(self, key: str) -> None:
        if key not in self._running:
            task = asyncio.create_task(self._refresh(key), name=f"insight refresh {key[:60]}")
            self._running[key] = task
            task.add_done_callback(lambda t: self._running.pop(key, None) if self._running.get(key) is t else None)

    async def _refresh(self, key: str) -> None:
        held = self._held.get(key)
        if held is None:
            return
        try:
            await self._compute(key, held.compute)
        except Exception:  # the background task's boundary: the last answer stays, the next question tries again
            log.exception("insight: recomputing an answer in the background failed")
