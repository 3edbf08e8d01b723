"""The inbox: where triggers hand events to the engine — dedupe, the `when` condition, backpressure, accepting.

Backpressure: the queue of runnable runs is bounded. When it is full, accepting waits up to
`accept_wait` for room and then refuses with `Overloaded` (HTTP 503 with Retry-After) before
anything is stored; an accepted event is never dropped. A process that does not execute
(`seamflow api`) refuses while the cluster's backlog of unclaimed runs is too long.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from seamflow import clock, errors, ids, store
from seamflow.engine import metrics
from seamflow.engine.journal import Journal
from seamflow.engine.workers import RunQueue
from seamflow.flows import CompiledFlow
from seamflow.ids import FlowId, Json, RunId

__all__ = ["Event", "Inbox", "InboxOptions", "Overloaded"]


@dataclass(frozen=True, slots=True)
class Event:
    """An event a trigger hands to the engine; a flow's templates see it as `event` (`as_json()`).

    Args:
        trigger: the trigger kind that received it: webhook, schedule, manual, poll, consume, call.
        body: the payload (`event.body`), exactly as received.
        dedupe_key: the sender's key (an `Idempotency-Key` header, a feed item's key); None
            lets the flow's `dedupe_key` template decide.
        headers: a webhook's request headers (`event.headers`).
        query: a webhook's query parameters (`event.query`).
        feed: a `poll`/`consume` item's origin: connection, feed name and key (`event.feed`).
        parent: a child run's caller: run id and step (`event.parent`).
    """

    trigger: str
    body: Json
    dedupe_key: str | None = None
    headers: Mapping[str, str] | None = None
    query: Mapping[str, str] | None = None
    feed: Mapping[str, Json] | None = None
    parent: Mapping[str, Json] | None = None

    def as_json(self) -> dict[str, Json]:
        """The event as flows see and the store keeps it."""
        out: dict[str, Json] = {"body": self.body}
        if self.headers is not None:
            out["headers"] = dict(self.headers)
        if self.query is not None:
            out["query"] = dict(self.query)
        out["trigger"] = self.trigger
        if self.feed is not None:
            out["feed"] = dict(self.feed)
        if self.parent is not None:
            out["parent"] = dict(self.parent)
        return out


class Overloaded(errors.SeamflowError):
    """The engine's queue is full; the caller should retry after `retry_after_s`."""

    code = "engine.overloaded"
    http_status = 503

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"the engine is at capacity; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class InboxOptions:
    """How the inbox holds back senders."""

    accept_wait: timedelta
    """How long accepting waits for room in a full queue before refusing with 503."""
    is_executing: bool
    """Whether this process executes the runs it accepts (it then holds their leases at once)."""
    max_backlog: int
    """Without executing: refuse while this many runs wait for a worker cluster-wide."""


Lead = Callable[[CompiledFlow, Json, RunId], tuple[store.JournalEntry, ...]]


class Inbox:
    """Accepts events for flows and queues their runs.

    Args:
        journal: commits accepted events.
        queue: where runs this process executes go.
        lead: the outcomes of a flow's leading transforms for a new event (committed with it).
        new_lease: a lease on a new run for this process.
        context: `env` and `secrets` for the `when` and `dedupe_key` templates.
        options: backpressure.
    """

    def __init__(
        self,
        journal: Journal,
        queue: RunQueue,
        *,
        lead: Lead,
        new_lease: Callable[[], store.Lease],
        context: Mapping[str, Any],
        options: InboxOptions,
    ) -> None:
        self._journal = journal
        self._queue = queue
        self._lead = lead
        self._new_lease = new_lease
        self._context = context
        self._options = options
        self.is_open = False
        """Accepting at all (False before start and while stopping: 503)."""
        self.backlog = 0
        """Runs no worker holds yet, cluster-wide (kept fresh where this process does not execute)."""

    async def accept(self, flow: CompiledFlow, event: Event) -> store.Accepted | None:
        """Commit an event for `flow` and queue its run; the same dedupe key twice gives one run.

        Returns:
            The accepted event and its run, or None if the flow's `when` is false for this
            event (nothing is stored).

        Raises:
            Overloaded: the queue stayed full for `accept_wait`; nothing was stored.
            errors.ExpressionError: `dedupe_key` or `when` could not be evaluated on this event.
        """
        body = event.as_json()
        dedupe_key = event.dedupe_key or self._render_key(flow, body)
        if not self.wants(flow, body):
            return None
        await self._wait_for_room()
        run_id = RunId(ids.new_id("run"))
        lead = self._lead(flow, body, run_id)
        executing = self._options.is_executing
        new = store.NewEvent(
            flow_id=FlowId(flow.id),
            flow_version=flow.version,
            trigger=event.trigger,
            body=body,
            received=clock.now(),
            dedupe_key=dedupe_key,
            run_id=run_id,
            journal=lead,
            lease=self._new_lease() if executing else None,
        )
        accepted = await self._journal.accept(new)
        metrics.EVENTS_ACCEPTED.labels(flow.id, str(accepted.is_duplicate).lower()).inc()
        if executing and not accepted.is_duplicate:
            state = store.RunState(
                run_id=accepted.run_id,
                flow_id=new.flow_id,
                flow_version=flow.version,
                status=store.RunStatus.QUEUED,
                generation=0,
                event_id=accepted.event_id,
                event_body=body,
                received=new.received,
                journal=list(lead),
                epoch=1,
            )
            self._queue.put(accepted.run_id, state, 1)
        return accepted

    def wants(self, flow: CompiledFlow, body: Json) -> bool:
        """Whether the flow's `when` condition holds for an event (True without a condition)."""
        return flow.when is None or flow.when.is_true({**self._context, "event": body})

    def _render_key(self, flow: CompiledFlow, body: Json) -> str | None:
        if flow.dedupe_key is None:
            return None
        value = flow.dedupe_key.render({**self._context, "event": body})
        return None if value in (None, "") else str(value)

    async def _wait_for_room(self) -> None:
        if not self.is_open:
            raise Overloaded(retry_after_s=5)
        if not self._options.is_executing:
            if self.backlog >= self._options.max_backlog:
                raise Overloaded(retry_after_s=1)
            return
        if not await self._queue.wait_for_room(self._options.accept_wait):
            raise Overloaded(retry_after_s=1)

    async def watch_backlog(self, count: Callable[[], Awaitable[int]]) -> None:
        """Keep `backlog` fresh, five times a second, until cancelled (a process that does not execute)."""
        while True:
            try:
                self.backlog = await count()
            except errors.StoreError:
                self.backlog = 0  # accepting then fails on the store itself, with its own error
            await asyncio.sleep(0.2)
