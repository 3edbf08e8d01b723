"""Workers: the runs this process executes, a bounded queue of them and the tasks that walk them.

A run reaches the queue when this process accepts its event (it holds the run's lease from
the same commit) or claims it (`leases.py`). Each worker takes one run at a time and lets
the executor walk it until it finishes or parks. A run woken while it is queued or running
here is executed once more when the current walk is done, never twice at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol

from seamflow import errors, store
from seamflow.engine import metrics
from seamflow.engine.catalog import Catalog
from seamflow.engine.limits import ClusterSlots
from seamflow.flows import CompiledFlow
from seamflow.ids import RunId

if TYPE_CHECKING:  # the executor imports the inbox, which queues here
    from seamflow.engine.executor import Executor

__all__ = ["RunQueue", "WorkerOptions", "Workers"]

log = logging.getLogger("seamflow.engine")


class RunSource(store.RunReads, store.FlowVersions, Protocol):
    """What workers read: runs they did not accept themselves, and older flow versions."""


@dataclass(frozen=True, slots=True)
class _Item:
    run_id: RunId
    state: store.RunState | None
    """The run's state if known (a run this process just accepted), else it is loaded."""
    epoch: int
    """The epoch of this process's lease on the run; journal writes carry it."""


class RunQueue:
    """Runs this process holds to execute, in order, bounded by `max_queue` for accepting.

    Args:
        max_queue: runnable runs waiting for a worker above which accepting waits, then refuses.
    """

    def __init__(self, max_queue: int) -> None:
        self.max_queue = max_queue
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._room = asyncio.Condition()
        self.held: set[RunId] = set()
        """Runs queued or executing here (claimed once; a second claim would fence itself)."""
        self.again: set[RunId] = set()
        """Runs woken while held here: executed once more when their current walk ends."""

    def put(self, run_id: RunId, state: store.RunState | None, epoch: int) -> None:
        """Queue a run this process holds the lease on."""
        self.held.add(run_id)
        self._queue.put_nowait(_Item(run_id, state, epoch))

    async def get(self) -> _Item:
        """The next run to execute; tells accepting there is room again."""
        item = await self._queue.get()
        if self._queue.qsize() < self.max_queue:
            async with self._room:
                self._room.notify_all()
        return item

    @property
    def depth(self) -> int:
        """Runnable runs waiting for a worker."""
        return self._queue.qsize()

    @property
    def room(self) -> int:
        """How many more runs fit before accepting has to wait."""
        return self.max_queue - self._queue.qsize()

    async def wait_for_room(self, patience: timedelta) -> bool:
        """Wait until the queue has room; False if it stayed full for `patience`."""
        if self._queue.qsize() < self.max_queue:
            return True
        try:
            async with asyncio.timeout(patience.total_seconds()), self._room:
                await self._room.wait_for(lambda: self._queue.qsize() < self.max_queue)
        except TimeoutError:
            return False
        return True


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """What the workers need of the engine's options."""

    workers: int
    retry_pause: timedelta
    """How long a run that failed on the store waits before it is claimed again."""


class Workers:
    """Executes queued runs with a bounded pool of tasks.

    Args:
        queue: the runs to execute.
        executor: walks one run.
        catalog: the flows, and older versions from `db`.
        db: where older flow versions and unqueued runs' states are read.
        slots: cluster-wide concurrency slots for flows with `concurrency`.
        is_lease_valid: False once this process's heartbeat has failed for a whole lease (renews a late one).
        wake: claims and queues runs again (a run woken while it ran here, or retried later).
        options: pool size and pauses.
    """

    def __init__(
        self,
        queue: RunQueue,
        executor: Executor,
        catalog: Catalog,
        db: RunSource,
        slots: ClusterSlots,
        *,
        is_lease_valid: Callable[[], Awaitable[bool]],
        wake: Callable[[Sequence[RunId]], None],
        options: WorkerOptions,
    ) -> None:
        self._queue = queue
        self._executor = executor
        self._catalog = catalog
        self._db = db
        self._slots = slots
        self._is_lease_valid = is_lease_valid
        self._wake = wake
        self._options = options
        self._active: set[RunId] = set()
        self._busy = 0
        self._idle = asyncio.Condition()
        self._later: set[asyncio.Task[None]] = set()
        self._flow_limits: dict[tuple[str, int], asyncio.Semaphore] = {}

    def start(self) -> list[asyncio.Task[None]]:
        """Start the worker tasks; the caller cancels them on stop."""
        return [asyncio.create_task(self._work(), name=f"worker-{i}") for i in range(self._options.workers)]

    def _flow_limit(self, flow: CompiledFlow) -> asyncio.Semaphore | None:
        """This process's share of a flow's `concurrency`, made on first use (a reload may add flows)."""
        if not flow.spec.concurrency:
            return None
        key = (flow.id, flow.spec.concurrency)
        limit = self._flow_limits.get(key)
        if limit is None:
            limit = self._flow_limits[key] = asyncio.Semaphore(flow.spec.concurrency)
        return limit

    def is_active(self, run_id: RunId) -> bool:
        """True while this process executes the run or has it queued to execute again."""
        return run_id in self._active or run_id in self._queue.again

    async def drain(self, patience: timedelta) -> None:
        """Wait (bounded) until no run is executing here; cancel pending re-claims."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(patience.total_seconds()), self._idle:
                await self._idle.wait_for(lambda: self._busy == 0)
        for task in list(self._later):
            task.cancel()

    async def _work(self) -> None:
        while True:
            # One run per call: its state (and event body) goes with the call's frame, instead of
            # staying alive in a local while this worker waits for the next (64 idle workers held
            # 64 MB after a burst of 1 MiB bodies).
            await self._take(await self._queue.get())

    async def _take(self, item: _Item) -> None:
        run_id = item.run_id
        if run_id in self._active:
            self._queue.again.add(run_id)
            return
        self._active.add(run_id)
        self._busy += 1
        try:
            await self._execute(item)
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
            await self._done(run_id)

    async def _done(self, run_id: RunId) -> None:
        self._busy -= 1
        if self._busy == 0:
            async with self._idle:
                self._idle.notify_all()
        self._active.discard(run_id)
        self._queue.held.discard(run_id)
        if run_id in self._queue.again:
            self._queue.again.discard(run_id)
            self._wake([run_id])

    def _retry_later(self, run_id: RunId) -> None:
        """Claim the run again after a pause (its lease is still ours, or ran out and anyone may take it)."""

        async def later() -> None:
            await asyncio.sleep(self._options.retry_pause.total_seconds())
            self._wake([run_id])

        task = asyncio.create_task(later())
        self._later.add(task)
        task.add_done_callback(self._later.discard)

    async def _execute(self, item: _Item) -> None:
        run_id, state = item.run_id, item.state
        if not await self._is_lease_valid():  # our heartbeat has failed for a whole lease: not ours now
            raise errors.LeaseLost(f"this process could not renew its leases; run {run_id} is left to others")
        if state is None:
            state = await self._db.load_run(run_id)
        if state.status not in (store.RunStatus.QUEUED, store.RunStatus.RUNNING):
            return
        if state.epoch != item.epoch:
            raise errors.LeaseLost(f"run {run_id} was claimed by another worker before it started here")
        flow = await self._catalog.at_version(self._db, state.flow_id, state.flow_version)
        limit = self._flow_limit(flow)
        metrics.RUNS_STARTED.labels(flow.id).inc()
        started = asyncio.get_running_loop().time()
        cluster = (
            self._slots.hold(f"flow:{flow.id}", flow.spec.concurrency, run_id)
            if flow.spec.concurrency
            else contextlib.nullcontext()
        )
        async with limit if limit is not None else contextlib.nullcontext(), cluster:
            status = await self._executor.execute(state, flow)
        metrics.RUN_SECONDS.labels(flow.id).observe(asyncio.get_running_loop().time() - started)
        if status.is_finished:
            metrics.RUNS_FINISHED.labels(flow.id, status.value).inc()
            if status is store.RunStatus.DEAD_LETTER:
                metrics.DEAD_LETTERS.labels(flow.id).inc()
                log.warning("run dead-lettered", extra={"run_id": run_id, "flow": flow.id})
