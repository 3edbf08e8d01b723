"""The engine of one process: its inbox, workers, leases, journal, timers and feeds, wired together.

Which parts run depends on the process's role (`EngineOptions`): `seamflow serve` runs all of
them; `seamflow api` only accepts (the inbox); `seamflow worker` executes, fires timers and
runs feeds. Each part gets the narrow collaborators it uses, not the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from seamflow import clock, errors, store
from seamflow.engine import approval
from seamflow.engine.catalog import Catalog, CatalogChange, FlowSource
from seamflow.engine.connections import Pool
from seamflow.engine.executor import Executor
from seamflow.engine.feeds import FeedOptions, FeedRunner
from seamflow.engine.inbox import Event, Inbox, InboxOptions
from seamflow.engine.journal import Journal
from seamflow.engine.leases import LeaseOptions, Leases
from seamflow.engine.limits import ClusterSlots
from seamflow.engine.links import DecisionLinks
from seamflow.engine.notices import NoticeOptions, NoticeSender
from seamflow.engine.services import Services
from seamflow.engine.timers import TimerLoop
from seamflow.engine.workers import RunQueue, WorkerOptions, Workers
from seamflow.flows import CompiledFlow
from seamflow.ids import FlowId, Json, RunId

__all__ = ["Engine", "EngineOptions"]

log = logging.getLogger("seamflow.engine")

_PRUNE_BATCH = 500


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
    records_deployments: bool = True
    """Record a deployment row when the flows served change (at start and on reload). False for a
    serve group's other processes (the first records for the group: a member that starts late read
    the files earlier and would record a stale version) and for a CLI command running one flow."""


class Engine:
    """One process's engine over a store, a catalog of flows and open connections.

    Args:
        db: the store (each part gets the protocol it needs).
        catalog: the flows this process serves.
        pool: the connections steps call.
        context: `env` and `secrets` for templates.
        options: the process's role and tuning.
    """

    def __init__(
        self,
        db: store.Store,
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
        self.journal = Journal(db)
        self._queue = RunQueue(options.max_queue)
        self.slots = ClusterSlots(db, lambda: self.leases.worker_id, options.lease, is_shared=db.is_shared)
        self.leases = Leases(
            db,
            self._queue,
            self.slots,
            LeaseOptions(options.lease, options.claim_poll, options.execute and options.claim),
        )
        self._responders: dict[RunId, asyncio.Future[Json]] = {}
        self.executor = Executor(
            self.journal,
            pool,
            wake=self.wake,
            respond=self._respond,
            context=context,
            version_of=catalog.version_of,
            slots=self.slots,
            people=db,
        )
        self.inbox = Inbox(
            self.journal,
            self._queue,
            lead=self.executor.lead,
            new_lease=self.leases.new_lease,
            context=context,
            options=InboxOptions(options.accept_wait, options.execute, options.max_backlog),
        )
        self.workers = Workers(
            self._queue,
            self.executor,
            catalog,
            db,
            self.slots,
            is_lease_valid=self.leases.is_held,
            wake=self.wake,
            options=WorkerOptions(options.workers, options.claim_poll),
        )
        self.timers = TimerLoop(
            db, self.journal, catalog, wants=self.inbox.wants, wake=self.wake, poll=options.timer_poll
        )
        self.feeds = FeedRunner(db, self.inbox, catalog, pool, FeedOptions(self.leases.worker_id, options.lease))
        self.services = Services()
        """Capabilities built on this engine (e.g. the sync service), for the API and CLI to reach."""
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def worker_id(self) -> str:
        """This process in the store."""
        return self.leases.worker_id

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        """Open connections, record flow versions, register this process, start its loops."""
        await self.pool.open()
        await self.db.save_flow_versions(
            [store.FlowVersion(FlowId(f.id), f.version, f.source, f.path) for f in self.catalog.current.values()]
        )
        await self._record_deployments(
            {f.id: f.version for f in self.catalog.current.values()}, how="start", by="serve"
        )
        opts = self.options
        roles = ",".join(
            r for r, on in (("execute", opts.execute), ("claim", opts.claim), ("timers", opts.timers)) if on
        )
        await self.leases.register(roles or "api")
        await self.report_catalog()
        tasks = [asyncio.create_task(self.leases.heartbeat(), name="heartbeat")]
        if opts.execute:
            tasks += self.workers.start()
            tasks.append(asyncio.create_task(self.leases.claim_loop(), name="claims"))
            if opts.claim:
                tasks.append(asyncio.create_task(self.db.listen(self.leases.on_notify), name="listen"))
        else:
            tasks.append(asyncio.create_task(self.inbox.watch_backlog(self._count_backlog), name="backlog"))
        if opts.timers:
            await self.timers.register_schedules()
            tasks.append(asyncio.create_task(self.timers.run(), name="timers"))
            tasks += self.feeds.start()
        if opts.timers:  # the process that fires timers also sends approvals' notifications
            sender = NoticeSender(self.db, self.pool, lambda: self.services.get(DecisionLinks), NoticeOptions())
            tasks.append(asyncio.create_task(sender.run(), name="notices"))
        if opts.retention is not None:
            tasks.append(asyncio.create_task(self._prune(opts.retention), name="retention"))
        self._tasks = tasks
        self.inbox.is_open = True

    async def reload_flows(
        self, sources: Mapping[str, FlowSource], *, how: str = "reload", by: str = "reload"
    ) -> CatalogChange:
        """Serve `sources` from now on: store their versions, then swap the catalog in one step.

        Runs already started keep their version; new schedules are registered, and the feeds
        restart if a flow with a feed trigger came, went or changed. A flow whose version changed
        gets a deployment row (`how`: watch, api, signal; `by`: who asked).
        """
        await self.db.save_flow_versions(
            [store.FlowVersion(FlowId(flow_id), s.version, s.source, s.path) for flow_id, s in sources.items()]
        )
        current = self.catalog.current
        deployed = {i: s.version for i, s in sources.items() if i not in current or current[i].version != s.version}
        await self._record_deployments(deployed, how=how, by=by)  # before the swap: who sees it, sees its row
        had_feeds = {f.id: f.version for f in self.catalog.current.values() if f.spec.trigger.feed}
        change = self.catalog.replace(sources)
        await self.report_catalog()
        if change.is_empty or not (self.options.timers and self._tasks):
            return change
        await self.timers.register_schedules()
        has_feeds = {f.id: f.version for f in self.catalog.current.values() if f.spec.trigger.feed}
        if has_feeds != had_feeds:
            await self.feeds.stop()
            self._tasks = [t for t in self._tasks if not t.done()] + self.feeds.start()
        return change

    async def report_catalog(self) -> None:
        """Record in the store which flows this process serves (`Catalog.digest`), for its serve group.

        Advisory: a store that is away is logged, and a save waiting for the group waits its bound.
        """
        try:
            await self.db.report_catalog(self.worker_id, self.catalog.digest)
        except errors.StoreError as exc:
            log.warning("reporting the flows served failed: %s", exc.message)

    async def _record_deployments(self, versions: Mapping[str, str], *, how: str, by: str) -> None:
        """A deployment row per flow whose version is not its last deployed one (a serve group records it once)."""
        if not self.options.records_deployments:
            return
        now = clock.now()
        rows = [store.Deployment(flow_id, version, now, by, how) for flow_id, version in sorted(versions.items())]
        if rows:
            await self.db.record_deployments(rows)

    async def stop(self) -> None:
        """Stop accepting, let in-flight steps finish (bounded), release leases, stop workers and connections.

        Releasing the leases lets other processes take over this one's queued runs at once.
        """
        self.inbox.is_open = False
        self.timers.stop()
        await self.feeds.stop()
        await self.workers.drain(self.options.drain_timeout)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.leases.release()
        await self.pool.close()

    async def _count_backlog(self) -> int:
        return await self.db.count_unclaimed_runs(clock.now())

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

    # -- what triggers and people do -------------------------------------------------
    async def accept(self, flow: CompiledFlow, event: Event) -> store.Accepted | None:
        """Commit an event for `flow` and queue its run (see `Inbox.accept`)."""
        return await self.inbox.accept(flow, event)

    def wake(self, run_ids: Sequence[RunId]) -> None:
        """Claim and queue runs this process made runnable (timer fired, signal arrived, child finished).

        A process that does not execute leaves them to the workers (the store notified them).
        """
        if self.options.execute:
            self.leases.wake(run_ids)

    def is_active(self, run_id: RunId) -> bool:
        """True while this process executes the run or has it queued to execute again."""
        return self.workers.is_active(run_id)

    async def signal(self, name: str, key: str, payload: Json) -> list[RunId]:
        """Deliver a signal to the runs waiting for (name, key); kept for later if none waits yet."""
        woken = await self.journal.deliver_signal(name, key, payload)
        self.wake(woken)
        return woken

    async def decide_task(
        self,
        task_id: str,
        who: str,
        decision: str,
        comment: str | None,
        form: Json,
        witness: approval.Witness | None = None,
    ) -> approval.Decided:
        """Decide an approval task as `who` (with `witness`, its audit entry, in the same commit);
        the run resumes if the decision settled its approval."""
        decided = await self.journal.decide_task(task_id, who, decision, comment, form, witness)
        self.wake(decided.woken)
        return decided

    async def withdraw_task(self, task_id: str, who: str) -> None:
        """The requester `who` withdraws the approval of a task; its run resumes with `withdrawn`."""
        self.wake(await self.journal.withdraw(task_id, who))

    async def resubmit_task(self, task_id: str, who: str, changes: Json, comment: str | None) -> None:
        """The requester `who` resubmits a returned request with `changes`; approvers are asked again."""
        await self.journal.resubmit(task_id, who, changes, comment)

    async def replay(self, run_id: RunId) -> None:
        """Re-run a failed or dead-lettered run from its failed step."""
        await self.journal.replay(run_id)
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
        return self._queue.depth
