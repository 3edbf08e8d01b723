"""The engine of one process: accepts events, runs a bounded pool of workers, fires timers and schedules.

Backpressure: the queue of runnable runs is bounded by `max_queue`. When it is full, accepting
waits up to `accept_wait` for room and then refuses with `Overloaded` (HTTP 503 with
Retry-After) before anything is stored; an accepted event is never dropped.

Several processes may share one store (PostgreSQL). A process executes a run only while it
holds the run's lease: it gets it when it accepts the event itself, or claims it from the
store (runs nobody holds, or whose holder's lease ran out). A heartbeat renews the leases;
every journal write carries the lease's epoch, so a process that lost a run cannot commit
over its new owner. See docs/postgresql.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from seamflow import clock, errors, ids, store
from seamflow.engine import metrics
from seamflow.engine.catalog import Catalog
from seamflow.engine.connections import Pool
from seamflow.engine.executor import Executor
from seamflow.engine.feeds import FeedRunner
from seamflow.engine.limits import ClusterSlots
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
    execute: bool = True
    """Execute runs in this process (`seamflow api` does not: it only accepts)."""
    claim: bool = True
    """Take over any runnable run of the store (resume after a restart, a dead worker's runs).

    False (a CLI command running one flow): only runs this process accepts or wakes itself."""
    timers: bool = True
    """Fire durable timers and schedules, and run `poll`/`consume` triggers, in this process."""
    lease: timedelta = timedelta(seconds=30)
    """How long a run stays with this process without a heartbeat; after that others take it over."""
    claim_poll: timedelta = timedelta(seconds=1)
    """How often to look for claimable runs when no notification came."""
    retention: timedelta | None = None
    """Prune runs finished longer ago than this (with their events and journal); None keeps them."""
    max_backlog: int = 512
    """A process that does not execute (`seamflow api`) refuses new events with 503 while this many
    runs wait for a worker cluster-wide, so senders slow down instead of latency growing without bound."""


class Overloaded(errors.SeamflowError):
    """The engine's queue is full; the caller should retry after `retry_after_s`."""

    code = "engine.overloaded"
    http_status = 503

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"the engine is at capacity; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


_Item = tuple[RunId, store.RunState | None, int]
"""A run to execute: its id, its state if known, and the epoch of this process's lease on it."""

_PRUNE_BATCH = 500


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
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.slots = ClusterSlots(
            db, lambda: self.worker_id, options.lease, is_shared=isinstance(db, store.PostgresStore)
        )
        self.executor = Executor(
            db,
            pool,
            wake=self.wake,
            respond=self._respond,
            context=context,
            version_of=catalog.version_of,
            slots=self.slots,
        )
        self.timers = TimerLoop(self)
        self.feeds = FeedRunner(self)
        self.services: dict[str, Any] = {}
        """Capabilities built on this engine, by name (e.g. `sync`), for the API and CLI to reach."""
        self._tasks: list[asyncio.Task[None]] = []
        self._accepting = False
        self._busy = 0
        self._wanted: list[RunId] = []
        self._held: set[RunId] = set()
        """Runs this process has queued or is executing (claimed once; a second claim would fence itself)."""
        self._claimable = asyncio.Event()
        self._lease_valid_until = clock.now()
        self._backlog = 0

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        """Open connections, record flow versions, register this process, start its loops.

        What runs depends on `options`: workers and the claim loop if it executes runs,
        timers, schedules and feeds if `timers`.
        """
        await self.pool.open()
        for flow in self.catalog.current.values():
            await self.db.save_flow_version(FlowId(flow.id), flow.version, flow.source, flow.path)
        opts = self.options
        now = clock.now()
        roles = ",".join(
            r for r, on in (("execute", opts.execute), ("claim", opts.claim), ("timers", opts.timers)) if on
        )
        await self.db.register_worker(
            store.WorkerInfo(self.worker_id, socket.gethostname(), os.getpid(), roles or "api", now, now)
        )
        self._lease_valid_until = now + opts.lease
        if opts.execute and opts.claim:
            await self._release_dead_local_workers()
        self._tasks = [asyncio.create_task(self._heartbeat(), name="heartbeat")]
        if opts.execute:
            self._tasks += [asyncio.create_task(self._worker(), name=f"worker-{i}") for i in range(opts.workers)]
            self._tasks.append(asyncio.create_task(self._claim_loop(), name="claims"))
            if opts.claim:
                self._tasks.append(asyncio.create_task(self.db.listen(self._on_wake), name="listen"))
        if opts.timers:
            await self.timers.register_schedules()
            self._tasks.append(asyncio.create_task(self.timers.run(), name="timers"))
            self._tasks += self.feeds.start()
        if not opts.execute:
            self._tasks.append(asyncio.create_task(self._watch_backlog(), name="backlog"))
        if opts.retention is not None:
            self._tasks.append(asyncio.create_task(self._prune(opts.retention), name="retention"))
        self._accepting = True

    def is_active(self, run_id: RunId) -> bool:
        """True while this process executes the run or has it queued to execute again."""
        return run_id in self._active or run_id in self._again

    async def stop(self) -> None:
        """Stop accepting, let in-flight steps finish (bounded), release leases, stop workers and connections.

        Releasing the leases lets other processes take over this one's queued runs at once.
        """
        self._accepting = False
        self.timers.stop()
        await self.feeds.stop()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.options.drain_timeout.total_seconds()), self._idle:
                await self._idle.wait_for(lambda: self._busy == 0)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        try:
            await self.db.release_worker(self.worker_id, clock.now())
        except errors.StoreError as exc:  # the leases then run out on their own
            log.warning("releasing leases failed", extra={"error": exc.message})
        await self.pool.close()

    # -- leases ------------------------------------------------------------------------
    def _new_lease(self) -> store.Lease:
        return store.Lease(self.worker_id, clock.now() + self.options.lease)

    async def _heartbeat(self) -> None:
        """Renew this process's leases every third of the lease; stop executing if renewal keeps failing."""
        every = self.options.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(every)
            started = clock.now()
            try:
                await self.db.heartbeat(
                    self.worker_id,
                    started,
                    started + self.options.lease,
                    [*self._held, *self._wanted],
                    list(self.slots.held),
                )
            except errors.StoreError as exc:
                log.warning("heartbeat failed; leases run out unless it recovers", extra={"error": exc.message})
                continue
            self._lease_valid_until = started + self.options.lease

    async def _release_dead_local_workers(self) -> None:
        """Free at once the runs of workers on this host whose process is gone (e.g. killed before a restart)."""
        host = socket.gethostname()
        for worker in await self.db.list_workers():
            if worker.host == host and worker.id != self.worker_id and not _is_alive(worker.pid):
                released = await self.db.release_worker(worker.id, clock.now())
                log.info("took over a dead worker's runs", extra={"worker": worker.id, "count": released})

    def _on_wake(self, channel: str) -> None:
        if channel.endswith("slots"):
            self.slots.freed()
        else:
            self._claimable.set()

    async def _claim_loop(self) -> None:
        """Claim runs for this process's workers: the ones it woke, and (with `claim`) any claimable one."""
        poll = self.options.claim_poll.total_seconds()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll):
                    await self._claimable.wait()
            self._claimable.clear()
            try:
                await self._claim_round()
            except errors.StoreError as exc:
                log.warning("claiming runs failed; retrying", extra={"error": exc.message})
                await asyncio.sleep(poll)

    def _enqueue(self, run_id: RunId, state: store.RunState | None, epoch: int) -> None:
        self._held.add(run_id)
        self._queue.put_nowait((run_id, state, epoch))

    async def _claim_round(self) -> None:
        wanted = []
        for run_id in dict.fromkeys(self._wanted):
            if run_id in self._held:  # woken while queued or executing here: look again when it is done
                self._again.add(run_id)
            else:
                wanted.append(run_id)
        self._wanted = []
        if wanted:
            lease = self._new_lease()
            try:
                got = await self.db.claim_runs(self.worker_id, clock.now(), lease.until, len(wanted), wanted)
            except errors.StoreError:
                self._wanted.extend(wanted)  # not lost with the connection: the next round tries again
                raise
            for claimed in got:
                self._enqueue(claimed.run_id, None, claimed.epoch)
        if not self.options.claim:
            return
        while (room := self.options.max_queue - self._queue.qsize()) > 0:
            limit = min(room, 100)
            lease = self._new_lease()
            got = await self.db.claim_runs(self.worker_id, clock.now(), lease.until, limit)
            for claimed in got:
                if claimed.run_id not in self._held:
                    self._enqueue(claimed.run_id, None, claimed.epoch)
            if len(got) < limit:
                return

    async def _watch_backlog(self) -> None:
        """Keep `_backlog` (runs no worker holds yet) fresh, five times a second."""
        while True:
            try:
                self._backlog = await self.db.count_unclaimed_runs(clock.now())
            except errors.StoreError:
                self._backlog = 0  # accepting then fails on the store itself, with its own error
            await asyncio.sleep(0.2)

    async def _prune(self, keep: timedelta) -> None:
        """Delete finished runs older than `keep` in small batches, once a minute."""
        while True:
            try:
                pruned = _PRUNE_BATCH
                while pruned == _PRUNE_BATCH:  # small batches: other writes get through in between
                    pruned = await self.db.prune_finished_runs(clock.now() - keep, _PRUNE_BATCH)
            except errors.StoreError as exc:
                log.warning("pruning finished runs failed", extra={"error": exc.message})
            await asyncio.sleep(60)

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
            lease=self._new_lease() if self.options.execute else None,
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
                epoch=1,
            )
            if self.options.execute:
                self._enqueue(accepted.run_id, state, 1)
        return accepted

    def wants(self, flow: CompiledFlow, envelope: Json) -> bool:
        """Whether the flow's `when` condition holds for an event (True without a condition)."""
        return flow.when is None or flow.when.is_true({**self.context, "event": envelope})

    async def _wait_for_room(self) -> None:
        if not self._accepting:
            raise Overloaded(retry_after_s=5)
        if not self.options.execute:
            if self._backlog >= self.options.max_backlog:
                raise Overloaded(retry_after_s=1)
            return
        if self._queue.qsize() < self.options.max_queue:
            return
        try:
            async with asyncio.timeout(self.options.accept_wait.total_seconds()):
                async with self._room:
                    await self._room.wait_for(lambda: self._queue.qsize() < self.options.max_queue)
        except TimeoutError:
            raise Overloaded(retry_after_s=1) from None

    def wake(self, run_ids: Sequence[RunId]) -> None:
        """Claim and queue runs this process made runnable (timer fired, signal arrived, child finished).

        A process that does not execute leaves them to the workers (the store notified them).
        """
        if self.options.execute and run_ids:
            self._wanted.extend(run_ids)
            self._claimable.set()

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
        if not self.options.execute:  # another process runs it: watch the journal for its answer
            task = asyncio.create_task(self._poll_response(run_id, future))
            future.add_done_callback(lambda _: task.cancel())
        return future

    async def _poll_response(self, run_id: RunId, future: asyncio.Future[Json]) -> None:
        while not future.done():
            answer = await self.db.find_response(run_id)
            if answer is not None:
                self._respond(run_id, answer)
                return
            await asyncio.sleep(0.02)

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
            run_id, state, epoch = await self._queue.get()
            if self._queue.qsize() < self.options.max_queue:
                async with self._room:
                    self._room.notify_all()
            if run_id in self._active:
                self._again.add(run_id)
                continue
            self._active.add(run_id)
            self._busy += 1
            try:
                await self._execute(run_id, state, epoch)
            except asyncio.CancelledError:
                raise
            except errors.LeaseLost:
                log.warning("run taken over by another worker; dropped here", extra={"run_id": run_id})
            except errors.StoreError as exc:  # the store is away: give the run back, another try claims it
                log.warning("executing run failed on the store", extra={"run_id": run_id, "error": exc.message})
                self._retry_later(run_id)
            except Exception:  # a worker survives any run's failure; the run stays unfinished
                log.exception("executing run failed", extra={"run_id": run_id})
            finally:
                self._busy -= 1
                if self._busy == 0:
                    async with self._idle:
                        self._idle.notify_all()
                self._active.discard(run_id)
                self._held.discard(run_id)
                if run_id in self._again:
                    self._again.discard(run_id)
                    self.wake([run_id])

    def _retry_later(self, run_id: RunId) -> None:
        """Claim the run again after a pause (its lease is still ours, or ran out and anyone may take it)."""

        async def later() -> None:
            await asyncio.sleep(self.options.claim_poll.total_seconds())
            self._wanted.append(run_id)
            self._claimable.set()

        task = asyncio.create_task(later())
        self._tasks.append(task)
        task.add_done_callback(self._tasks.remove)

    async def _execute(self, run_id: RunId, state: store.RunState | None, epoch: int) -> None:
        if clock.now() >= self._lease_valid_until:  # our heartbeat has failed for a whole lease: not ours now
            raise errors.LeaseLost(f"this process could not renew its leases; run {run_id} is left to others")
        if state is None:
            state = await self.db.load_run(run_id)
            if state.status not in (store.RunStatus.QUEUED, store.RunStatus.RUNNING):
                return
        if state.epoch != epoch:
            raise errors.LeaseLost(f"run {run_id} was claimed by another worker before it started here")
        flow = await self.catalog.at_version(self.db, state.flow_id, state.flow_version)
        limit = self._flow_limits.get(flow.id)
        metrics.RUNS_STARTED.labels(flow.id).inc()
        started = asyncio.get_running_loop().time()
        cluster = (
            self.slots.hold(f"flow:{flow.id}", flow.spec.concurrency, run_id)
            if flow.spec.concurrency
            else contextlib.nullcontext()
        )
        async with limit if limit is not None else contextlib.nullcontext(), cluster:
            status = await self.executor.execute(state, flow)
        metrics.RUN_SECONDS.labels(flow.id).observe(asyncio.get_running_loop().time() - started)
        if status.is_finished:
            metrics.RUNS_FINISHED.labels(flow.id, status.value).inc()
            if status is store.RunStatus.DEAD_LETTER:
                metrics.DEAD_LETTERS.labels(flow.id).inc()
                log.warning("run dead-lettered", extra={"run_id": run_id, "flow": flow.id})


def _is_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True
