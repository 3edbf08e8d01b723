"""Concurrency limits that hold across every process sharing the store.

A flow's `concurrency` and a connection's `concurrency` cap work in flight. Within a process
an asyncio semaphore does it. When several processes share a PostgreSQL store, each limited
call also holds one of N slot rows (`slots` table, claimed with SKIP LOCKED, leased like runs
and renewed by the heartbeat while the call runs), so a slow ERP gets at most N calls
cluster-wide. A dead holder's slot, or one whose release failed, comes free when its lease
runs out; a release NOTIFYs waiting processes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

from seamflow import clock, store

__all__ = ["ClusterSlots"]

_POLL_S = (0.01, 0.02, 0.05, 0.1, 0.2)


class ClusterSlots:
    """Slots of limited scopes in the store; a no-op for a store only one process uses.

    Args:
        db: the store.
        worker_id: this process (the slot's owner, renewed by its heartbeat).
        lease: how long a slot stays held without a heartbeat.
        is_shared: whether other processes may use the store (PostgreSQL).
    """

    def __init__(self, db: store.SlotStore, worker_id: Callable[[], str], lease: timedelta, *, is_shared: bool) -> None:
        self._db = db
        self._worker_id = worker_id
        self._lease = lease
        self.is_shared = is_shared
        self._freed = asyncio.Event()
        self.held: set[tuple[str, int]] = set()
        """Slots this process holds now (scope, slot): the ones its heartbeat renews."""

    def freed(self) -> None:
        """Another process released a slot (a NOTIFY arrived): waiting holders look again."""
        self._freed.set()

    @contextlib.asynccontextmanager
    async def hold(self, scope: str, limit: int, holder: str) -> AsyncIterator[None]:
        """Hold one of `limit` slots of `scope` for the block (wait for one if all are held)."""
        if not self.is_shared:
            yield
            return
        slot = await self._acquire(scope, limit, holder)
        self.held.add((scope, slot))
        try:
            yield
        finally:
            self.held.discard((scope, slot))  # if the release fails, the lease (no longer renewed) runs out
            await self._db.release_slot(scope, slot, self._worker_id())

    async def _acquire(self, scope: str, limit: int, holder: str) -> int:
        tries = 0
        while True:
            now = clock.now()
            slot = await self._db.acquire_slot(scope, limit, self._worker_id(), holder, now, now + self._lease)
            if slot is not None:
                return slot
            self._freed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_POLL_S[min(tries, len(_POLL_S) - 1)]):
                    await self._freed.wait()
            tries += 1
