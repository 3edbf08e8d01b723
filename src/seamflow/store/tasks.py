"""Durable state of approvals: each approval's plan and open level, and its tasks (one person's work).

The engine decides (`engine/approval.py`: who is asked, when a level is complete, what a timer
does); the store keeps. Writes run inside a run transaction (`TaskTx`, part of `RunTx`), so a
decision, the next level's tasks and the run's wake-up commit together. `lock_approval` locks
the approval's row on PostgreSQL (SQLite has one writer), which serialises deciders.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, LiteralString

from seamflow import codec
from seamflow.ids import FlowId, Json, RunId
from seamflow.store.rows import Conn, Rows, from_ms, to_ms

__all__ = ["ApprovalRow", "NewApproval", "StoredTask", "TaskFilter", "TaskOps", "TaskTx"]


@dataclass(frozen=True, slots=True)
class NewApproval:
    """An approval to open with its step's wait: the levels resolved to logins (`plan`), the request."""

    id: str
    path: str
    requester: str
    subject: str | None
    data: Json
    plan: Json


@dataclass(frozen=True, slots=True)
class ApprovalRow:
    """A row of `approvals`: whose request, the plan, the open level and the status."""

    id: str
    run_id: RunId
    path: str
    flow_id: FlowId
    requester: str
    subject: str | None
    plan: Json
    level: int
    status: str


@dataclass(frozen=True, slots=True)
class StoredTask:
    """A task with the request it belongs to."""

    id: str
    approval_id: str
    run_id: RunId
    path: str
    flow_id: FlowId
    requester: str
    subject: str | None
    data: Json
    level: int
    assignee: str
    status: str
    """pending, decided, or closed (settled without this assignee)."""
    decision: str | None
    comment: str | None
    form: Json
    created: datetime
    due: datetime | None
    decided: datetime | None


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """Which tasks to list: an assignee's, a status, newest first, at most `limit`."""

    assignee: str | None = None
    status: str | None = None
    limit: int = 100


_TASK: LiteralString = (
    "SELECT t.id, t.approval_id, a.run_id, a.path, a.flow_id, a.requester, a.subject, a.data, t.level,"
    " t.assignee, t.status, t.decision, t.comment, t.form, t.created_ms, t.due_ms, t.decided_ms"
    " FROM tasks t JOIN approvals a ON a.id = t.approval_id"
)
_APPROVAL: LiteralString = (
    "SELECT id, run_id, path, flow_id, requester, subject, plan, level, status FROM approvals WHERE "
)


def _json(value: Any) -> Json:
    return None if value is None else codec.loads(value)


def _task(row: Any) -> StoredTask:
    return StoredTask(
        row[0],
        row[1],
        RunId(row[2]),
        row[3],
        FlowId(row[4]),
        row[5],
        row[6],
        _json(row[7]),
        int(row[8]),
        row[9],
        row[10],
        row[11],
        row[12],
        _json(row[13]),
        from_ms(row[14]),  # type: ignore[arg-type]  # NOT NULL column
        from_ms(row[15]),
        from_ms(row[16]),
    )


def _approval(row: Any) -> ApprovalRow:
    return ApprovalRow(row[0], RunId(row[1]), row[2], FlowId(row[3]), row[4], row[5], _json(row[6]), row[7], row[8])


class TaskTx:
    """The approval and task writes of a run transaction (mixed into `SqlRunTx`)."""

    __slots__ = ()
    _rows: Rows
    _conn: Conn

    def _x(self, sql: LiteralString, params: tuple[Any, ...] = ()) -> Any:
        return self._conn.execute(self._rows._sql(sql), params)

    def insert_approval(self, run_id: RunId, flow_id: FlowId, approval: NewApproval, at: datetime) -> None:
        """Open an approval at its first level."""
        ms = to_ms(at)
        self._x(
            "INSERT INTO approvals (id, run_id, path, flow_id, requester, subject, data, plan, level, status,"
            " created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 'open', ?, ?)",
            (
                approval.id,
                run_id,
                approval.path,
                flow_id,
                approval.requester,
                approval.subject,
                codec.dumps_text(approval.data),
                codec.dumps_text(approval.plan),
                ms,
                ms,
            ),
        )

    def lock_approval(self, approval_id: str) -> ApprovalRow | None:
        """The approval, its row locked until the commit (PostgreSQL); None if there is none."""
        sql = _APPROVAL + "id = ?" + self._rows._FOR_UPDATE
        row = self._x(sql, (approval_id,)).fetchone()
        return None if row is None else _approval(row)

    def find_approval(self, run_id: RunId, path: str) -> ApprovalRow | None:
        """The approval of a run's step, its row locked until the commit (PostgreSQL)."""
        sql = _APPROVAL + "run_id = ? AND path = ?" + self._rows._FOR_UPDATE
        row = self._x(sql, (run_id, path)).fetchone()
        return None if row is None else _approval(row)

    def update_approval(self, approval_id: str, level: int, status: str, at: datetime) -> None:
        """Move an approval to a level, or settle it (status approved, rejected, returned, withdrawn)."""
        self._x(
            "UPDATE approvals SET level = ?, status = ?, updated_ms = ? WHERE id = ?",
            (level, status, to_ms(at), approval_id),
        )

    def insert_task(
        self, task_id: str, approval_id: str, level: int, assignee: str, at: datetime, due: datetime | None
    ) -> None:
        """Ask one person to decide at a level."""
        self._x(
            "INSERT INTO tasks (id, approval_id, level, assignee, status, created_ms, due_ms)"
            " VALUES (?, ?, ?, ?, 'pending', ?, ?)",
            (task_id, approval_id, level, assignee, to_ms(at), None if due is None else to_ms(due)),
        )

    def read_task(self, task_id: str) -> StoredTask | None:
        """A task as this transaction sees it."""
        row = self._x(_TASK + " WHERE t.id = ?", (task_id,)).fetchone()
        return None if row is None else _task(row)

    def approval_tasks(self, approval_id: str) -> list[StoredTask]:
        """Every task of an approval, in the order they were created."""
        rows = self._x(_TASK + " WHERE t.approval_id = ? ORDER BY t.level, t.created_ms, t.id", (approval_id,))
        return [_task(r) for r in rows.fetchall()]

    def decide_task(self, task_id: str, decision: str, comment: str | None, form: Json, at: datetime) -> None:
        """Write a pending task's decision (the caller has checked it is pending, under the approval's lock)."""
        self._x(
            "UPDATE tasks SET status = 'decided', decision = ?, comment = ?, form = ?, decided_ms = ?"
            " WHERE id = ? AND status = 'pending'",
            (decision, comment, None if form is None else codec.dumps_text(form), to_ms(at), task_id),
        )

    def close_tasks(self, approval_id: str, at: datetime) -> None:
        """Close the approval's pending tasks: their level or the approval was settled without them."""
        self._x(
            "UPDATE tasks SET status = 'closed', decided_ms = ? WHERE approval_id = ? AND status = 'pending'",
            (to_ms(at), approval_id),
        )


class TaskOps(Rows):
    """Reads of tasks for the inbox (mixed into `SqlStore`)."""

    async def list_tasks(self, query: TaskFilter) -> list[StoredTask]:
        """Tasks matching `query`, newest first."""
        where: list[LiteralString] = []
        params: list[Any] = []
        if query.assignee is not None:
            where.append("t.assignee = ?")
            params.append(query.assignee)
        if query.status is not None:
            where.append("t.status = ?")
            params.append(query.status)
        clause: LiteralString = (" WHERE " + " AND ".join(where)) if where else ""
        sql: LiteralString = _TASK + clause + " ORDER BY t.created_ms DESC, t.id LIMIT ?"

        def read(conn: Conn) -> list[StoredTask]:
            return [_task(r) for r in self._x(conn, sql, (*params, query.limit)).fetchall()]

        return await self._read(read)

    async def get_task(self, task_id: str) -> StoredTask | None:
        """One task, or None."""

        def read(conn: Conn) -> StoredTask | None:
            row = self._x(conn, _TASK + " WHERE t.id = ?", (task_id,)).fetchone()
            return None if row is None else _task(row)

        return await self._read(read)
