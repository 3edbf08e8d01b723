"""Durable notifications of approvals: written with what they tell of, taken by a sender, retried until sent.

A notice is one message to one person (a task created for them, a reminder, an escalation, a
return, the outcome). It is inserted in the transaction of the decision or timer that caused it,
so it is never lost and never sent for something that was rolled back; the sender takes due
notices (`take_due_notices` moves them out of reach of other processes for a while) and records
the result. A send that failed waits for `next_ms`; nothing here blocks a decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, LiteralString

from seamflow.store.rows import Conn, Rows, from_ms, to_ms

__all__ = ["NewNotice", "Notice", "NoticeTx"]


@dataclass(frozen=True, slots=True)
class NewNotice:
    """A notification to send: what happened (`kind`), to whom (a login), about which approval and task."""

    id: str
    approval_id: str
    task_id: str | None
    kind: str
    """created, reminded, escalated, returned; approved, rejected or withdrawn (the outcome)."""
    recipient: str
    """A login."""
    connection: str
    """The connection that sends it (the step's `notify.connection`)."""


@dataclass(frozen=True, slots=True)
class Notice:
    """A notice taken for sending, with how often it was tried."""

    id: str
    approval_id: str
    task_id: str | None
    kind: str
    recipient: str
    connection: str
    attempts: int
    created: datetime


_NOTICE: LiteralString = (
    "SELECT id, approval_id, task_id, kind, recipient, connection, attempts, created_ms FROM approval_notices"
)


def _notice(row: Any) -> Notice:
    return Notice(row[0], row[1], row[2], row[3], row[4], row[5], int(row[6]), from_ms(row[7]))  # type: ignore[arg-type]


class NoticeTx:
    """The notice writes of a run transaction (mixed into `SqlRunTx` through `TaskTx`)."""

    __slots__ = ()
    _rows: Rows
    _conn: Conn

    def _n(self, sql: LiteralString, params: tuple[Any, ...] = ()) -> Any:
        return self._conn.execute(self._rows._sql(sql), params)

    def insert_notice(self, notice: NewNotice, at: datetime) -> None:
        """Queue a notification, due at once."""
        n = notice
        self._n(
            "INSERT INTO approval_notices (id, approval_id, task_id, kind, recipient, connection, status, attempts,"
            " next_ms, created_ms) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
            (n.id, n.approval_id, n.task_id, n.kind, n.recipient, n.connection, to_ms(at), to_ms(at)),
        )

    def take_due_notices(self, now: datetime, hold_until: datetime, limit: int) -> list[Notice]:
        """Due notices, oldest first; other processes skip them until `hold_until` (a sender that died)."""
        sql: LiteralString = (
            _NOTICE
            + " WHERE status = 'pending' AND next_ms <= ? ORDER BY next_ms, id LIMIT ?"
            + self._rows._SKIP_LOCKED
        )
        found = [_notice(r) for r in self._n(sql, (to_ms(now), limit)).fetchall()]
        for n in found:
            self._n("UPDATE approval_notices SET next_ms = ? WHERE id = ?", (to_ms(hold_until), n.id))
        return found

    def finish_notice(self, notice_id: str, status: str, attempts: int, next_at: datetime, error: str | None) -> None:
        """Record a send: `sent`, `failed` for good, or `pending` again at `next_at`."""
        self._n(
            "UPDATE approval_notices SET status = ?, attempts = ?, next_ms = ?, error = ? WHERE id = ?",
            (status, attempts, to_ms(next_at), error, notice_id),
        )
