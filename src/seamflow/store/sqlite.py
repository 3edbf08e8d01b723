"""The embedded SQLite backend: WAL, `synchronous=FULL` by default, one writer thread with group commit.

Several processes of one `seamflow serve --processes N` may share the file (`shared=True`):
each has its own writer with group commit, and the writers take turns through an advisory
file lock (`<database>-writer.lock`) held from BEGIN to COMMIT, so a waiting writer starts
the moment the other commits instead of sleeping in SQLite's busy handler (1, 2, 5, 10 … ms).

Durability modes:
- `full` (default): a commit survives power loss, not only a process crash.
- `normal`: WAL with `synchronous=NORMAL`; a power loss may lose the last commits
  (a process crash loses nothing). Faster; opt-in with `SEAMFLOW_DURABILITY=normal`.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import sqlite3
from pathlib import Path
from typing import IO, Any, TypeVar

from seamflow import errors
from seamflow.store import schema
from seamflow.store.group_commit import GroupCommitter
from seamflow.store.sql import SqlStore
from seamflow.store.tokens import ConnectionToken, Obtain

__all__ = ["SqliteStore"]

T = TypeVar("T")
_SYNC = {"full": "FULL", "normal": "NORMAL"}


class SqliteStore(SqlStore):
    """The store in one SQLite file.

    Args:
        path: the database file; its folder is created if missing.
        durability: `full` (default) or `normal`, see the module docstring.
        shared: other processes use the same file at once (cluster-wide slots then go
            through the store, as on PostgreSQL).
    """

    def __init__(self, path: Path | str, *, durability: str = "full", shared: bool = False) -> None:
        super().__init__()
        if durability not in _SYNC:
            raise errors.InvalidInput(
                f"durability {durability!r} is unknown; expected one of {', '.join(_SYNC)}",
                code="store.durability",
            )
        self.path = Path(path)
        self.durability = durability
        self._shared = shared
        self._token_locks: dict[str, tuple[asyncio.Lock, IO[str]]] = {}

    @property
    def is_shared(self) -> bool:
        """True when several processes use this file at once (`seamflow serve --processes N`)."""
        return self._shared

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
        lock = self.path.with_name(self.path.name + "-writer.lock")
        return _AutoCommitOff(conn, lock)  # type: ignore[return-value]  # duck-typed DB-API connection

    async def renew_token(self, connection: str, obtain: Obtain) -> ConnectionToken | None:
        """Renew under a lock of the token's own, not the database's write lock.

        `obtain` may wait seconds for the system's token endpoint; holding `BEGIN IMMEDIATE` that
        long would stop every other write of every process (runs, events, the journal). Instead one
        coroutine per store (an asyncio lock) and one store across processes (`flock` on
        `<database>-token-<hash of the name>.lock`) renews, reading and storing the row in two
        short transactions; the others wait, then read the row it stored.
        """
        if connection not in self._token_locks:
            digest = hashlib.sha256(connection.encode()).hexdigest()[:16]
            lock_file = self.path.with_name(f"{self.path.name}-token-{digest}.lock").open("a")
            self._token_locks[connection] = (asyncio.Lock(), lock_file)
        in_process, file = self._token_locks[connection]
        async with in_process:
            await asyncio.to_thread(fcntl.flock, file, fcntl.LOCK_EX)
            try:
                current = await self.read_token(connection)
                fresh = await obtain(current)
                if fresh is None:
                    return current
                return await self._write(lambda conn: self._upsert_token(conn, connection, current, fresh))
            finally:
                fcntl.flock(file, fcntl.LOCK_UN)

    async def close(self) -> None:
        await super().close()
        for _, file in self._token_locks.values():
            file.close()
        self._token_locks.clear()

    def _read_failed(self, exc: Exception) -> errors.StoreError | None:
        return errors.StoreError(f"reading the store failed: {exc}") if isinstance(exc, sqlite3.Error) else None


class _AutoCommitOff:
    """The writer's sqlite3 connection: explicit BEGIN/COMMIT, each write transaction under the file lock."""

    def __init__(self, conn: sqlite3.Connection, lock_path: Path) -> None:
        self._conn = conn
        self._lock = lock_path.open("a")
        self._is_locked = False

    def execute(self, sql: str, parameters: Any = ()) -> sqlite3.Cursor:
        if sql == _BEGIN and not self._is_locked:
            fcntl.flock(self._lock, fcntl.LOCK_EX)  # blocks this writer thread only; wakes at the other's unlock
            self._is_locked = True
        return self._conn.execute(sql, parameters)

    def executemany(self, sql: str, rows: Any) -> sqlite3.Cursor:
        return self._conn.executemany(sql, rows)

    def commit(self) -> None:
        try:
            self._conn.execute("COMMIT")
        finally:
            self._unlock()

    def rollback(self) -> None:
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        finally:
            self._unlock()

    def _unlock(self) -> None:
        if self._is_locked:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._is_locked = False

    def close(self) -> None:
        self._unlock()
        self._lock.close()
        self._conn.close()


_BEGIN = "BEGIN IMMEDIATE"
