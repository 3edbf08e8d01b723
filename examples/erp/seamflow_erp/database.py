"""The ERP database: one SQLAlchemy engine (SQLite file or PostgreSQL) and serialized write transactions.

Every write transaction takes the database's single write lock first (`BEGIN IMMEDIATE` on SQLite,
`pg_advisory_xact_lock` on PostgreSQL) and only then reads the clock. So `changes.id` and every
`updated_at` grow in commit order, and a poller following either never misses a row that commits late.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, insert, text
from sqlalchemy.engine import Connection, Engine, make_url

from seamflow_erp import schema

__all__ = ["WRITE_LOCK_KEY", "Database", "Tx", "database_url"]

WRITE_LOCK_KEY = 0x5EA3_E49
"""The PostgreSQL advisory lock every writer takes: `SELECT pg_advisory_xact_lock(99237449)`."""


def database_url(db: str) -> str:
    """The SQLAlchemy URL for `--db`: a `postgresql://` URL, a `sqlite:///` URL, or a file path."""
    if db.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + db.split("://", 1)[1]
    if "://" in db:
        return db
    return f"sqlite:///{Path(db).expanduser()}"


@dataclass(frozen=True, slots=True)
class Tx:
    """A write transaction: its connection and the one timestamp every row it touches gets."""

    conn: Connection
    now: datetime

    def record_change(self, entity: str, entity_id: object, op: str) -> None:
        """Append to the `changes` changelog, in this transaction."""
        self.conn.execute(
            insert(schema.changes).values(
                entity=entity, entity_id=str(entity_id), op=op, occurred_at=self.now, updated_at=self.now
            )
        )


class Database:
    """Where the ERP keeps its data; `write()` and `read()` hand out transactions."""

    def __init__(self, db: str) -> None:
        url = make_url(database_url(db))
        self.is_sqlite = url.get_backend_name() == "sqlite"
        self.engine: Engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30} if self.is_sqlite else {},
            pool_pre_ping=not self.is_sqlite,
        )
        if self.is_sqlite:
            _take_over_sqlite_transactions(self.engine)
        self._clock_lock = threading.Lock()
        self._last_now = datetime.min.replace(tzinfo=UTC)

    def create_schema(self) -> None:
        """Create the tables that do not exist yet."""
        schema.create_schema(self.engine)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    @contextmanager
    def write(self) -> Iterator[Tx]:
        """A serialized write transaction; commits when the block ends, rolls back if it raises."""
        with self.engine.execution_options(erp_write=True).begin() as conn:
            if not self.is_sqlite:
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITE_LOCK_KEY})
            yield Tx(conn, self._now())

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (a consistent snapshot on both databases)."""
        with self.engine.begin() as conn:
            yield conn

    def _now(self) -> datetime:
        # Never step back within this process, even if the system clock does.
        with self._clock_lock:
            now = max(datetime.now(UTC), self._last_now + timedelta(microseconds=1))
            self._last_now = now
            return now


def _take_over_sqlite_transactions(engine: Engine) -> None:
    """Let SQLAlchemy, not pysqlite, emit BEGIN, so writers can ask for `BEGIN IMMEDIATE`."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        is_write = conn.get_execution_options().get("erp_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if is_write else "BEGIN")
