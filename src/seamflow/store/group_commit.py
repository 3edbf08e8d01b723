"""Group commit: one writer thread runs many units of work per transaction and commits once.

Durability against power loss costs one fsync per commit, so commits are shared: every unit
queued while the previous commit was syncing goes into the next transaction. A unit that
fails rolls back alone (the batch is then re-run with one SAVEPOINT per unit) and the others
still commit. A unit's future resolves only after the transaction holding it committed.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from seamflow import errors
from seamflow.store.appends import AppendBuffer

__all__ = ["DbConnection", "GroupCommitter"]

T = TypeVar("T")


class DbConnection(Protocol):
    """The part of a DB-API connection the writer uses."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...


@runtime_checkable
class Pipelining(Protocol):
    """A connection that can send a whole batch without waiting for each statement's answer.

    Inside `pipelined()`, statements are queued and sent together; row-count checks registered
    by the store are deferred to `verify()`, which waits for every answer and raises if one
    failed. Any failure rolls the batch back and it runs again unpipelined, unit by unit.
    """

    def pipelined(self) -> AbstractContextManager[None]: ...
    def verify(self) -> None: ...


_IS_PIPELINING: dict[type, bool] = {}
"""Whether each connection class pipelines: `isinstance` on a runtime-checkable protocol inspects
the class's attributes each time, which cost as much as a small unit of work per batch."""


def _pipelining(conn: object) -> Pipelining | None:
    kind = type(conn)
    is_pipelining = _IS_PIPELINING.get(kind)
    if is_pipelining is None:
        is_pipelining = _IS_PIPELINING[kind] = isinstance(conn, Pipelining)
    return conn if is_pipelining else None  # type: ignore[return-value]  # checked for its class just above


@dataclass(slots=True)
class _Unit(Generic[T]):
    fn: Callable[[Any], T]
    future: asyncio.Future[T]
    result: Any = None
    error: BaseException | None = None


_STOP = object()


class GroupCommitter:
    """Runs units of work in a dedicated writer thread, many per transaction.

    Args:
        connect: opens the writer's connection (called in the writer thread).
        begin_sql: the statement that opens a write transaction.
        max_batch: most units per transaction.
    """

    def __init__(
        self,
        connect: Callable[[], DbConnection],
        *,
        appends: AppendBuffer | None = None,
        begin_sql: str = "BEGIN IMMEDIATE",
        max_batch: int = 2000,
    ) -> None:
        self._connect = connect
        self._appends = appends
        self._begin_sql = begin_sql
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._open_error: BaseException | None = None
        self.commits = 0
        self.units = 0
        self.reruns = 0
        """Batches that failed optimistically and ran again unit by unit (a unit failed, a dedupe key
        was seen, a lease was lost)."""

    async def start(self) -> None:
        """Open the writer connection and start the writer thread."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._main, name="seamflow-writer", daemon=True)
        self._thread.start()
        await asyncio.to_thread(self._ready.wait)
        if self._open_error is not None:
            raise self._open_error

    async def stop(self) -> None:
        """Finish queued units, commit, close the connection and end the thread."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join)
        self._thread = None

    async def run(self, fn: Callable[[Any], T]) -> T:
        """Run `fn(connection)` in the next transaction and return its result once committed."""
        if self._loop is None or self._thread is None:
            raise errors.StoreError("the store is not open")
        future: asyncio.Future[T] = self._loop.create_future()
        self._queue.put(_Unit(fn, future))
        return await future

    def _main(self) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:
            self._open_error = exc
            self._ready.set()
            return
        self._ready.set()
        current: DbConnection | None = conn
        try:
            while True:
                batch, is_stopping = self._take_batch()
                if batch:
                    current = self._commit_with(current, batch)
                if is_stopping:
                    return
        finally:
            if current is not None:
                current.close()

    def _commit_with(self, conn: DbConnection | None, batch: list[_Unit[Any]]) -> DbConnection | None:
        """Commit a batch; reconnect first if the last connection broke (database restarted, backend killed).

        Returns the connection to use next, or None if it broke (the next batch reconnects).
        """
        if conn is None:
            try:
                conn = self._connect()
            except BaseException as exc:  # the database is still away: this batch fails, the next retries
                self._fail(batch, exc)
                return None
        if self._commit_batch(conn, batch):
            return conn
        _close_quietly(conn)
        return None

    def _take_batch(self) -> tuple[list[_Unit[Any]], bool]:
        first = self._queue.get()
        if first is _STOP:
            return [], True
        batch: list[_Unit[Any]] = [first]  # type: ignore[list-item]  # only _Unit or _STOP are queued
        while len(batch) < self._max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            batch.append(item)  # type: ignore[arg-type]  # only _Unit or _STOP are queued
        return batch, False

    def _commit_batch(self, conn: DbConnection, batch: list[_Unit[Any]]) -> bool:
        """Run and commit a batch; False if the connection is broken afterwards."""
        is_usable = True
        try:
            if not self._run_optimistically(conn, batch):
                self.reruns += 1
                conn.execute(self._begin_sql)
                for unit in batch:
                    self._run_unit(conn, unit)
                conn.commit()
        except BaseException as exc:  # the whole transaction failed: every unit learns it
            if self._appends is not None:
                self._appends.clear()
            try:
                conn.rollback()
            except Exception:  # the connection itself is gone; the caller reconnects
                is_usable = False
            self._fail(batch, exc)
            return is_usable
        self.commits += 1
        self.units += len(batch)
        assert self._loop is not None
        self._loop.call_soon_threadsafe(_resolve, batch)
        return True

    def _fail(self, batch: list[_Unit[Any]], exc: BaseException) -> None:
        failure = exc if isinstance(exc, errors.StoreError) else errors.StoreError(f"committing failed: {exc}")
        if failure is not exc:
            failure.__cause__ = exc
        for unit in batch:
            unit.error = failure
        assert self._loop is not None
        self._loop.call_soon_threadsafe(_resolve, batch)

    def _run_optimistically(self, conn: DbConnection, batch: list[_Unit[Any]]) -> bool:
        """Run the batch without savepoints and commit; False (rolled back) if any unit failed.

        Units rarely fail, and a savepoint costs two statements per unit, so the batch first
        runs bare. If a unit raises, everything is rolled back and the batch runs again with
        one savepoint per unit, so that only the failing unit is refused.
        """
        pipelining = _pipelining(conn)
        appends = self._appends
        try:
            with pipelining.pipelined() if pipelining is not None else nullcontext():
                conn.execute(self._begin_sql)
                if appends is not None:
                    appends.is_optimistic = True
                for unit in batch:
                    unit.result = unit.fn(conn)
                if appends is not None:
                    appends.flush(conn)
                if pipelining is not None:
                    pipelining.verify()
                conn.commit()
        except Exception:
            conn.rollback()
            if appends is not None:
                appends.clear()
            for unit in batch:
                unit.result = None
            return False
        finally:
            if appends is not None:
                appends.is_optimistic = False
        return True

    def _run_unit(self, conn: DbConnection, unit: _Unit[Any]) -> None:
        """Run one unit in its own savepoint, its appended rows written inside it."""
        conn.execute("SAVEPOINT unit")
        try:
            unit.result = unit.fn(conn)
            if self._appends is not None:
                self._appends.flush(conn)
        except Exception as exc:
            conn.execute("ROLLBACK TO unit")
            if self._appends is not None:
                self._appends.clear()
            unit.error = exc
        conn.execute("RELEASE unit")


def _close_quietly(conn: DbConnection) -> None:
    try:
        conn.close()
    except Exception:  # noqa: S110 - it is broken already; only the reference is dropped
        pass


def _resolve(batch: list[_Unit[Any]]) -> None:
    for unit in batch:
        if unit.future.done():
            continue
        if unit.error is not None:
            unit.future.set_exception(unit.error)
        else:
            unit.future.set_result(unit.result)
