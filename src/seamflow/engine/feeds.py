"""`poll` and `consume` triggers: events pulled from a connection's feed, with a durable cursor.

For each batch a feed gives, every item is accepted as an event first (its key is the dedupe
key), then the cursor is stored, then the batch is acknowledged at the source. A crash in
between delivers the batch again and the dedupe keys turn the repeats into duplicates: no
item is lost, none starts two runs. One process of the cluster runs a flow's feed at a time
(a lease on the feed, renewed by the heartbeat). Each feed reports its health (last
successful poll, lag, failing since) in the store, `/metrics` and the log; a feed that has
failed or delivered nothing successful for `stall_after` is reported as stalled.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from seamflow import clock, codec, connectors, errors, redact, store
from seamflow.engine import backoff, metrics
from seamflow.engine.catalog import Catalog
from seamflow.engine.connections import Pool
from seamflow.engine.inbox import Event, Inbox
from seamflow.flows import CompiledFlow, spec
from seamflow.ids import Json

__all__ = ["FeedOptions", "FeedRunner", "feed_health"]

log = logging.getLogger("seamflow.feeds")

_ACCEPT_CONCURRENCY = 64


def feed_health(
    last_ok: datetime | None, failing_since: datetime | None, stall_after: timedelta, *, pushed: bool = False
) -> str:
    """`ok`, `failing` (recent failures) or `stalled` (failing, or nothing successful, for `stall_after`).

    A `consume` feed (`pushed`) is quiet whenever nobody publishes, so only failures make it stalled.
    """
    now = clock.now()
    if failing_since is not None and now - failing_since >= stall_after:
        return "stalled"
    if not pushed and last_ok is not None and now - last_ok >= stall_after:
        return "stalled"
    return "failing" if failing_since is not None else "ok"


class _LostFeed(Exception):
    """Another process holds this feed now."""


@dataclass(frozen=True, slots=True)
class FeedOptions:
    """Who runs the feeds and how long a feed's lease lasts."""

    worker_id: str
    """This process in the store: the holder of the feeds it runs."""
    lease: timedelta
    """How long a feed stays with this process without a heartbeat."""


class FeedRunner:
    """Runs the `poll` and `consume` triggers of the catalog's flows.

    Args:
        db: feed cursors, leases and health.
        inbox: accepts each item as an event.
        catalog: the flows with feed triggers.
        pool: the connections feeds read from.
        options: holder and lease.
    """

    def __init__(self, db: store.FeedStore, inbox: Inbox, catalog: Catalog, pool: Pool, options: FeedOptions) -> None:
        self._db = db
        self._inbox = inbox
        self._catalog = catalog
        self._pool = pool
        self._options = options
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> list[asyncio.Task[None]]:
        """Start one task per flow with a feed trigger; return them (the engine cancels them on stop)."""
        self._stopping.clear()
        self._tasks = [
            asyncio.create_task(self._hold(flow), name=f"feed-{flow.id}")
            for flow in self._catalog.current.values()
            if flow.spec.trigger.feed is not None
        ]
        return list(self._tasks)

    async def stop(self) -> None:
        """Stop taking new batches; a batch being accepted is finished by the engine's drain."""
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _hold(self, flow: CompiledFlow) -> None:
        """Take the feed's lease when free, run the feed while holding it, retry after failures."""
        trigger = flow.spec.trigger.feed
        assert trigger is not None
        spec_hash = _spec_hash(flow.spec.trigger)
        opts = self._options
        failures = 0
        while not self._stopping.is_set():
            now = clock.now()
            try:
                state = await self._db.claim_feed(flow.id, spec_hash, opts.worker_id, now, now + opts.lease)
            except errors.StoreError as exc:
                log.warning("claiming a feed failed", extra={"flow": flow.id, "error": exc.message})
                state = None
            if state is None:  # another process runs it (or the store is away): look again later
                await self._pause(opts.lease / 3)
                continue
            try:
                if isinstance(trigger, spec.PollTrigger):
                    await self._poll(flow, trigger, state.cursor)
                else:
                    await self._consume(flow, trigger)
                failures = 0
            except _LostFeed:
                log.warning("feed taken over by another process", extra={"flow": flow.id})
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the feed must outlive any failure; it is reported and retried
                failures += 1
                await self._failed(flow, trigger, exc)
                await self._pause(_delay(failures))

    async def _poll(self, flow: CompiledFlow, trigger: spec.PollTrigger, cursor: Json) -> None:
        connector = self._connector(trigger)
        if not isinstance(connector, connectors.Polls):
            raise errors.InvalidInput(
                f"flow {flow.id}: connection {trigger.connection!r} cannot be polled", code="feed.not_pollable"
            )
        failures = 0
        while not self._stopping.is_set():
            try:
                batch = await connector.poll(trigger.feed, dict(trigger.with_), cursor, limit=trigger.batch)
            except errors.SeamflowError as exc:
                failures += 1
                await self._failed(flow, trigger, exc)
                await self._pause(max(_delay(failures), trigger.every))
                continue
            failures = 0
            await self._take(flow, trigger, batch)
            cursor = batch.cursor
            if not batch.more:
                await self._pause(trigger.every)

    async def _consume(self, flow: CompiledFlow, trigger: spec.ConsumeTrigger) -> None:
        connector = self._connector(trigger)
        if not isinstance(connector, connectors.Consumes):
            raise errors.InvalidInput(
                f"flow {flow.id}: connection {trigger.connection!r} has nothing to consume", code="feed.not_consumable"
            )
        batches = connector.consume(trigger.feed, dict(trigger.with_))
        try:
            async for batch in batches:
                await self._take(flow, trigger, batch)
                if self._stopping.is_set():
                    return
        finally:  # closed explicitly on any exit, so unacked messages go back to the broker at once
            close = getattr(batches, "aclose", None)
            if close is not None:
                await close()

    async def _take(
        self, flow: CompiledFlow, trigger: spec.PollTrigger | spec.ConsumeTrigger, batch: connectors.Batch
    ) -> None:
        """Accept a batch's items, then store its cursor, then acknowledge it at the source."""
        try:
            await self._accept_all(flow, trigger, batch.items)
        except BaseException:
            if batch.nack is not None:
                with contextlib.suppress(Exception):
                    await batch.nack()
            raise
        newest = max((i.at for i in batch.items if i.at is not None), default=None)
        now = clock.now()
        kept = await self._db.save_feed_progress(
            flow.id, self._options.worker_id, batch.cursor, len(batch.items), newest, now
        )
        if not kept:
            raise _LostFeed
        if batch.ack is not None:
            await batch.ack()
        metrics.FEED_ITEMS.labels(flow.id).inc(len(batch.items))
        metrics.FEED_LAST_OK.labels(flow.id).set(now.timestamp())
        metrics.FEED_FAILING.labels(flow.id).set(0)
        lag = (now - newest).total_seconds() if newest is not None and batch.more else 0.0
        metrics.FEED_LAG.labels(flow.id).set(max(lag, 0.0))

    async def _accept_all(
        self, flow: CompiledFlow, trigger: spec.PollTrigger | spec.ConsumeTrigger, items: Sequence[connectors.Item]
    ) -> None:
        kind = "poll" if isinstance(trigger, spec.PollTrigger) else "consume"
        gate = asyncio.Semaphore(_ACCEPT_CONCURRENCY)

        async def accept(item: connectors.Item) -> None:
            origin: dict[str, Json] = {"connection": trigger.connection, "name": trigger.feed, "key": item.key}
            event = Event(kind, item.body, dedupe_key=item.key, feed=origin)
            async with gate:
                while True:
                    try:
                        await self._inbox.accept(flow, event)
                        return
                    except errors.SeamflowError as exc:
                        retry_after = getattr(exc, "retry_after_s", None)  # the engine is overloaded: wait
                        if retry_after is None or self._stopping.is_set():
                            raise
                        await asyncio.sleep(retry_after)

        async with asyncio.TaskGroup() as group:
            for item in items:
                group.create_task(accept(item))

    def _connector(self, trigger: spec.PollTrigger | spec.ConsumeTrigger) -> connectors.Connector:
        return self._pool.get(trigger.connection).connector

    async def _failed(
        self, flow: CompiledFlow, trigger: spec.PollTrigger | spec.ConsumeTrigger, exc: BaseException
    ) -> None:
        message = redact.mask_text(
            exc.message if isinstance(exc, errors.SeamflowError) else f"{type(exc).__name__}: {exc}"
        )
        now = clock.now()
        metrics.FEED_FAILING.labels(flow.id).set(1)
        try:
            await self._db.feed_failed(flow.id, self._options.worker_id, message, now)
            state = next((f for f in await self._db.list_feeds() if f.flow_id == flow.id), None)
        except errors.StoreError:
            state = None
        pushed = isinstance(trigger, spec.ConsumeTrigger)
        health = (
            feed_health(state.last_ok, state.failing_since, trigger.stall_after, pushed=pushed) if state else "failing"
        )
        level = logging.ERROR if health == "stalled" else logging.WARNING
        log.log(level, f"feed {health}", extra={"flow": flow.id, "connection": trigger.connection, "error": message})

    async def _pause(self, delay: timedelta) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay.total_seconds()):
                await self._stopping.wait()


_FEED_RETRY = spec.Retry.model_validate({"attempts": 100, "initial_delay": "1s", "max_delay": "5m"})


def _delay(failures: int) -> timedelta:
    """Exponential from 1 s up to 5 min, with jitter: a failing source is not hammered."""
    return backoff.retry_delay(_FEED_RETRY, failures)


def _spec_hash(trigger: spec.Trigger) -> str:
    """Identity of a feed's settings: changing connection, feed or `with` starts a new cursor."""
    feed = trigger.feed
    assert feed is not None
    identity: Json = {"kind": trigger.kind, "connection": feed.connection, "feed": feed.feed, "with": feed.with_}
    return hashlib.sha256(codec.dumps(identity)).hexdigest()[:16]
