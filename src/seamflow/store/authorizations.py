"""OAuth2 authorizations of connections in progress, started in the console and finished by the provider's redirect.

The browser's path leaves one serve process and may come back to another, so the `state` and its
PKCE verifier are kept here. A row is taken once: `take_connection_authorization` deletes the row it
returns in the same transaction, so a reused `state` finds nothing, in every process.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from seamflow.store.rows import Conn, Rows, from_ms, to_ms

__all__ = ["AuthorizationOps", "ConnectionAuthorization"]


@dataclass(frozen=True, slots=True)
class ConnectionAuthorization:
    """A connection's authorization code grant in progress, known by its `state`."""

    state: str
    connection: str
    verifier: str
    """The PKCE code verifier (RFC 7636); it never leaves the server."""
    redirect_uri: str
    """The callback the provider was told; the code exchange must name the same one."""
    started_by: str
    """The login that pressed Authorize (the audit entry's actor)."""
    started_via: str
    until: datetime


class AuthorizationOps(Rows):
    """`connection_authorizations`; see the module docstring."""

    async def save_connection_authorization(self, pending: ConnectionAuthorization, now: datetime) -> None:
        """Keep an authorization until it is taken or expires (expired ones are dropped here)."""

        def unit(conn: Conn) -> None:
            self._x(conn, "DELETE FROM connection_authorizations WHERE until_ms < ?", (to_ms(now),))
            self._x(
                conn,
                "INSERT INTO connection_authorizations"
                " (state, connection, verifier, redirect_uri, started_by, started_via, until_ms)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    pending.state,
                    pending.connection,
                    pending.verifier,
                    pending.redirect_uri,
                    pending.started_by,
                    pending.started_via,
                    to_ms(pending.until),
                ),
            )

        await self._write(unit)

    async def take_connection_authorization(self, state: str, now: datetime) -> ConnectionAuthorization | None:
        """The live authorization with `state`, removed as it is read (once only); None if unknown, used or expired."""

        def unit(conn: Conn) -> ConnectionAuthorization | None:
            row = self._x(
                conn,
                "SELECT state, connection, verifier, redirect_uri, started_by, started_via, until_ms"
                " FROM connection_authorizations WHERE state = ?",
                (state,),
            ).fetchone()
            if row is None:
                return None
            self._x(conn, "DELETE FROM connection_authorizations WHERE state = ?", (state,))
            until = from_ms(int(row[6]))
            if until is None or until < now:
                return None
            return ConnectionAuthorization(
                str(row[0]), str(row[1]), str(row[2]), str(row[3]), str(row[4]), str(row[5]), until
            )

        return await self._write(unit)
