"""The PostgreSQL backend: the same SQL and group commit as SQLite, over psycopg.

Selected with `SEAMFLOW_DATABASE_URL=postgresql://…` (or `--database`). Commits are durable
with PostgreSQL's defaults (`synchronous_commit=on`). Several processes share one database:
claims use `FOR UPDATE SKIP LOCKED`, a run made claimable sends a NOTIFY on commit that idle
workers LISTEN for (they also poll, in case a notification is missed while reconnecting).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, LiteralString, TypeVar

import psycopg
from psycopg import conninfo

from seamflow import errors, redact
from seamflow.store import schema
from seamflow.store.group_commit import GroupCommitter
from seamflow.store.rows import Conn
from seamflow.store.sql import SqlStore

__all__ = ["PostgresStore"]

T = TypeVar("T")
_STATEMENT_TIMEOUT_MS = 30_000
RUNS_CHANNEL = "seamflow_runs"
SLOTS_CHANNEL = "seamflow_slots"
log = logging.getLogger("seamflow.store")


class PostgresStore(SqlStore):
    """The store in one PostgreSQL database.

    Args:
        url: a libpq connection URL; its password never appears in messages.
    """

    _DIALECT: ClassVar[str] = "postgres"
    _SHARED: ClassVar[bool] = True
    _SKIP_LOCKED: ClassVar[LiteralString] = " FOR UPDATE SKIP LOCKED"
    _SKIP_LOCKED_TIMERS: ClassVar[LiteralString] = " FOR UPDATE OF t SKIP LOCKED"
    _FOR_UPDATE: ClassVar[LiteralString] = " FOR UPDATE"
    _TOKEN_LOCK: ClassVar[tuple[LiteralString, ...]] = (
        "BEGIN",
        "SELECT pg_advisory_xact_lock(hashtextextended('seamflow.token:' || ?, 0))",
    )

    _AUDIT_LOCK: ClassVar[LiteralString] = "SELECT pg_advisory_xact_lock(hashtextextended('seamflow.audit', 0))"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self._placeholders: dict[str, str] = {}

    @property
    def where(self) -> str:
        """`host:port/dbname` of the database, for messages (never the password)."""
        try:
            info = conninfo.conninfo_to_dict(self.url)
        except psycopg.ProgrammingError:
            return "<unparseable URL>"
        return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"

    def _sql(self, text: str) -> str:
        adapted = self._placeholders.get(text)
        if adapted is None:
            adapted = self._placeholders[text] = text.replace("?", "%s")
        return adapted

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(
                self.url, autocommit=True, connect_timeout=10, options=f"-c statement_timeout={_STATEMENT_TIMEOUT_MS}"
            )
        except psycopg.Error as exc:
            reason = " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
            reason = redact.mask_text(reason)[:300]
            raise errors.StoreError(
                f"cannot connect to PostgreSQL at {self.where}: {reason}", code="store.unreachable"
            ) from exc

    async def open(self) -> None:
        """Migrate the schema (once across processes) and start the writer."""
        await asyncio.to_thread(self._migrate)
        self._writer = GroupCommitter(self._writer_connection, appends=self._appends, begin_sql="BEGIN")
        await self._writer.start()

    def _migrate(self) -> None:
        conn = self._connect()
        try:
            schema.migrate(_Connection(conn), "postgres")
        except psycopg.Error as exc:
            raise errors.StoreError(f"migrating the PostgreSQL schema at {self.where} failed: {exc}") from exc
        finally:
            conn.close()

    def _writer_connection(self) -> Any:
        return _Connection(self._connect())

    def _one_row(self, conn: Conn, cursor: Any, error: Callable[[], Exception]) -> bool:
        if isinstance(conn, _Connection) and conn.defer(cursor, error):
            return True
        return bool(cursor.rowcount == 1)

    def _notify_runnable(self, conn: Conn) -> None:
        # Once per transaction, sent with its appended rows: PostgreSQL folds equal notifications of a
        # transaction into one anyway, and the api process made one statement per accepted run of it.
        self._appends.once("SELECT pg_notify('seamflow_runs', '')")

    def _notify_slot(self, conn: Conn) -> None:
        self._appends.once("SELECT pg_notify('seamflow_slots', '')")

    async def listen(self, on_wake: Callable[[str], None]) -> None:
        """LISTEN for runs and slots made available by other processes; reconnect when the connection drops."""
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.url, autocommit=True, connect_timeout=10) as conn:
                    await conn.execute(f"LISTEN {RUNS_CHANNEL}")
                    await conn.execute(f"LISTEN {SLOTS_CHANNEL}")
                    on_wake(RUNS_CHANNEL)  # anything sent while we were not listening
                    async for note in conn.notifies():
                        on_wake(note.channel)
            except psycopg.Error as exc:
                log.warning(
                    "listening for wake-ups failed; polling until it reconnects",
                    extra={"where": self.where, "error": redact.mask_text(str(exc))[:200]},
                )
                await asyncio.sleep(2)

    def _read_failed(self, exc: Exception) -> errors.StoreError | None:
        if isinstance(exc, psycopg.Error):
            return errors.StoreError(f"reading the store at {self.where} failed: {exc}")
        return None


class _Connection:
    """A psycopg connection in autocommit mode driven with explicit BEGIN/COMMIT, as the writer expects.

    The writer sends each optimistic batch in pipeline mode (see `group_commit.Pipelining`): its
    statements go out together instead of one round trip each; row-count checks the store
    defers (`PostgresStore._one_row`) run in `verify`, once every answer is in.
    """

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self._pipeline: psycopg.Pipeline | None = None
        self._checks: list[tuple[Any, Callable[[], Exception]]] = []

    @contextlib.contextmanager
    def pipelined(self) -> Iterator[None]:
        self._checks.clear()
        with self._conn.pipeline() as pipeline:
            self._pipeline = pipeline
            try:
                yield
            finally:
                self._pipeline = None
                self._checks.clear()

    def defer(self, cursor: Any, error: Callable[[], Exception]) -> bool:
        """Check before the commit that `cursor` changed one row; False if there is no pipeline to defer to."""
        if self._pipeline is None:
            return False
        self._checks.append((cursor, error))
        return True

    def verify(self) -> None:
        if self._pipeline is None:
            return
        self._pipeline.sync()
        for cursor, error in self._checks:
            if cursor.rowcount != 1:
                raise error()
        self._checks.clear()

    def execute(self, sql: str, parameters: Any = None) -> Any:
        cursor = self._conn.execute(sql, parameters)
        return cursor if self._pipeline is None else _PipelinedCursor(cursor, self._pipeline)

    def executemany(self, sql: str, rows: Any) -> None:
        """One statement for many rows: psycopg sends them pipelined, not a round trip each."""
        with self._conn.cursor() as cursor:
            cursor.executemany(sql, rows)

    def executescript(self, sql: str) -> None:
        self._conn.execute(sql)

    def commit(self) -> None:
        self._conn.execute("COMMIT")

    def rollback(self) -> None:
        if self._conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            self._conn.execute("ROLLBACK")

    def close(self) -> None:
        self._conn.close()


class _PipelinedCursor:
    """A cursor of a pipelined statement: reading its row count first waits for the answers sent so far."""

    def __init__(self, cursor: psycopg.Cursor[Any], pipeline: psycopg.Pipeline) -> None:
        self._cursor = cursor
        self._pipeline = pipeline

    @property
    def rowcount(self) -> int:
        if self._cursor.pgresult is None:
            self._pipeline.sync()
        return self._cursor.rowcount

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cursor)

    def __getattr__(self, name: str) -> Any:  # fetchone, fetchall, …: psycopg waits for the answer itself
        return getattr(self._cursor, name)
