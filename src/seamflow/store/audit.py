"""Durable state of the audit trail: one hash-chained row per administrative or human action.

The audit capability decides what an entry says and how it is hashed; the store keeps the chain
in one order. `append_audit_entry` reads the chain's last entry and writes the next one in one
write transaction, holding a lock all processes share (an advisory transaction lock on
PostgreSQL, the writer's `BEGIN IMMEDIATE` and file lock on SQLite): two processes appending at
once still make one chain. `seq` is the primary key, so a fork could not be stored anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, LiteralString

from seamflow.store.rows import Conn, Rows, to_ms

__all__ = ["AuditOps", "AuditRow", "ChainEnd"]


@dataclass(frozen=True, slots=True)
class AuditRow:
    """A row of `audit_log`, as stored; `detail` is canonical JSON text, hashed as it is."""

    seq: int
    at_ms: int
    """When, in epoch milliseconds: the integer is what the hash covers."""
    actor: str
    via: str
    action: str
    object: str
    client: str
    user_agent: str
    detail: str
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class ChainEnd:
    """The last entry of the chain as an append sees it under the lock (seq 0 and None: empty)."""

    seq: int
    hash: str | None


class AuditOps(Rows):
    """Appends, reads and pruning of the audit trail; see the module docstring."""

    _AUDIT_LOCK: ClassVar[LiteralString] = ""
    """A statement that takes the chain's lock inside the write transaction (empty: the writer lock is it)."""

    async def append_audit_entry(self, link: Callable[[ChainEnd], AuditRow]) -> AuditRow:
        """Under the chain's lock, let `link` build the next row after the chain's end, and store it."""
        return await self._write(lambda conn: self._append_audit_entry(conn, link))

    def _append_audit_entry(self, conn: Conn, link: Callable[[ChainEnd], AuditRow]) -> AuditRow:
        """`append_audit_entry` inside a write transaction that is open already (a run transaction's)."""
        if self._AUDIT_LOCK:
            self._x(conn, self._AUDIT_LOCK)
        row = link(self._chain_end(conn))
        self._insert_audit_row(conn, row)
        return row

    async def list_audit_entries(
        self, *, since: datetime | None = None, after_seq: int = 0, limit: int | None = None
    ) -> list[AuditRow]:
        """Entries in chain order (by `seq`), from `since` and after `after_seq`, at most `limit`."""
        since_ms = -1 if since is None else to_ms(since)
        most = -1 if limit is None else limit

        def read(conn: Conn) -> list[AuditRow]:
            rows = self._x(
                conn,
                "SELECT seq, at_ms, actor, via, action, object, client, user_agent, detail, prev_hash, hash"
                " FROM audit_log WHERE at_ms >= ? AND seq > ? ORDER BY seq LIMIT ?",
                (since_ms, after_seq, most if most >= 0 else 2**62),
            ).fetchall()
            return [_audit_row(r) for r in rows]

        return await self._read(read)

    async def prune_audit_entries(self, before: datetime, anchor: Callable[[AuditRow, ChainEnd], AuditRow]) -> int:
        """Delete the entries older than `before` and append `anchor(last deleted, chain end)`, in one commit.

        The newest entry is never deleted (the chain's end stays where appends continue).
        Returns how many entries were deleted (0: nothing older, and no anchor is written).
        """

        def unit(conn: Conn) -> int:
            if self._AUDIT_LOCK:
                self._x(conn, self._AUDIT_LOCK)
            end = self._chain_end(conn)
            cut = self._x(
                conn,
                "SELECT seq, at_ms, actor, via, action, object, client, user_agent, detail, prev_hash, hash"
                " FROM audit_log WHERE at_ms < ? AND seq < ? ORDER BY seq DESC LIMIT 1",
                (to_ms(before), end.seq),
            ).fetchone()
            if cut is None:
                return 0
            last = _audit_row(cut)
            deleted = self._x(conn, "DELETE FROM audit_log WHERE seq <= ?", (last.seq,)).rowcount
            self._insert_audit_row(conn, anchor(last, end))
            return int(deleted)

        return await self._write(unit)

    def _chain_end(self, conn: Conn) -> ChainEnd:
        row = self._x(conn, "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        return ChainEnd(0, None) if row is None else ChainEnd(int(row[0]), str(row[1]))

    def _insert_audit_row(self, conn: Conn, row: AuditRow) -> None:
        self._x(
            conn,
            "INSERT INTO audit_log (seq, at_ms, actor, via, action, object, client, user_agent, detail,"
            " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.seq,
                row.at_ms,
                row.actor,
                row.via,
                row.action,
                row.object,
                row.client,
                row.user_agent,
                row.detail,
                row.prev_hash,
                row.hash,
            ),
        )


def _audit_row(r: Any) -> AuditRow:
    return AuditRow(
        int(r[0]),
        int(r[1]),
        str(r[2]),
        str(r[3]),
        str(r[4]),
        str(r[5]),
        str(r[6]),
        str(r[7]),
        str(r[8]),
        str(r[9]),
        str(r[10]),
    )
