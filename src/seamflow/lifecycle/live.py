"""Live shadows: while one is active for a flow, each new event its live version accepts is also
rehearsed with the candidate, and its per-event report kept like a recorded shadow's.

Mirroring is off the hot path: nothing is added to accepting or running the live event. The
process that fires timers (one per serve group) polls the store for active live shadows and,
once a live run started after the shadow has finished, rehearses the candidate on that run's event
with each shared step answered from the run's own journal (`shadow_event`). A live shadow is
bounded — at most `max_events` events and until its end time — and can be stopped at any time;
being rows in the store, it is started and stopped by the API or the CLI of any process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from seamflow import clock, errors, ids, redact, store
from seamflow.flows import CompiledFlow, compile_flow, load, spec
from seamflow.ids import FlowId, Json
from seamflow.lifecycle.rehearsal import Stage
from seamflow.lifecycle.shadow import FINISHED, At, ShadowReads, shadow_event

__all__ = ["LiveMirror", "live_shadow_json", "start_live_shadow"]

log = logging.getLogger("seamflow.shadow")

_SCAN = 200
"""Finished runs looked at per shadow and pass (the newest; a faster flow is sampled)."""


async def start_live_shadow(
    db: ShadowReads, candidate: CompiledFlow, *, by: str, max_events: int, duration: timedelta
) -> store.LiveShadow:
    """Keep the candidate's version and a live shadow of it, active from now; the shadow."""
    await db.save_flow_versions(
        [store.FlowVersion(FlowId(candidate.id), candidate.version, candidate.source, candidate.path)]
    )
    now = clock.now()
    started = now.replace(microsecond=now.microsecond // 1000 * 1000)  # the store keeps milliseconds
    shadow = store.LiveShadow(
        ids.new_id("shd"), candidate.id, candidate.version, started, started + duration, max_events, by
    )
    await db.start_live_shadow(shadow)
    return shadow


def live_shadow_json(shadow: store.LiveShadow, events: int | None = None) -> dict[str, Json]:
    """A live shadow as the API and `flow shadows --live --json` show it."""
    return {
        "shadow_id": shadow.shadow_id,
        "flow_id": shadow.flow_id,
        "candidate_version": shadow.candidate_version,
        "started_at": shadow.started_at.isoformat(),
        "until": shadow.until.isoformat(),
        "max_events": shadow.max_events,
        "started_by": shadow.started_by,
        "stopped_at": shadow.stopped_at.isoformat() if shadow.stopped_at else None,
        "stopped_by": shadow.stopped_by,
        "events": events,
    }


def is_active(shadow: store.LiveShadow, now: datetime) -> bool:
    """Not stopped and not past its end (its cap of events is counted by the mirror)."""
    return shadow.stopped_at is None and now < shadow.until


class LiveMirror:
    """Rehearses each active live shadow's candidate on the live runs that finished since it started.

    Args:
        db: the project's store.
        context: `env` and `secrets` for templates, those of the serving process.
        interval: seconds between two looks at the store.
    """

    def __init__(self, db: ShadowReads, context: Mapping[str, Any], *, interval: float = 0.5) -> None:
        self._db = db
        self._context = context
        self._interval = interval
        self._candidates: dict[tuple[str, str], CompiledFlow] = {}

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """While inside, mirror in a task of its own (cancelled on the way out)."""
        task = asyncio.create_task(self._loop(), name="live-shadows")
        try:
            yield
        finally:
            task.cancel()
            await asyncio.wait([task])

    async def _loop(self) -> None:
        while True:
            try:
                await self.mirror_once()
            except Exception as exc:  # a boundary: the store being away must not end the mirror
                log.warning("live shadows: %s", redact.mask_text(str(exc)))
            await asyncio.sleep(self._interval)

    async def mirror_once(self) -> int:
        """One pass over the active live shadows; the number of events rehearsed."""
        now = clock.now()
        done = 0
        for shadow in reversed(await self._db.list_live_shadows()):  # oldest first
            if is_active(shadow, now):
                done += await self._mirror(shadow)
        return done

    async def _mirror(self, shadow: store.LiveShadow) -> int:
        kept = await self._db.list_shadow_results(shadow.flow_id, shadow.shadow_id)
        room = shadow.max_events - len(kept)
        if room <= 0:
            return 0
        seen = {r.run_id for r in kept}
        summaries = await self._db.list_runs(
            store.RunFilter(flow_id=shadow.flow_id, statuses=FINISHED, since=shadow.started_at, limit=_SCAN)
        )
        fresh = [s for s in reversed(summaries) if s.run_id not in seen][:room]  # oldest first
        if not fresh:
            return 0
        candidate = await self._candidate(shadow)
        states = await self._db.load_runs([s.run_id for s in fresh])
        versions: dict[str, spec.Flow] = {}
        results = []
        async with Stage.open(self._context) as stage:
            for seq, summary in enumerate(fresh, start=len(kept)):
                at = At(shadow.shadow_id, seq, shadow.started_at)
                results.append(await shadow_event(self._db, stage, candidate, versions, states[summary.run_id], at))
        await self._db.save_shadow_results(results)
        return len(results)

    async def _candidate(self, shadow: store.LiveShadow) -> CompiledFlow:
        key = (shadow.flow_id, shadow.candidate_version)
        if key not in self._candidates:
            source = await self._db.load_flow_source(FlowId(shadow.flow_id), shadow.candidate_version)
            if source is None:
                raise errors.NotFound(
                    f"candidate {shadow.flow_id}@{shadow.candidate_version} of {shadow.shadow_id} is not in the store",
                    code="shadow.no_version",
                )
            name = f"<candidate {shadow.flow_id}@{shadow.candidate_version}>"
            parsed, _ = load.load_flow_text(source, name)
            self._candidates[key] = compile_flow(parsed, version=shadow.candidate_version, source=source, path=name)
        return self._candidates[key]
