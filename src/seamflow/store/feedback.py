"""Feedback on a flow, a step or a run: a user's suggestion or problem report, closed by a process owner.

Leaving feedback and closing it each commit together with their row of the event log
(`feedback.created`, `feedback.closed`), so insight counts feedback like any other event.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, LiteralString

from seamflow import codec, errors
from seamflow.store.rows import Conn, Rows, from_ms, to_ms

__all__ = ["FeedbackFilter", "FeedbackOps", "StoredFeedback"]

_COLUMNS: LiteralString = "id, kind, flow_id, run_id, step, body, author, created_ms, closed_ms, closed_by, close_note"


@dataclass(frozen=True, slots=True)
class StoredFeedback:
    """One piece of feedback, open (`closed_at` None) or closed with a note."""

    id: str
    kind: str
    """`suggestion` or `problem`."""
    flow_id: str
    run_id: str | None
    step: str | None
    """The step's id (its path in the run) the feedback is about, if any."""
    body: str
    author: str
    created_at: datetime
    closed_at: datetime | None = None
    closed_by: str | None = None
    close_note: str | None = None


@dataclass(frozen=True, slots=True)
class FeedbackFilter:
    """Which feedback to list: newest first, before a keyset position."""

    is_open: bool | None = None
    """True: open only; False: closed only; None: both."""
    flow_id: str | None = None
    before: tuple[datetime, str] | None = None
    """(created_at, id) of the last item of the previous page."""
    limit: int = 50


def _log_objects(f: StoredFeedback) -> str:
    # the run, if any, is added by insight to every engine row that names one
    return codec.dumps_text({"feedback": f.id, "flow": f.flow_id})


class FeedbackOps(Rows):
    """Feedback rows and their event-log rows, written in one commit on both backends."""

    async def add_feedback(self, feedback: StoredFeedback) -> None:
        """Keep `feedback` and its `feedback.created` row of the event log, in one commit."""
        f = feedback

        def unit(conn: Conn) -> None:
            self._x(
                conn,
                "INSERT INTO feedback (id, kind, flow_id, run_id, step, body, author, created_ms)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (f.id, f.kind, f.flow_id, f.run_id, f.step, f.body, f.author, to_ms(f.created_at)),
            )
            attributes = codec.dumps_text({"kind": f.kind, "who": f.author, "text": f.body})
            self._appends.add(
                "event_log",
                (
                    to_ms(f.created_at),
                    "feedback.created",
                    f.flow_id,
                    f.run_id,
                    f.step,
                    None,
                    _log_objects(f),
                    attributes,
                ),
            )

        await self._write(unit)

    async def close_feedback(self, feedback_id: str, by: str, note: str, at: datetime) -> StoredFeedback:
        """Close open feedback with a note; its `feedback.closed` row of the event log commits with it.

        Raises:
            errors.NotFound: no feedback has this id.
            errors.Conflict: it was closed already (by whom and when is in the message).
        """

        def unit(conn: Conn) -> StoredFeedback:
            sql: LiteralString = "SELECT " + _COLUMNS + " FROM feedback WHERE id = ?" + self._FOR_UPDATE  # noqa: S608
            row = self._x(conn, sql, (feedback_id,))
            found = row.fetchone()
            if found is None:
                raise errors.NotFound(f"feedback {feedback_id} does not exist", code="feedback.not_found")
            current = _feedback(found)
            if current.closed_at is not None:
                raise errors.Conflict(
                    f"feedback {feedback_id} was closed by {current.closed_by} at {current.closed_at.isoformat()}",
                    code="feedback.closed",
                )
            self._x(
                conn,
                "UPDATE feedback SET closed_ms = ?, closed_by = ?, close_note = ? WHERE id = ?",
                (to_ms(at), by, note, feedback_id),
            )
            closed = replace(current, closed_at=at, closed_by=by, close_note=note)
            attributes = codec.dumps_text({"kind": current.kind, "who": by, "note": note})
            self._appends.add(
                "event_log",
                (to_ms(at), "feedback.closed", current.flow_id, current.run_id, current.step, None,
                 _log_objects(current), attributes),
            )  # fmt: skip
            return closed

        return await self._write(unit)

    async def list_feedback(self, query: FeedbackFilter) -> list[StoredFeedback]:
        """Feedback newest first (keyset pages by `query.before`), filtered by state and flow."""
        where: list[LiteralString] = []
        params: list[Any] = []
        if query.is_open is not None:
            where.append("closed_ms IS NULL" if query.is_open else "closed_ms IS NOT NULL")
        if query.flow_id is not None:
            where.append("flow_id = ?")
            params.append(query.flow_id)
        if query.before is not None:
            where.append("(created_ms < ? OR (created_ms = ? AND id < ?))")
            at = to_ms(query.before[0])
            params.extend((at, at, query.before[1]))
        sql: LiteralString = "SELECT " + _COLUMNS + " FROM feedback"  # noqa: S608
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_ms DESC, id DESC LIMIT ?"
        params.append(query.limit)

        def read(conn: Conn) -> list[StoredFeedback]:
            return [_feedback(r) for r in self._x(conn, sql, tuple(params)).fetchall()]

        return await self._read(read)


def _feedback(r: Any) -> StoredFeedback:
    return StoredFeedback(
        id=r[0],
        kind=r[1],
        flow_id=r[2],
        run_id=r[3],
        step=r[4],
        body=r[5],
        author=r[6],
        created_at=from_ms(r[7]),  # type: ignore[arg-type]  # NOT NULL column
        closed_at=from_ms(r[8]),
        closed_by=r[9],
        close_note=r[10],
    )
