"""The embedded SQLite backend: WAL, `synchronous=FULL` by default, one writer thread with group commit.

Durability modes:
- `full` (default): a commit survives power loss, not only a process crash.
- `normal`: WAL with `synchronous=NORMAL`; a power loss may lose the last commits
  (a process crash loses nothing). Faster; opt-in with `SEAMFLOW_DURABILITY=normal`.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, TypeVar

from seamflow import errors
from seamflow.store import schema
from seamflow.store.group_commit import GroupCommitter
from seamflow.store.sql import SqlStore

__all__ = ["SqliteStore"]

T = TypeVar("T")
_SYNC = {"full": "FULL", "normal": "NORMAL"}


class SqliteStore(SqlStore):
    """The store in one SQLite file.

    Args:
        path: the database file; its folder is created if missing.
        durability: `full` (default) or `normal`, see the module docstring.
    """

    def __init__(self, path: Path | str, *, durability: str = "full") -> None:
        super().__init__()
        if durability not in _SYNC:
            raise errors.InvalidInput(
                f"durability {durability!r} is unknown; expected one of {', '.join(_SYNC)}",
                code="store.durability",
            )
        self.path = Path(path)
        self.durability = durability

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={_SYNC[self.durability]}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    async def open(self) -> None:
        """Create or migrate the database and start the writer."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._connect()
            try:
                schema.migrate(conn, "sqlite")
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise errors.StoreError(f"opening the SQLite database {self.path} failed: {exc}") from exc
        self._writer = GroupCommitter(self._writer_connection, appends=self._appends)
        await self._writer.start()

    def _writer_connection(self) -> sqlite3.Connection:
        conn = self._connect()
        conn.isolation_level = None
        return _AutoCommitOff(conn)  # type: ignore[return-value]  # duck-typed DB-API connection

    def _read_failed(self, exc: Exception) -> errors.StoreError | None:
        return errors.StoreError(f"reading the store failed: {exc}") if isinstance(exc, sqlite3.Error) else None


class _AutoCommitOff:
    """A sqlite3 connection in manual transaction mode: BEGIN/COMMIT are explicit."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Any = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, parameters)

    def executemany(self, sql: str, rows: Any) -> sqlite3.Cursor:
        return self._conn.executemany(sql, rows)

    def commit(self) -> None:
        self._conn.execute("COMMIT")

    def rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def close(self) -> None:
        self._conn.close()
