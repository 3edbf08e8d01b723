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
from seamflow.store.notices import NoticeTx
from seamflow.store.rows import Conn, Rows, from_ms, to_ms

__all__ = ["ApprovalRow", "Delegation", "NewApproval", "NewTask", "StoredTask", "TaskFilter", "TaskOps", "TaskTx"]


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
class NewTask:
    """One person's work at a level: decide (an approver) or amend and resubmit (the requester)."""

    id: str
    approval_id: str
    level: int
    assignee: str
    due: datetime | None
    kind: str = "decide"
    """decide, or amend (a return asked the requester for changes)."""
    on_behalf_of: str | None = None
    """The login the task was meant for, when it went to their delegate."""
    round: int = 0
    """How many times the request was resubmitted before this task was created."""


@dataclass(frozen=True, slots=True)
class Delegation:
    """While `login` is away (`starts` to `ends`), their new tasks go to `delegate`."""

    login: str
    delegate: str
    starts: datetime
    ends: datetime
    set_by: str
    """Who set it: the user, or an admin for them."""

    def is_active(self, at: datetime) -> bool:
        """True if the delegation covers the instant `at`."""
        return self.starts <= at < self.ends


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
    kind: str = "decide"
    """decide, or amend (the requester is asked to change the request and resubmit it)."""
    on_behalf_of: str | None = None
    """The login the task was meant for, when it went to their delegate."""
    round: int = 0
    """How many times the request had been resubmitted when the task was created."""


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """Which tasks to list: an assignee's, a status, newest first, at most `limit`."""

    assignee: str | None = None
    status: str | None = None
    limit: int = 100
    flow_ids: tuple[str, ...] | None = None
    """Only tasks of approvals in these flows; None: any flow."""


_TASK_COLUMNS: LiteralString = (
    "SELECT t.id, t.approval_id, a.run_id, a.path, a.flow_id, a.requester, a.subject, a.data, t.level,"
    " t.assignee, t.status, t.decision, t.comment, t.form, t.created_ms, t.due_ms, t.decided_ms,"
    " t.kind, t.on_behalf_of, t.round"
)
_TASK: LiteralString = _TASK_COLUMNS + " FROM tasks t JOIN approvals a ON a.id = t.approval_id"
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
        row[17],
        row[18],
        int(row[19]),
    )


_DELEGATION: LiteralString = "SELECT login, delegate, starts_ms, ends_ms, set_by FROM delegations"


def _delegation(row: Any) -> Delegation:
    return Delegation(row[0], row[1], from_ms(row[2]), from_ms(row[3]), row[4])  # type: ignore[arg-type]  # NOT NULL


def _approval(row: Any) -> ApprovalRow:
    return ApprovalRow(row[0], RunId(row[1]), row[2], FlowId(row[3]), row[4], row[5], _json(row[6]), row[7], row[8])


class TaskTx(NoticeTx):
    """The approval and task writes of a run transaction (mixed into `SqlRunTx`), notices included."""

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

    def insert_task(self, task: NewTask, at: datetime) -> None:
        """Ask one person to decide at a level (or the requester to amend the request)."""
        self._x(
            "INSERT INTO tasks (id, approval_id, level, assignee, status, created_ms, due_ms, kind, on_behalf_of,"
            " round) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?)",
            (
                task.id,
                task.approval_id,
                task.level,
                task.assignee,
                to_ms(at),
                None if task.due is None else to_ms(task.due),
                task.kind,
                task.on_behalf_of,
                task.round,
            ),
        )

    def reassign_task(self, task_id: str, assignee: str, on_behalf_of: str) -> None:
        """Hand a pending task over to a delegate, recording whose it was."""
        self._x(
            "UPDATE tasks SET assignee = ?, on_behalf_of = ? WHERE id = ? AND status = 'pending'",
            (assignee, on_behalf_of, task_id),
        )

    def pending_tasks_of(self, login: str) -> list[StoredTask]:
        """A person's pending tasks, oldest first."""
        rows = self._x(_TASK + " WHERE t.assignee = ? AND t.status = 'pending' ORDER BY t.created_ms, t.id", (login,))
        return [_task(r) for r in rows.fetchall()]

    def amend_approval(self, approval_id: str, data: Json, at: datetime) -> None:
        """Replace the request's data after the requester amended it."""
        self._x(
            "UPDATE approvals SET data = ?, updated_ms = ? WHERE id = ?",
            (codec.dumps_text(data), to_ms(at), approval_id),
        )

    def set_delegation(self, delegation: Delegation, at: datetime) -> None:
        """Set (or replace) a user's delegation."""
        d = delegation
        self._x(
            "INSERT INTO delegations (login, delegate, starts_ms, ends_ms, set_by, created_ms)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (login) DO UPDATE SET delegate = excluded.delegate,"
            " starts_ms = excluded.starts_ms, ends_ms = excluded.ends_ms, set_by = excluded.set_by,"
            " created_ms = excluded.created_ms",
            (d.login, d.delegate, to_ms(d.starts), to_ms(d.ends), d.set_by, to_ms(at)),
        )

    def clear_delegation(self, login: str) -> bool:
        """End a user's delegation; False if they had none."""
        return bool(self._x("DELETE FROM delegations WHERE login = ?", (login,)).rowcount)

    def read_delegations(self) -> list[Delegation]:
        """Every delegation, as this transaction sees them (few: one per user away)."""
        return [_delegation(r) for r in self._x(_DELEGATION + " ORDER BY login").fetchall()]

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
        if query.flow_ids is not None:
            marks: LiteralString = ", ".join("?" for _ in query.flow_ids)
            # inside the page's subquery, where the approvals are not joined yet
            of_flows: LiteralString = "EXISTS (SELECT 1 FROM approvals f WHERE f.id = t.approval_id AND f.flow_id IN ("
            where.append(of_flows + marks + "))" if query.flow_ids else "1 = 0")
            params.extend(query.flow_ids)
        clause: LiteralString = (" WHERE " + " AND ".join(where)) if where else ""
        # The page of tasks first (in `tasks_inbox` order, stopping at `limit`), then their
        # approvals: the join never touches more approvals than the page lists.
        newest: LiteralString = " ORDER BY t.created_ms DESC, t.id"
        page: LiteralString = "(SELECT * FROM tasks t" + clause + newest + " LIMIT ?) t"  # noqa: S608 - constants only
        sql: LiteralString = _TASK_COLUMNS + " FROM " + page + " JOIN approvals a ON a.id = t.approval_id" + newest

        def read(conn: Conn) -> list[StoredTask]:
            return [_task(r) for r in self._x(conn, sql, (*params, query.limit)).fetchall()]

        return await self._read(read)

    async def list_delegations(self) -> list[Delegation]:
        """Every delegation, by login."""

        def read(conn: Conn) -> list[Delegation]:
            return [_delegation(r) for r in self._x(conn, _DELEGATION + " ORDER BY login").fetchall()]

        return await self._read(read)

    async def get_task(self, task_id: str) -> StoredTask | None:
        """One task, or None."""

        def read(conn: Conn) -> StoredTask | None:
            row = self._x(conn, _TASK + " WHERE t.id = ?", (task_id,)).fetchone()
            return None if row is None else _task(row)

        return await self._read(read)
