"""Leases: this process's claim on runs, kept alive by a heartbeat, and the claims that take runs over.

A process executes a run only while it holds the run's lease: it gets it when it accepts the
event itself, or claims it from the store (runs nobody holds, or whose holder's lease ran
out). A heartbeat renews the leases of the runs and slots the process knows it holds; every
journal write carries the lease's epoch, so a process that lost a run cannot commit over its
new owner. Runs this process made runnable (a timer fired, a signal arrived, a child ended)
are claimed by it at once; with `claim`, any claimable run is taken too (a restart resumes
its runs, a dead worker's runs are taken over). See docs/postgresql.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from seamflow import clock, errors, store
from seamflow.engine import metrics
from seamflow.engine.limits import ClusterSlots
from seamflow.engine.workers import RunQueue
from seamflow.ids import RunId

__all__ = ["LeaseOptions", "Leases"]

log = logging.getLogger("seamflow.engine")

_CLAIM_BATCH = 100


@dataclass(frozen=True, slots=True)
class LeaseOptions:
    """How long leases last and how claims are looked for."""

    lease: timedelta
    """How long a run stays with this process without a heartbeat."""
    claim_poll: timedelta
    """How often to look for claimable runs when no notification came."""
    is_claiming: bool
    """Take over any claimable run (False: only runs this process woke itself)."""


class ClaimStore(store.LeaseStore, store.RunReads, Protocol):
    """Claims, and the claimed runs' state read back in one round trip per batch."""


class Leases:
    """This process as a worker of the store: its id, its heartbeat, its claims.

    Args:
        db: workers, leases and claims.
        queue: where claimed runs go to be executed.
        slots: cluster-wide slots whose leases the heartbeat renews too.
        options: lease length and claiming.
    """

    def __init__(self, db: ClaimStore, queue: RunQueue, slots: ClusterSlots, options: LeaseOptions) -> None:
        self._db = db
        self._queue = queue
        self._slots = slots
        self._options = options
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        """This process in the store: host, pid and a random suffix (pids are reused)."""
        self._wanted: list[RunId] = []
        self._claimable = asyncio.Event()
        self._valid_until = clock.now()
        self._renewing = asyncio.Lock()

    def new_lease(self) -> store.Lease:
        """A lease on a run for this process from now."""
        return store.Lease(self.worker_id, clock.now() + self._options.lease)

    def is_valid(self) -> bool:
        """False once the heartbeat has failed for a whole lease: other processes may own our runs now."""
        return clock.now() < self._valid_until

    async def register(self, roles: str) -> None:
        """Record this process in the store; free at once the runs of dead processes on this host."""
        now = clock.now()
        await self._db.register_worker(
            store.WorkerInfo(self.worker_id, socket.gethostname(), os.getpid(), roles, now, now)
        )
        self._valid_until = now + self._options.lease
        if self._options.is_claiming:
            await self._release_dead_local_workers()

    async def release(self) -> None:
        """Give up every lease of this process so others take its runs at once."""
        try:
            await self._db.release_worker(self.worker_id, clock.now())
        except errors.StoreError as exc:  # the leases then run out on their own
            log.warning("releasing leases failed", extra={"error": exc.message})

    def wake(self, run_ids: Sequence[RunId]) -> None:
        """Claim and queue runs this process made runnable."""
        if run_ids:
            self._wanted.extend(run_ids)
            self._claimable.set()

    def on_notify(self, channel: str) -> None:
        """Another process made a run claimable, or freed a slot."""
        if channel.endswith("slots"):
            self._slots.freed()
        else:
            self._claimable.set()

    async def heartbeat(self) -> None:
        """Renew this process's leases every third of the lease, until cancelled."""
        every = self._options.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(every)
            await self._renew()

    async def is_held(self) -> bool:
        """True while this process's leases hold; a heartbeat merely late is made up for at once.

        A clock moved ahead (a test's fake clock, a suspended VM waking up) outruns the last
        renewal without any failure: renewing now keeps the runs this process was just given,
        instead of dropping them while their leases in the store still name it.
        """
        if self.is_valid():
            return True
        async with self._renewing:
            return self.is_valid() or await self._renew()

    async def _renew(self) -> bool:
        started = clock.now()
        try:
            await self._db.heartbeat(
                self.worker_id,
                started,
                started + self._options.lease,
                [*self._queue.held, *self._wanted],
                list(self._slots.held),
            )
        except errors.StoreError as exc:
            log.warning("heartbeat failed; leases run out unless it recovers", extra={"error": exc.message})
            return False
        self._valid_until = started + self._options.lease
        return True

    async def claim_loop(self) -> None:
        """Claim runs for this process's workers until cancelled."""
        poll = self._options.claim_poll.total_seconds()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll):
                    await self._claimable.wait()
            self._claimable.clear()
            metrics.QUEUE_DEPTH.set(self._queue.depth)  # at most a claim poll old; livesum across processes
            try:
                await self._claim_wanted()
                if self._options.is_claiming:
                    await self._claim_any()
            except errors.StoreError as exc:
                log.warning("claiming runs failed; retrying", extra={"error": exc.message})
                await asyncio.sleep(poll)

    async def _claim_wanted(self) -> None:
        """Claim the runs this process woke; one it holds already runs again when its walk ends."""
        wanted = []
        for run_id in dict.fromkeys(self._wanted):
            if run_id in self._queue.held:
                self._queue.again.add(run_id)
            else:
                wanted.append(run_id)
        self._wanted = []
        if not wanted:
            return
        lease = self.new_lease()
        try:
            got = await self._db.claim_runs(self.worker_id, clock.now(), lease.until, len(wanted), wanted)
        except errors.StoreError:
            self._wanted.extend(wanted)  # not lost with the connection: the next round tries again
            raise
        await self._queue_claimed(got)

    async def _claim_any(self) -> None:
        """Fill the queue with claimable runs of any process (restarts, takeovers)."""
        while (room := self._queue.room) > 0:
            limit = min(room, _CLAIM_BATCH)
            lease = self.new_lease()
            got = await self._db.claim_runs(self.worker_id, clock.now(), lease.until, limit)
            await self._queue_claimed([claimed for claimed in got if claimed.run_id not in self._queue.held])
            if len(got) < limit:
                return

    async def _queue_claimed(self, got: list[store.Claimed]) -> None:
        """Queue claimed runs with their state, read for the whole batch at once (two statements, one
        round trip) instead of by each worker for its run; a run not found is loaded by its worker."""
        if not got:
            return
        try:
            states = await self._db.load_runs([claimed.run_id for claimed in got])
        except errors.StoreError as exc:  # the runs are ours now: each worker reads its own (and retries if it fails)
            log.warning("reading claimed runs failed; each is read by its worker", extra={"error": exc.message})
            states = {}
        for claimed in got:
            self._queue.put(claimed.run_id, states.get(claimed.run_id), claimed.epoch)

    async def _release_dead_local_workers(self) -> None:
        """Free the runs of workers on this host whose process is gone (e.g. killed before a restart)."""
        host = socket.gethostname()
        for worker in await self._db.list_workers():
            if worker.host == host and worker.id != self.worker_id and not _is_alive(worker.pid):
                released = await self._db.release_worker(worker.id, clock.now())
                log.info("took over a dead worker's runs", extra={"worker": worker.id, "count": released})


def _is_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True
