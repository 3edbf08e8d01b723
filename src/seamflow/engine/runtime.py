"""The engine of one process: accepts events, runs a bounded pool of workers, fires timers and schedules.

Backpressure: the queue of runnable runs is bounded by `max_queue`. When it is full, accepting
waits up to `accept_wait` for room and then refuses with `Overloaded` (HTTP 503 with
Retry-After) before anything is stored; an accepted event is never dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from seamflow import clock, errors, ids, store
from seamflow.engine import metrics
from seamflow.engine.catalog import Catalog
from seamflow.engine.connections import Pool
from seamflow.engine.executor import Executor
from seamflow.engine.timers import TimerLoop
from seamflow.flows import CompiledFlow
from seamflow.ids import FlowId, Json, RunId

__all__ = ["Engine", "EngineOptions", "Overloaded"]

log = logging.getLogger("seamflow.engine")


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """Tuning of one engine process."""

    workers: int = 64
    """Runs executing at once in this process."""
    max_queue: int = 256
    """Runnable runs waiting for a worker; above this, accepting slows down, then refuses.

    Small on purpose: a long queue only adds latency (each queued run waits its turn) and
    memory; a full queue makes senders wait for the answer, then get 503 with Retry-After."""
    accept_wait: timedelta = timedelta(seconds=2)
    """How long accepting waits for room in a full queue before refusing with 503."""
    timer_poll: timedelta = timedelta(milliseconds=50)
    """How often due timers and schedules are looked for."""
    drain_timeout: timedelta = timedelta(seconds=20)
    """On shutdown, how long in-flight steps may take to finish."""


class Overloaded(errors.SeamflowError):
    """The engine's queue is full; the caller should retry after `retry_after_s`."""

    code = "engine.overloaded"
    http_status = 503

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"the engine is at capacity; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


_Item = tuple[RunId, store.RunState | None]


class Engine:
    """Ties store, catalog, connections, executor and timers together for one process."""

    def __init__(
        self,
        db: store.SqlStore,
        catalog: Catalog,
        pool: Pool,
        *,
        context: Mapping[str, Any],
        options: EngineOptions = EngineOptions(),
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.pool = pool
        self.options = options
        self.context = context
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._room = asyncio.Condition()
        self._idle = asyncio.Condition()
        self._active: set[RunId] = set()
        self._again: set[RunId] = set()
        self._responders: dict[RunId, asyncio.Future[Json]] = {}
        self._flow_limits = {
            f.id: asyncio.Semaphore(f.spec.concurrency) for f in catalog.current.values() if f.spec.concurrency
        }
        self.executor = Executor(
            db, pool, wake=self.wake, respond=self._respond, context=context, version_of=catalog.version_of
        )
        self.timers = TimerLoop(self)
        self._tasks: list[asyncio.Task[None]] = []
        self._accepting = False
        self._busy = 0

    # -- lifecycle -------------------------------------------------------------------
    async def start(self, *, resume: bool = True, timers: bool = True) -> None:
        """Open connections, record flow versions, register schedules, resume unfinished runs.

        Args:
            resume: continue every unfinished run of the store (the serving process does;
                a CLI command that runs one flow does not).
            timers: fire durable timers and schedules in this process.
        """
        await self.pool.open()
        for flow in self.catalog.current.values():
            await self.db.save_flow_version(FlowId(flow.id), flow.version, flow.source, flow.path)
        if resume:
            resumed = await self.db.list_unfinished_runs()
            self.wake(resumed)
            if resumed:
                log.info("resuming unfinished runs", extra={"count": len(resumed)})
        self._tasks = [asyncio.create_task(self._worker(), name=f"worker-{i}") for i in range(self.options.workers)]
        if timers:
            await self.timers.register_schedules()
            self._tasks.append(asyncio.create_task(self.timers.run(), name="timers"))
        self._accepting = True

    def is_active(self, run_id: RunId) -> bool:
        """True while this process executes the run or has it queued to execute again."""
        return run_id in self._active or run_id in self._again

    async def stop(self) -> None:
        """Stop accepting, let in-flight steps finish (bounded), then stop workers and connections."""
        self._accepting = False
        self.timers.stop()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.options.drain_timeout.total_seconds()), self._idle:
                await self._idle.wait_for(lambda: self._busy == 0)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.pool.close()

    # -- accepting -------------------------------------------------------------------
    async def accept(
        self, flow: CompiledFlow, envelope: Json, *, trigger: str, dedupe_key: str | None
    ) -> store.Accepted | None:
        """Commit an event for `flow` and queue its run; the same dedupe key twice gives one run.

        Returns:
            The accepted event and its run, or None if the flow's `when` is false for this
            event (nothing is stored).

        Raises:
            Overloaded: the queue stayed full for `accept_wait`; nothing was stored.
            errors.ExpressionError: `when` could not be evaluated on this event.
        """
        if not self.wants(flow, envelope):
            return None
        await self._wait_for_room()
        run_id = RunId(ids.new_id("run"))
        lead = self.executor.lead(flow, envelope, run_id)
        event = store.NewEvent(
            flow_id=FlowId(flow.id),
            flow_version=flow.version,
            trigger=trigger,
            body=envelope,
            received=clock.now(),
            dedupe_key=dedupe_key,
            run_id=run_id,
            journal=lead,
        )
        accepted = await self.db.accept_event(event)
        metrics.EVENTS_ACCEPTED.labels(flow.id, str(accepted.is_duplicate).lower()).inc()
        if not accepted.is_duplicate:
            state = store.RunState(
                run_id=accepted.run_id,
                flow_id=event.flow_id,
                flow_version=flow.version,
                status=store.RunStatus.QUEUED,
                generation=0,
                event_id=accepted.event_id,
                event_body=envelope,
                received=event.received,
                journal=list(lead),
            )
            self._queue.put_nowait((accepted.run_id, state))
        return accepted

    def wants(self, flow: CompiledFlow, envelope: Json) -> bool:
        """Whether the flow's `when` condition holds for an event (True without a condition)."""
        return flow.when is None or flow.when.is_true({**self.context, "event": envelope})

    async def _wait_for_room(self) -> None:
        if not self._accepting:
            raise Overloaded(retry_after_s=5)
        if self._queue.qsize() < self.options.max_queue:
            return
        try:
            async with asyncio.timeout(self.options.accept_wait.total_seconds()):
                async with self._room:
                    await self._room.wait_for(lambda: self._queue.qsize() < self.options.max_queue)
        except TimeoutError:
            raise Overloaded(retry_after_s=1) from None

    def wake(self, run_ids: Sequence[RunId]) -> None:
        """Queue runs that became runnable (timer fired, signal arrived, child finished)."""
        for run_id in run_ids:
            self._queue.put_nowait((run_id, None))

    async def signal(self, name: str, key: str, payload: Json) -> list[RunId]:
        """Deliver a signal to the runs waiting for (name, key); kept for later if none waits yet."""
        woken = await self.db.deliver_signal(name, key, payload)
        self.wake(woken)
        return woken

    async def replay(self, run_id: RunId) -> None:
        """Re-run a failed or dead-lettered run from its failed step."""
        await self.db.replay_run(run_id)
        self.wake([run_id])

    def response_for(self, run_id: RunId) -> asyncio.Future[Json]:
        """A future that resolves when the run's `respond` step answered."""
        future: asyncio.Future[Json] = asyncio.get_running_loop().create_future()
        self._responders[run_id] = future
        return future

    def forget_response(self, run_id: RunId) -> None:
        """Stop waiting for a run's response."""
        self._responders.pop(run_id, None)

    def _respond(self, run_id: RunId, answer: Json) -> None:
        future = self._responders.pop(run_id, None)
        if future is not None and not future.done():
            future.set_result(answer)

    @property
    def queue_depth(self) -> int:
        """Runnable runs waiting for a worker."""
        return self._queue.qsize()

    # -- workers ---------------------------------------------------------------------
    async def _worker(self) -> None:
        while True:
            run_id, state = await self._queue.get()
            if self._queue.qsize() < self.options.max_queue:
                async with self._room:
                    self._room.notify_all()
            if run_id in self._active:
                self._again.add(run_id)
                continue
            self._active.add(run_id)
            self._busy += 1
            try:
                await self._execute(run_id, state)
            except asyncio.CancelledError:
                raise
            except Exception:  # a worker survives any run's failure; the run stays unfinished
                log.exception("executing run failed", extra={"run_id": run_id})
            finally:
                self._busy -= 1
                if self._busy == 0:
                    async with self._idle:
                        self._idle.notify_all()
                self._active.discard(run_id)
                if run_id in self._again:
                    self._again.discard(run_id)
                    self._queue.put_nowait((run_id, None))

    async def _execute(self, run_id: RunId, state: store.RunState | None) -> None:
        if state is None:
            state = await self.db.load_run(run_id)
            if state.status not in (store.RunStatus.QUEUED, store.RunStatus.RUNNING):
                return
        flow = await self.catalog.at_version(self.db, state.flow_id, state.flow_version)
        limit = self._flow_limits.get(flow.id)
        metrics.RUNS_STARTED.labels(flow.id).inc()
        started = asyncio.get_running_loop().time()
        async with limit if limit is not None else contextlib.nullcontext():
            status = await self.executor.execute(state, flow)
        metrics.RUN_SECONDS.labels(flow.id).observe(asyncio.get_running_loop().time() - started)
        if status.is_finished:
            metrics.RUNS_FINISHED.labels(flow.id, status.value).inc()
            if status is store.RunStatus.DEAD_LETTER:
                metrics.DEAD_LETTERS.labels(flow.id).inc()
                log.warning("run dead-lettered", extra={"run_id": run_id, "flow": flow.id})
