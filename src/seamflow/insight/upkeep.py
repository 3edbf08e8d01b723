"""Insight kept current inside `seamflow serve`: the index brought up to date in the background, so
the first question after a restart reads only the rows appended since, and the event log archived
(Parquet) and pruned by the same retention as runs, on the same once-a-minute schedule."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from seamflow import clock, errors, store
from seamflow.insight.service import Insight

__all__ = ["Upkeep", "keep_current"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Upkeep:
    """How `keep_current` keeps an insight current."""

    retention: timedelta | None = None
    """Archive, then prune, the log's rows older than this (the runs' `--retention`); None keeps them."""
    every: timedelta = timedelta(minutes=1)
    """How often the index reads the rows appended to the log (and pruning looks for old rows)."""
    archive_every: timedelta = timedelta(hours=1)
    """At most this often the archive is written again (each write is the whole index)."""
    stale_for: timedelta = timedelta(seconds=60)
    """The Insight page's KPIs and diagnosis are answered from a result computed at most this long ago
    while newer events are recomputed in the background; an older one is recomputed before answering."""
    recompute_every: timedelta = timedelta(seconds=10)
    """A question of the Insight page is recomputed in the background at most this often."""


async def keep_current(found: Insight, pruning: store.EventLogPruning | None, upkeep: Upkeep) -> None:
    """Read the log into the index now and then every `upkeep.every` (and refresh the answers asked
    lately); archive and prune by the retention.

    Runs until cancelled; a failure is logged and tried again at the next round (the server keeps serving).
    """
    found.recent.max_age, found.recent.every = upkeep.stale_for, upkeep.recompute_every
    while True:
        try:
            added = await found.catch_up()
            if added:
                log.debug("insight: %d events indexed", added)
            await found.recent.refresh()  # the answers asked lately count the events read since
            if upkeep.retention is not None and pruning is not None:
                pruned = await found.keep_archived(pruning, clock.now() - upkeep.retention, upkeep.archive_every)
                if pruned:
                    log.info("insight: %d archived event-log rows pruned", pruned)
        except errors.SeamflowError as exc:
            log.warning("insight: keeping the index current failed", extra={"error": exc.message})
        await asyncio.sleep(upkeep.every.total_seconds())
