"""Durable timers and schedules: retries, waits and cron ticks fire from the store, so they survive restarts.

A schedule keeps its next tick in the store. Firing a tick accepts its event and moves the
schedule to the following tick in one commit, so a restart neither skips nor doubles a tick:
ticks missed while the process was down fire once each when it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from seamflow import clock, store
from seamflow.engine.catalog import Catalog
from seamflow.engine.inbox import Event
from seamflow.engine.journal import Journal
from seamflow.flows import CompiledFlow
from seamflow.ids import FlowId, Json, RunId

__all__ = ["TimerLoop", "next_tick"]

log = logging.getLogger("seamflow.timers")


def next_tick(flow: CompiledFlow, after: datetime) -> datetime:
    """The first tick of `flow`'s schedule strictly after `after`."""
    schedule = flow.spec.trigger.schedule
    assert schedule is not None
    if schedule.every is not None:
        return after + schedule.every
    local = after.astimezone(ZoneInfo(schedule.timezone))
    result: datetime = croniter(schedule.cron, local).get_next(datetime)
    return result


class TimerLoop:
    """Polls the store for due timers and schedule ticks and queues their runs.

    Args:
        db: schedules and the next due timer.
        journal: fires timers and schedule ticks.
        catalog: the flows with schedules.
        wants: whether a flow's `when` holds for an event.
        wake: claims runs that became runnable.
        poll: how often due timers and ticks are looked for.
    """

    def __init__(
        self,
        db: store.ScheduleStore,
        journal: Journal,
        catalog: Catalog,
        *,
        wants: Callable[[CompiledFlow, Json], bool],
        wake: Callable[[Sequence[RunId]], None],
        poll: timedelta,
    ) -> None:
        self._db = db
        self._journal = journal
        self._catalog = catalog
        self._wants = wants
        self._wake = wake
        self._poll = poll
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """End the loop after its current round."""
        self._stopping.set()

    async def register_schedules(self) -> None:
        """Store each schedule flow's next tick (kept across restarts if its spec is unchanged)."""
        db = self._db
        scheduled = [f for f in self._catalog.current.values() if f.spec.trigger.schedule]
        for flow in scheduled:
            schedule = flow.spec.trigger.schedule
            assert schedule is not None
            spec_text = schedule.model_dump_json()
            await db.upsert_schedule(FlowId(flow.id), spec_text, next_tick(flow, clock.now()))
        await db.remove_schedules_except([f.id for f in scheduled])

    async def run(self) -> None:
        """Fire due timers and ticks until stopped."""
        poll = self._poll.total_seconds()
        while not self._stopping.is_set():
            try:
                await self._round()
            except asyncio.CancelledError:
                raise
            except Exception:  # the loop must outlive a failed round; the next round retries
                log.exception("timer round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=poll)

    async def _round(self) -> None:
        now = clock.now()
        due_at = await self._db.next_timer_due()
        if due_at is not None and due_at <= now:
            fired = await self._journal.fire_timers(now, limit=1000)
            self._wake([t.run_id for t in fired])
        for flow_id, tick in await self._db.due_schedules(now):
            await self._fire(flow_id, tick)

    async def _fire(self, flow_id: FlowId, tick: datetime) -> None:
        flow = self._catalog.current.get(flow_id)
        if flow is None or flow.spec.trigger.schedule is None:
            return
        zone = ZoneInfo(flow.spec.trigger.schedule.timezone)
        body = Event("schedule", {"tick": tick.astimezone(zone).isoformat()}).as_json()
        event = store.NewEvent(
            flow_id=flow_id,
            flow_version=flow.version,
            trigger="schedule",
            body=body,
            received=clock.now(),
            dedupe_key=f"schedule:{tick.isoformat()}",
        )
        wanted = event if self._wants(flow, body) else None
        accepted = await self._journal.fire_schedule(flow_id, tick, next_tick(flow, tick), wanted)
        if accepted is not None and not accepted.is_duplicate:
            self._wake([accepted.run_id])
