"""The `sql` connector: reads and writes a database from a step, such as `erp_db.upsert`, and feeds flows.

Each connection owns one SQLAlchemy engine with a pool of `pool_size` database connections.
SQLAlchemy and its drivers block, so every call, poll and stream chunk runs in a worker
thread (`_blocking`); at most `pool_size` of them are in flight at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import timedelta
from typing import ClassVar, TypeVar

import sqlalchemy
from pydantic import BaseModel, ValidationError

from seamflow import errors
from seamflow.connectors.base import Action, Batch, Chunk, Connection, Feed
from seamflow.connectors.guard import Outbound
from seamflow.connectors.sql import statements
from seamflow.connectors.sql.check import check_connection
from seamflow.connectors.sql.config import SqlConfig, open_engine
from seamflow.connectors.sql.failure import classify
from seamflow.connectors.sql.idempotency import Ledger
from seamflow.connectors.sql.inputs import (
    ACTIONS,
    FEEDS,
    BulkInsertInput,
    CallInput,
    DeleteInput,
    InsertInput,
    NotifyFeedInput,
    QueryInput,
    RowsFeedInput,
    StreamInput,
    UpdateInput,
    UpsertInput,
)
from seamflow.connectors.sql.notify_feed import listen
from seamflow.connectors.sql.rows_feed import RowsPoll, poll_rows
from seamflow.connectors.sql.stream import StreamRequest, stream_query
from seamflow.connectors.sql.tables import Tables
from seamflow.ids import Json

__all__ = ["SqlConnector"]

_Work = Callable[[sqlalchemy.Connection], Json]
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


class SqlConnector:
    """Reads and writes SQLite, PostgreSQL and MySQL/MariaDB: `query`, `insert`, `upsert`, `update`,
    `delete`, `bulk_insert`, `call`; feeds `rows` (poll) and `notify` (consume, PostgreSQL);
    `query` as a stream of chunks; `check`.

    Every write action is idempotent by key: it runs in one transaction with an insert of
    the step's idempotency key into the table `seamflow_idempotency`, and a key found
    there returns the stored result without writing again. `query` only reads: its
    transaction is rolled back.
    """

    kind: ClassVar[str] = "sql"
    Config: ClassVar[type[BaseModel]] = SqlConfig
    actions: ClassVar[Mapping[str, Action]] = ACTIONS
    feeds: ClassVar[Mapping[str, Feed]] = FEEDS

    def __init__(self) -> None:
        self._engine: sqlalchemy.Engine | None = None
        self._ledger: Ledger | None = None
        self._tables = Tables()
        self._name = "sql"
        self._timeout_s = 30.0
        self._connect_timeout = timedelta(seconds=30)
        self._outbound = Outbound()
        self._slots = asyncio.Semaphore(1)

    async def open(self, connection: Connection) -> None:
        """Validate the connection's config, remember its password and build its engine.

        No database connection is made until the first call, so a database that is down
        at start-up shows as Transient failures of steps, not as a failed start.

        Raises:
            errors.InvalidInput: the config is wrong; names the connection and field, never the URL.
        """
        engine, config = open_engine(connection)
        await self.close()  # opening again replaces the engine
        self._engine, self._ledger, self._tables = engine, Ledger(engine), Tables()
        self._name = connection.name
        self._connect_timeout = connection.timeout
        self._outbound = connection.outbound
        self._slots = asyncio.Semaphore(config.pool_size)
        # The pool and the server bound each statement; this bounds the whole call, pool wait included.
        statement = config.statement_timeout or connection.timeout
        self._timeout_s = connection.timeout.total_seconds() + statement.total_seconds() + 1

    async def close(self) -> None:
        """Close the pool's database connections."""
        engine, self._engine, self._ledger = self._engine, None, None
        if engine is not None:
            await asyncio.to_thread(engine.dispose)

    async def call(self, action: str, params: Json, *, idempotency_key: str) -> Json:
        """Perform one action and return its result.

        Args:
            action: `query`, `insert`, `upsert`, `update`, `delete`, `bulk_insert` or `call`.
            params: the step's `with` inputs (see `inputs.py`).
            idempotency_key: recorded with every write in `seamflow_idempotency`, in the same transaction.

        Raises:
            errors.Transient: the database is unreachable, timed out, or broke a deadlock or
                serialization conflict.
            errors.Permanent: bad inputs, an unknown table or column, a syntax error or a
                broken constraint.
        """
        where = f"{self._name}.{action}"
        work = self._work(action, params, where)
        engine, ledger = self._opened(where)

        def run() -> Json:
            if action == "query":
                with engine.connect() as conn:  # closing without commit rolls back
                    return work(conn)
            return ledger.run_once(idempotency_key, work)

        return await self._blocking(run, where)

    async def poll(self, feed: str, params: Json, cursor: Json, *, limit: int) -> Batch:
        """Return the rows added or changed since `cursor`, at most `limit` (feed `rows`).

        Raises:
            errors.Transient: the database could not be read now.
            errors.Permanent: the feed's settings are wrong (unknown table or column, bad where, cursor).
        """
        where = f"{self._name}.{feed}"
        if feed != "rows":
            raise self._not_a_feed(feed, "poll", where)
        inputs = _inputs(RowsFeedInput, params, where)
        engine, _ = self._opened(where)
        tables = self._tables

        def run() -> Batch:
            with engine.connect() as conn:  # closing without commit rolls back: only reads
                return poll_rows(conn, tables, RowsPoll(inputs, cursor, limit), where)

        return await self._blocking(run, where)

    async def consume(self, feed: str, params: Json) -> AsyncIterator[Batch]:
        """Yield the notifications of a PostgreSQL channel as they arrive (feed `notify`), until cancelled.

        Raises:
            errors.Permanent: not PostgreSQL, bad settings, or the server refused the user or database.
            errors.Transient: the server cannot be reached now, or the connection was lost.
        """
        where = f"{self._name}.{feed}"
        if feed != "notify":
            raise self._not_a_feed(feed, "consume", where)
        inputs = _inputs(NotifyFeedInput, params, where)
        engine, _ = self._opened(where)
        if engine.url.get_backend_name() != "postgresql":
            raise errors.Permanent(
                f"the notify feed needs PostgreSQL (LISTEN/NOTIFY); this connection is "
                f"{engine.url.get_backend_name()}: poll the rows feed instead",
                where=where,
            )
        async for batch in listen(engine.url, inputs, self._connect_timeout, where, self._outbound):
            yield batch

    async def stream(self, action: str, params: Json, *, start: Json, chunk_rows: int) -> AsyncIterator[Chunk]:
        """Yield the rows of a `query` in chunks of `chunk_rows`, from `start` (a chunk's position; None: the start).

        With `key` in `params` (columns unique in the result) each chunk is a keyset read, resumed
        after the last key; without it one server-side cursor reads them and a restart skips rows.

        Raises:
            errors.Permanent: not `query`, bad inputs or `start`, or an error in the statement.
            errors.Transient: the database could not be read now.
        """
        where = f"{self._name}.{action}"
        if action != "query":
            raise errors.Permanent(f"only query can be read as a stream, not {errors.redact(action)}", where=where)
        inputs = _inputs(StreamInput, params, where)
        engine, _ = self._opened(where)
        request = StreamRequest(inputs, start, chunk_rows)
        if inputs.key is not None:
            async for chunk in stream_query(engine, request, self._blocking_in_slot(where), where):
                yield chunk
            return
        async with self._slots:  # the server-side cursor keeps one database connection for the whole stream
            async for chunk in stream_query(engine, request, self._blocking_held(where), where):
                yield chunk

    async def check(self) -> str:
        """Connect and run a trivial query; return what was reached.

        For example `connected to PostgreSQL 15.4 as app, database erp`.

        Raises:
            errors.Permanent: the host name does not resolve, the connection was refused, the user or
                password was refused, the database does not exist, or TLS failed — in words, without
                the password or the URL.
            errors.Transient: the server did not answer in time.
        """
        where = f"{self._name}.check"
        engine, _ = self._opened(where)
        return await self._blocking(lambda: check_connection(engine, where), where)

    def _opened(self, where: str) -> tuple[sqlalchemy.Engine, Ledger]:
        if self._engine is None or self._ledger is None:
            raise errors.SeamflowError(f"{where}: connection not open", code="connector.closed")
        return self._engine, self._ledger

    async def _blocking(self, work: Callable[[], T], where: str) -> T:
        """Run blocking database work in a worker thread, within a slot of the pool and the call's time bound."""
        async with self._slots:
            return await self._in_thread(work, where)

    async def _in_thread(self, work: Callable[[], T], where: str) -> T:
        try:
            async with asyncio.timeout(self._timeout_s):
                return await asyncio.to_thread(_run, work, where)
        except TimeoutError:
            raise errors.Transient(f"no answer within {self._timeout_s:g} s", where=where) from None

    def _blocking_in_slot(self, where: str) -> Callable[[Callable[[], T]], Awaitable[T]]:
        return lambda work: self._blocking(work, where)

    def _blocking_held(self, where: str) -> Callable[[Callable[[], T]], Awaitable[T]]:
        return lambda work: self._in_thread(work, where)

    def _not_a_feed(self, feed: str, mode: str, where: str) -> errors.Permanent:
        known = ", ".join(f"{f.name} ({f.mode})" for f in FEEDS.values())
        return errors.Permanent(f"no {mode} feed {errors.redact(feed)}; expected one of {known}", where=where)

    def _work(self, action: str, params: Json, where: str) -> _Work:
        """The validated inputs, bound to the statement function of `action`."""
        spec = ACTIONS.get(action)
        if spec is None:
            raise errors.Permanent(
                f"unknown action {errors.redact(action)}; expected one of {', '.join(ACTIONS)}", where=where
            )
        inputs = _inputs(spec.input, params, where)
        tables = self._tables
        match inputs:
            case QueryInput():
                return lambda conn: statements.query(conn, inputs, where)
            case InsertInput():
                return lambda conn: statements.insert_rows(conn, tables, inputs, where)
            case UpsertInput():
                return lambda conn: statements.upsert_rows(conn, tables, inputs, where)
            case UpdateInput():
                return lambda conn: statements.update_rows(conn, tables, inputs, where)
            case DeleteInput():
                return lambda conn: statements.delete_rows(conn, tables, inputs, where)
            case BulkInsertInput():
                return lambda conn: statements.bulk_insert(conn, tables, inputs, where)
            case CallInput():
                return lambda conn: statements.call(conn, inputs, where)
        raise AssertionError(f"no statement for {type(inputs).__name__}")


def _inputs(model: type[M], params: Json, where: str) -> M:
    """Validate a step's or trigger's `with` against `model`, naming each bad field (never its value)."""
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        problems = "; ".join(
            f"with.{'.'.join(map(str, e['loc']))}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)
        )
        raise errors.Permanent(f"invalid input: {problems}", where=where) from None


def _run(work: Callable[[], T], where: str) -> T:
    """Run blocking database work (in a worker thread); no SQLAlchemy or driver error leaves here."""
    try:
        return work()
    except errors.ConnectorError:
        raise
    except (sqlalchemy.exc.SQLAlchemyError, OSError, ValueError, TypeError) as exc:
        # from None: SQLAlchemy's text carries the statement's parameters; `classify` keeps the driver's message.
        raise classify(exc, where) from None
