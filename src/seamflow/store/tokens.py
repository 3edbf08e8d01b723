"""Tokens that connections obtained by signing in, cached for the whole cluster: one row per connection.

A token is stored sealed (the engine encrypts it with the project's secret key). Renewing one
holds a lock from reading the row until the new token is written, so that across all processes
one asks the system for a token and the others take the one it stored: an advisory transaction
lock on PostgreSQL; on SQLite a lock of its own beside the database (`SqliteStore.renew_token`),
never the database's write lock, which would stop every other write while the system answers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, LiteralString, TypeVar

from seamflow import clock, errors
from seamflow.store.rows import Rows, from_ms, to_ms

__all__ = ["ConnectionToken", "Obtain", "TokenOps"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ConnectionToken:
    """A connection's cached token, sealed, with when it expires and its renewal count."""

    connection: str
    sealed: str
    expires_at: datetime
    version: int
    problem: str | None = None
    """Why the connection cannot sign in until it is authorized again (`needs_authorization`), if so."""


Obtain = Callable[[ConnectionToken | None], Awaitable[tuple[str, datetime] | None]]
"""Given the row under the lock, return a new (sealed token, expiry) to store, or None to keep it."""


class TokenOps(Rows):
    """Reads and cluster-wide renewal of connection tokens; see the module docstring."""

    _TOKEN_LOCK: ClassVar[tuple[LiteralString, ...]] = ("BEGIN",)
    """Statements that start the renewal's transaction and take the lock (`?`: the connection's name)."""

    async def read_token(self, connection: str) -> ConnectionToken | None:
        """The token cached for `connection`, or None if none was stored yet."""
        return await self._read(lambda conn: self._token_row(conn, connection))

    async def renew_token(self, connection: str, obtain: Obtain) -> ConnectionToken | None:
        """Hold the connection's token lock, let `obtain` decide on the row, store what it returns.

        The lock is held on a connection of its own while `obtain` runs (it may ask the system
        for a token over the network), so a second process renewing the same connection waits
        and then sees the new row. Returns the row as stored, or as it was when `obtain` kept it.
        """
        conn = await asyncio.to_thread(self._connect)
        try:
            current = await self._in_thread(self._lock_token, conn, connection)
            fresh = await obtain(current)
            if fresh is None:
                await self._in_thread(conn.execute, "ROLLBACK")
                return current
            saved = await self._in_thread(self._upsert_token, conn, connection, current, fresh)
            await self._in_thread(conn.execute, "COMMIT")
            return saved
        finally:
            with contextlib.suppress(Exception):  # closing rolls back what was not committed
                await asyncio.to_thread(conn.close)

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a step of the renewal's transaction in a thread; a driver error becomes a `StoreError`."""
        try:
            return await asyncio.to_thread(fn, *args)
        except Exception as exc:
            failure = self._read_failed(exc)
            if failure is None:
                raise
            raise errors.StoreError(f"renewing a connection's token: {failure.message}") from exc

    async def report_token_problem(self, connection: str, problem: str | None) -> None:
        """Record why `connection` cannot sign in (None: it can again); without a token row, nothing."""

        def unit(conn: Any) -> None:
            self._x(
                conn,
                "UPDATE connection_tokens SET problem = ?, updated_ms = ? WHERE connection = ?",
                (problem, to_ms(clock.now()), connection),
            )

        await self._write(unit)

    async def list_token_problems(self) -> dict[str, str]:
        """Connection name → why it cannot sign in, for every connection that needs authorization."""

        def read(conn: Any) -> dict[str, str]:
            rows = self._x(conn, "SELECT connection, problem FROM connection_tokens WHERE problem IS NOT NULL")
            return {str(r[0]): str(r[1]) for r in rows}

        return await self._read(read)

    def _lock_token(self, conn: Any, connection: str) -> ConnectionToken | None:
        for statement in self._TOKEN_LOCK:
            conn.execute(self._sql(statement), (connection,) if "?" in statement else ())
        return self._token_row(conn, connection)

    def _upsert_token(
        self, conn: Any, connection: str, current: ConnectionToken | None, fresh: tuple[str, datetime]
    ) -> ConnectionToken:
        """Store `fresh` as the connection's token (in the caller's transaction), one version past `current`."""
        sealed, expires_at = fresh
        version = 1 if current is None else current.version + 1
        self._x(
            conn,
            "INSERT INTO connection_tokens (connection, sealed, expires_ms, version, updated_ms)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (connection) DO UPDATE SET sealed = excluded.sealed,"
            " expires_ms = excluded.expires_ms, version = excluded.version, updated_ms = excluded.updated_ms,"
            " problem = NULL",
            (connection, sealed, to_ms(expires_at), version, to_ms(clock.now())),
        )
        return ConnectionToken(connection, sealed, expires_at, version)

    def _token_row(self, conn: Any, connection: str) -> ConnectionToken | None:
        row = self._x(
            conn,
            "SELECT connection, sealed, expires_ms, version, problem FROM connection_tokens WHERE connection = ?",
            (connection,),
        ).fetchone()
        if row is None:
            return None
        expires_at = from_ms(int(row[2]))
        assert expires_at is not None
        return ConnectionToken(
            str(row[0]), str(row[1]), expires_at, int(row[3]), None if row[4] is None else str(row[4])
        )
