"""Durable grants of a role on a flow or a folder of flows, and OIDC sign-ins in progress.

The directory capability decides what a grant means (`directory.Reach`); the store keeps the rows.
A sign-in request is taken once: `take_sign_in_request` deletes the row it returns in the same
transaction, so a replayed `state` finds nothing, in every process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from seamflow.store.rows import Conn, Rows, from_ms, to_ms

__all__ = ["GrantOps", "SignInRequest", "StoredGrant"]


@dataclass(frozen=True, slots=True)
class StoredGrant:
    """A row of `grants`: `subject` (`user:<login>`, `department:<id>`, `position:<id>`) holds `role` on `target`."""

    subject: str
    role: str
    target: str
    """`flow:<flow id>` or `folder:<path>/` (relative to the project's flows folder)."""
    created: datetime
    created_by: str


@dataclass(frozen=True, slots=True)
class SignInRequest:
    """An OIDC authorization request in progress, known by its `state`."""

    state: str
    nonce: str
    verifier: str
    """The PKCE code verifier (RFC 7636); it never leaves the server."""
    until: datetime


class GrantOps(Rows):
    """`grants` and `sign_in_requests`; see the module docstring."""

    async def add_grant(self, grant: StoredGrant) -> bool:
        """Store a grant; False if the same subject already held that role on that target (kept as it was)."""

        def unit(conn: Conn) -> bool:
            added = self._x(
                conn,
                "INSERT INTO grants (subject, role, target, created_ms, created_by) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (subject, role, target) DO NOTHING",
                (grant.subject, grant.role, grant.target, to_ms(grant.created), grant.created_by),
            )
            return bool(added.rowcount == 1)

        return await self._write(unit)

    async def remove_grant(self, subject: str, role: str, target: str) -> bool:
        """Remove a grant; False if there was none."""

        def unit(conn: Conn) -> bool:
            removed = self._x(
                conn, "DELETE FROM grants WHERE subject = ? AND role = ? AND target = ?", (subject, role, target)
            )
            return bool(removed.rowcount == 1)

        return await self._write(unit)

    async def list_grants(self, subjects: Sequence[str] | None = None) -> list[StoredGrant]:
        """Every grant (of the given subjects only, when named), by subject, target and role."""

        def read(conn: Conn) -> list[StoredGrant]:
            rows = self._x(
                conn,
                "SELECT subject, role, target, created_ms, created_by FROM grants ORDER BY subject, target, role",
            ).fetchall()
            wanted = None if subjects is None else set(subjects)
            return [
                StoredGrant(r[0], r[1], r[2], from_ms(r[3]), r[4])  # type: ignore[arg-type]  # NOT NULL column
                for r in rows
                if wanted is None or r[0] in wanted
            ]

        return await self._read(read)

    async def save_sign_in_request(self, request: SignInRequest, now: datetime) -> None:
        """Keep an authorization request until it is taken or expires (expired ones are dropped here)."""

        def unit(conn: Conn) -> None:
            self._x(conn, "DELETE FROM sign_in_requests WHERE until_ms < ?", (to_ms(now),))
            self._x(
                conn,
                "INSERT INTO sign_in_requests (state, nonce, verifier, until_ms) VALUES (?, ?, ?, ?)",
                (request.state, request.nonce, request.verifier, to_ms(request.until)),
            )

        await self._write(unit)

    async def take_sign_in_request(self, state: str, now: datetime) -> SignInRequest | None:
        """The live request with `state`, removed as it is read (once only); None if unknown, used or expired."""

        def unit(conn: Conn) -> SignInRequest | None:
            row = self._x(
                conn, "SELECT state, nonce, verifier, until_ms FROM sign_in_requests WHERE state = ?", (state,)
            ).fetchone()
            if row is None:
                return None
            self._x(conn, "DELETE FROM sign_in_requests WHERE state = ?", (state,))
            if row[3] < to_ms(now):
                return None
            return SignInRequest(row[0], row[1], row[2], from_ms(row[3]))  # type: ignore[arg-type]  # NOT NULL

        return await self._write(unit)
