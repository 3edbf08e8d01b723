"""The initial bulk load (`seamflow sync load`): every record of one side through the sync, resumable.

The side is read in chunks (a stream where the connector offers one); each chunk's records are
applied `parallel` at a time, then the position after the chunk is stored in `sync_loads`. After a
Ctrl-C or a crash the load continues from the last stored position; records of the chunk that was
in flight are applied again, which changes nothing (their writes carry the same idempotency keys
and already-known records are unchanged). One process runs a side's load at a time: it holds the
row's lease and renews it after each chunk.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from seamflow import clock, errors, store
from seamflow.sync.reading import SideReader
from seamflow.sync.spec import Sync

if TYPE_CHECKING:
    from seamflow.sync.service import SyncService

__all__ = ["BulkLoad", "LoadOptions", "LoadProgress"]

_LEASE = timedelta(minutes=5)
_ATTEMPTS = 3
"""Tries per record while its target is unreachable; after that the load stops (a rerun resumes)."""
_ERRORS_KEPT = 20


@dataclass(slots=True)
class LoadProgress:
    """How far a `sync load` is."""

    done: int = 0
    """Records through the sync in all, across resumed runs."""
    total: int | None = None
    """Records the side holds, when its `list.count` says."""
    loaded_now: int = 0
    """Records through the sync by this run."""
    already_finished: bool = False
    """The load had finished before this run; nothing was read."""
    failed: int = 0
    """Records of this run that the sync refused (bad records); the load went on."""
    errors: list[str] = field(default_factory=list)
    """The first refusals' messages."""
    finished: bool = False


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """How a bulk load reads and applies."""

    chunk: int = 500
    """Records read and committed per step."""
    parallel: int = 16
    """Records applied at once."""
    restart: bool = False
    """Start over instead of continuing a stopped load."""
    on_progress: Callable[[LoadProgress], None] | None = None
    """Called after each committed chunk."""


class BulkLoad:
    """One run of the load of one side of a sync; see the module docstring."""

    def __init__(self, service: SyncService, reader: SideReader, sync: Sync, side: str) -> None:
        self._service = service
        self._db = service.db
        self._reader = reader
        self._sync = sync
        self._side = side
        self._owner = store.local_holder("load")

    async def run(self, options: LoadOptions) -> LoadProgress:
        """Load every record of the side that the stored position has not passed yet.

        Raises:
            errors.InvalidInput: `sync.invalid` — the side has no `list` to read it through.
            errors.Conflict: another live process runs this load.
            errors.Transient: a record's target stayed unreachable; the stored position is kept.
        """
        sync, side = self._sync, self._side
        if sync.sides[side].list is None:
            raise errors.InvalidInput(
                f"sync {sync.id}: sides.{side} has no `list`; a load reads the side through it", code="sync.invalid"
            )
        state = await self._claim(options.restart)
        progress = LoadProgress(done=state.done, total=await self._reader.count(sync, side))
        if state.finished is not None:
            progress.already_finished = progress.finished = True
            await self._db.finish_sync_load(sync.id, side, self._owner, clock.now())
            return progress
        gate = asyncio.Semaphore(options.parallel)
        async for rows, after in self._reader.chunks(sync, side, state.position, options.chunk):
            async with asyncio.TaskGroup() as group:
                for record in rows:
                    if isinstance(record, dict):
                        group.create_task(self._apply(record, gate, progress))
            progress.done += len(rows)
            progress.loaded_now += len(rows)
            now = clock.now()
            if not await self._db.save_sync_load_progress(
                sync.id, side, self._owner, after, len(rows), now, now + _LEASE
            ):
                raise errors.Conflict(f"the load of {sync.id} from {side} was taken over by another process")
            if options.on_progress is not None:
                options.on_progress(progress)
        await self._db.finish_sync_load(sync.id, side, self._owner, clock.now())
        progress.finished = True
        return progress

    async def _claim(self, restart: bool) -> store.SyncLoad:
        sync, side, now = self._sync, self._side, clock.now()
        state = await self._db.claim_sync_load(sync.id, side, self._owner, now, now + _LEASE, start_over=restart)
        if state is None:
            held = await self._db.get_sync_load(sync.id, side)
            holder = held.owner if held else None
            if holder and store.is_dead_local(holder):  # a load that crashed on this machine: continue it
                state = await self._db.claim_sync_load(
                    sync.id, side, self._owner, now, now + _LEASE, start_over=restart, replacing=holder
                )
        if state is None:
            raise errors.Conflict(f"a load of {sync.id} from {side} is already running in another process")
        return state

    async def _apply(self, record: Mapping[str, Any], gate: asyncio.Semaphore, progress: LoadProgress) -> None:
        async with gate:
            for attempt in range(1, _ATTEMPTS + 1):
                try:
                    await self._service.apply(self._sync.id, self._side, record)
                    return
                except errors.Transient:  # the target is away: a few tries, then the load stops (rerun resumes)
                    if attempt == _ATTEMPTS:
                        raise
                    await asyncio.sleep(attempt)
                except errors.StoreError:
                    raise
                except errors.SeamflowError as exc:  # a bad record is counted and named, the load goes on
                    progress.failed += 1
                    if len(progress.errors) < _ERRORS_KEPT:
                        progress.errors.append(exc.message)
                    return
