"""Plain writes on runs inside one transaction: rows in, rows out, no decisions.

The engine's journal (`engine/journal.py`) decides what happens to a run — next step, park,
wait, signal, timeout, child run, finish — and tells the store, through a `RunTx`, which rows
to insert, update and delete. Everything done through one `RunTx` commits together (in one
group commit) or not at all. The SQL of these operations lives here, once, for both backends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, LiteralString, Protocol

from seamflow import codec, errors
from seamflow.ids import EventId, FlowId, Json, RunId
from seamflow.store.audit import AuditOps, AuditRow, ChainEnd
from seamflow.store.base import JournalEntry, Lease, RunFinish, RunStatus, Timer, TimerKind, Wait
from seamflow.store.notices import NewNotice, Notice
from seamflow.store.rows import Conn, to_ms
from seamflow.store.tasks import ApprovalRow, Delegation, NewApproval, NewTask, StoredTask, TaskTx

if TYPE_CHECKING:
    from seamflow.store.rows import Rows

__all__ = ["LogRow", "NewRun", "ParkedRun", "PendingSignal", "RunEnd", "RunTx", "SqlRunTx", "TimerRow", "lease_lost"]


@dataclass(frozen=True, slots=True)
class LogRow:
    """One row for the event log."""

    at: datetime
    kind: str
    flow_id: str | None
    run_id: str | None
    path: str | None = None
    activity: str | None = None
    objects: Json = None
    attributes: Json = None


@dataclass(frozen=True, slots=True)
class ParkedRun:
    """A run parked at a step: which step, and the run's generation and flow."""

    run_id: RunId
    path: str
    generation: int
    flow_id: FlowId


@dataclass(frozen=True, slots=True)
class TimerRow:
    """A due timer taken from the store, with its run's generation and flow."""

    run: ParkedRun
    kind: TimerKind


@dataclass(frozen=True, slots=True)
class PendingSignal:
    """A signal that arrived before any run waited for it."""

    payload: Json


@dataclass(frozen=True, slots=True)
class RunEnd:
    """A run's status and, if it finished, its output and error."""

    status: RunStatus
    flow_id: FlowId
    output: Json
    error: Json


class RunTx(Protocol):
    """The writes and reads of one transaction on runs, the journal, waits, timers, signals and the log."""

    def insert_event(
        self, event_id: EventId, flow_id: FlowId, trigger: str, dedupe_key: str | None, body: Json, at: datetime
    ) -> bool:
        """Store an event; False (nothing stored) if its flow has seen its dedupe key."""
        ...

    def find_first_run(self, flow_id: FlowId, dedupe_key: str) -> tuple[RunId, EventId]:
        """The run and event of the first event with this dedupe key."""
        ...

    def insert_run(self, run: NewRun) -> None:
        """Create a queued run (held by `run.lease`'s owner at epoch 1, else claimable by anyone)."""
        ...

    def append_journal(self, run_id: RunId, entry: JournalEntry) -> None:
        """Journal one step attempt."""
        ...

    def append_log(self, rows: list[LogRow]) -> None:
        """Append rows to the event log."""
        ...

    def update_run(
        self, run_id: RunId, at: datetime, *, epoch: int | None, status: RunStatus | None, release: bool
    ) -> None:
        """Set a run's status (None keeps it); `release` drops its lease. With `epoch`, fenced."""
        ...

    def end_run(self, run_id: RunId, finish: RunFinish, at: datetime, *, epoch: int | None) -> None:
        """Write a run's end and drop its lease. With `epoch`, fenced."""
        ...

    def make_runnable(self, run_id: RunId, at: datetime) -> None:
        """Queue a parked run for any worker and wake idle workers."""
        ...

    def restart_run(self, run_id: RunId, at: datetime) -> None:
        """Queue an ended run again in a new generation, for any worker."""
        ...

    def run_end(self, run_id: RunId) -> RunEnd | None:
        """A run's status, output and error; None if there is no such run."""
        ...

    def next_attempt(self, run_id: RunId, path: str) -> int:
        """The number of the next journal attempt of a step."""
        ...

    def set_timer(self, run_id: RunId, timer: Timer) -> None:
        """Set (or move) a run's timer at a step."""
        ...

    def delete_timers(self, run_id: RunId, path: str, kind: TimerKind | None = None) -> None:
        """Delete a run's timers at a step (of one kind, or all)."""
        ...

    def take_due_timers(self, now: datetime, limit: int) -> list[TimerRow]:
        """Due timers, earliest first, locked for this transaction (others skip them)."""
        ...

    def insert_wait(self, run_id: RunId, wait: Wait, at: datetime) -> None:
        """Register a run's wait for a signal."""
        ...

    def delete_wait(self, run_id: RunId, path: str) -> None:
        """Remove a run's wait at a step."""
        ...

    def find_waits(self, signal: str, key: str) -> list[ParkedRun]:
        """Runs waiting for (signal, key)."""
        ...

    def find_wait(self, run_id: RunId, signal: str, key: str) -> ParkedRun | None:
        """One run's wait for (signal, key)."""
        ...

    def keep_signal(self, signal: str, key: str, payload: Json, at: datetime) -> None:
        """Keep a signal for a run that will wait for it later."""
        ...

    def take_pending_signal(self, signal: str, key: str) -> PendingSignal | None:
        """Remove and return the oldest kept signal for (signal, key)."""
        ...

    def advance_schedule(self, flow_id: FlowId, tick: datetime, next_due: datetime) -> bool:
        """Move a schedule from `tick` to `next_due`; False if another process moved it already."""
        ...

    # -- approvals and tasks (store/tasks.py) --
    def insert_approval(self, run_id: RunId, flow_id: FlowId, approval: NewApproval, at: datetime) -> None: ...
    def lock_approval(self, approval_id: str) -> ApprovalRow | None: ...
    def find_approval(self, run_id: RunId, path: str) -> ApprovalRow | None: ...
    def update_approval(self, approval_id: str, level: int, status: str, at: datetime) -> None: ...
    def insert_task(self, task: NewTask, at: datetime) -> None: ...
    def reassign_task(self, task_id: str, assignee: str, on_behalf_of: str) -> None: ...
    def pending_tasks_of(self, login: str) -> list[StoredTask]: ...
    def amend_approval(self, approval_id: str, data: Json, at: datetime) -> None: ...
    def set_delegation(self, delegation: Delegation, at: datetime) -> None: ...
    def clear_delegation(self, login: str) -> bool: ...
    def read_delegations(self) -> list[Delegation]: ...
    def insert_notice(self, notice: NewNotice, at: datetime) -> None: ...
    def take_due_notices(self, now: datetime, hold_until: datetime, limit: int) -> list[Notice]: ...
    def finish_notice(
        self, notice_id: str, status: str, attempts: int, next_at: datetime, error: str | None
    ) -> None: ...
    def read_task(self, task_id: str) -> StoredTask | None: ...
    def approval_tasks(self, approval_id: str) -> list[StoredTask]: ...
    def decide_task(self, task_id: str, decision: str, comment: str | None, form: Json, at: datetime) -> None: ...
    def close_tasks(self, approval_id: str, at: datetime) -> None: ...

    # -- the audit trail (store/audit.py) --
    def append_audit_entry(self, link: Callable[[ChainEnd], AuditRow]) -> AuditRow:
        """Append an audit entry in this transaction (under the chain's lock): an action and its
        record commit together, or neither does."""
        ...


@dataclass(frozen=True, slots=True)
class NewRun:
    """A run to create for an accepted event."""

    run_id: RunId
    flow_id: FlowId
    flow_version: str
    event_id: EventId
    at: datetime
    parent_run_id: RunId | None = None
    parent_path: str | None = None
    lease: Lease | None = None


class SqlRunTx(TaskTx):
    """`RunTx` over a DB-API connection of a `SqlStore`, inside its group commit."""

    __slots__ = ("_conn", "_rows")

    def __init__(self, rows: Rows, conn: Conn) -> None:
        self._rows = rows
        self._conn = conn

    def _x(self, sql: LiteralString, params: tuple[Any, ...] = ()) -> Any:
        return self._conn.execute(self._rows._sql(sql), params)

    def append_audit_entry(self, link: Callable[[ChainEnd], AuditRow]) -> AuditRow:
        assert isinstance(self._rows, AuditOps)  # every SqlStore keeps the audit trail
        return self._rows._append_audit_entry(self._conn, link)

    def insert_event(
        self, event_id: EventId, flow_id: FlowId, trigger: str, dedupe_key: str | None, body: Json, at: datetime
    ) -> bool:
        rows = self._rows
        packed = rows._pack(self._conn, body, "the event body")
        if rows._APPENDS_EVENTS and rows._appends.is_optimistic:  # a seen key re-runs the batch: see AppendTable
            rows._appends.add("events", (event_id, flow_id, trigger, dedupe_key, packed, to_ms(at)))
            return True
        inserted = self._x(
            "INSERT INTO events (id, flow_id, trigger, dedupe_key, body, received_ms) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (flow_id, dedupe_key) DO NOTHING",
            (event_id, flow_id, trigger, dedupe_key, packed, to_ms(at)),
        )
        return self._rows._one_row(self._conn, inserted, _SeenBefore)

    def find_first_run(self, flow_id: FlowId, dedupe_key: str) -> tuple[RunId, EventId]:
        self._rows._appends.flush(self._conn)  # the first run may be in this very batch
        row = self._x(
            "SELECT r.id, e.id FROM events e JOIN runs r ON r.event_id = e.id WHERE e.flow_id = ? AND e.dedupe_key = ?",
            (flow_id, dedupe_key),
        ).fetchone()
        return RunId(row[0]), EventId(row[1])

    def insert_run(self, run: NewRun) -> None:
        at = to_ms(run.at)
        lease = run.lease
        self._rows._appends.add(
            "runs",
            (
                run.run_id,
                run.flow_id,
                run.flow_version,
                run.event_id,
                RunStatus.QUEUED.value,
                run.parent_run_id,
                run.parent_path,
                at,
                at,
                None if lease is None else lease.owner,
                0 if lease is None else to_ms(lease.until),
                0 if lease is None else 1,
            ),
        )
        if lease is None:
            self._rows._notify_runnable(self._conn)

    def append_journal(self, run_id: RunId, entry: JournalEntry) -> None:
        rows, conn = self._rows, self._conn
        rows._journal(
            (
                run_id,
                entry.path,
                entry.attempt,
                entry.generation,
                entry.kind,
                entry.status.value,
                None if entry.input is None else rows._pack(conn, entry.input, f"the input of step {entry.path}"),
                rows._pack(conn, entry.output, f"the output of step {entry.path}"),
                None if entry.error is None else codec.dumps_text(entry.error),
                to_ms(entry.started),
                to_ms(entry.finished),
            )
        )

    def append_log(self, rows: list[LogRow]) -> None:
        add = self._rows._appends.add
        for r in rows:
            objects = None if r.objects is None else codec.dumps_text(r.objects)
            attributes = None if r.attributes is None else codec.dumps_text(r.attributes)
            add("event_log", (to_ms(r.at), r.kind, r.flow_id, r.run_id, r.path, r.activity, objects, attributes))

    def update_run(
        self, run_id: RunId, at: datetime, *, epoch: int | None, status: RunStatus | None, release: bool
    ) -> None:
        value = None if status is None else status.value
        if epoch is None:
            if value is not None:
                self._x("UPDATE runs SET status = ?, updated_ms = ? WHERE id = ?", (value, to_ms(at), run_id))
            return
        sql: LiteralString = (
            "UPDATE runs SET owner = NULL, lease_until_ms = 0, status = COALESCE(?, status), updated_ms = ?"
            " WHERE id = ? AND epoch = ?"
            if release
            else "UPDATE runs SET status = COALESCE(?, status), updated_ms = ? WHERE id = ? AND epoch = ?"
        )
        self._fenced(self._x(sql, (value, to_ms(at), run_id, epoch)), run_id)

    def end_run(self, run_id: RunId, finish: RunFinish, at: datetime, *, epoch: int | None) -> None:
        sql: LiteralString = (
            "UPDATE runs SET status = ?, output = ?, error = ?, updated_ms = ?, finished_ms = ?, owner = NULL,"
            " lease_until_ms = 0 WHERE id = ?"
        )
        ms = to_ms(at)
        values: tuple[Any, ...] = (
            finish.status.value,
            self._rows._pack(self._conn, finish.output, "the run output"),
            None if finish.error is None else codec.dumps_text(finish.error),
            ms,
            ms,
            run_id,
        )
        if epoch is None:
            self._x(sql, values)
            return
        appends = self._rows._appends
        if appends.is_optimistic:  # one UPDATE for the batch's ends; a moved epoch re-runs it unit by unit
            appends.add("run_ends", (run_id, epoch, values[0], values[1], values[2], ms))
            return
        self._fenced(self._x(sql + " AND epoch = ?", (*values, epoch)), run_id)

    def _fenced(self, cursor: Any, run_id: RunId) -> None:
        """Refuse the write of a worker whose lease on the run was taken over (its epoch is old)."""
        if not self._rows._one_row(self._conn, cursor, lambda: lease_lost(run_id)):
            raise lease_lost(run_id)

    def make_runnable(self, run_id: RunId, at: datetime) -> None:
        self._x(
            "UPDATE runs SET status = 'queued', owner = NULL, lease_until_ms = 0, updated_ms = ? WHERE id = ?",
            (to_ms(at), run_id),
        )
        self._rows._notify_runnable(self._conn)

    def restart_run(self, run_id: RunId, at: datetime) -> None:
        self._x(
            "UPDATE runs SET status = 'queued', generation = generation + 1, error = NULL,"
            " finished_ms = NULL, owner = NULL, lease_until_ms = 0, updated_ms = ? WHERE id = ?",
            (to_ms(at), run_id),
        )
        self._rows._notify_runnable(self._conn)

    def run_end(self, run_id: RunId) -> RunEnd | None:
        self._rows._appends.flush(self._conn)  # the run may have ended in this very batch
        row = self._x("SELECT status, flow_id, output, error FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            return None
        output = self._rows._unpack(self._conn, row[2])
        return RunEnd(RunStatus(row[0]), FlowId(row[1]), output, None if row[3] is None else codec.loads(row[3]))

    def next_attempt(self, run_id: RunId, path: str) -> int:
        self._rows._appends.flush(self._conn)  # the journal rows of this batch must be visible to the read
        row = self._x(
            "SELECT COALESCE(MAX(attempt), 0) FROM journal WHERE run_id = ? AND path = ?", (run_id, path)
        ).fetchone()
        return int(row[0]) + 1

    def set_timer(self, run_id: RunId, timer: Timer) -> None:
        self._x(
            "INSERT INTO timers (run_id, path, kind, due_ms) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (run_id, path, kind) DO UPDATE SET due_ms = excluded.due_ms",
            (run_id, timer.path, timer.kind.value, to_ms(timer.due)),
        )

    def delete_timers(self, run_id: RunId, path: str, kind: TimerKind | None = None) -> None:
        if kind is None:
            self._x("DELETE FROM timers WHERE run_id = ? AND path = ?", (run_id, path))
        else:
            self._x("DELETE FROM timers WHERE run_id = ? AND path = ? AND kind = ?", (run_id, path, kind.value))

    def take_due_timers(self, now: datetime, limit: int) -> list[TimerRow]:
        rows = self._x(
            "SELECT t.run_id, t.path, t.kind, r.generation, r.flow_id FROM timers t JOIN runs r ON r.id = t.run_id"  # noqa: S608 - constants only
            " WHERE t.due_ms <= ? ORDER BY t.due_ms LIMIT ?" + self._rows._SKIP_LOCKED_TIMERS,
            (to_ms(now), limit),
        ).fetchall()
        return [TimerRow(ParkedRun(RunId(r[0]), r[1], r[3], FlowId(r[4])), TimerKind(r[2])) for r in rows]

    def insert_wait(self, run_id: RunId, wait: Wait, at: datetime) -> None:
        self._x(
            "INSERT INTO waits (run_id, path, signal, key, created_ms) VALUES (?, ?, ?, ?, ?)",
            (run_id, wait.path, wait.signal, wait.key, to_ms(at)),
        )

    def delete_wait(self, run_id: RunId, path: str) -> None:
        self._x("DELETE FROM waits WHERE run_id = ? AND path = ?", (run_id, path))

    def find_waits(self, signal: str, key: str) -> list[ParkedRun]:
        rows = self._x(
            "SELECT w.run_id, w.path, r.generation, r.flow_id FROM waits w JOIN runs r ON r.id = w.run_id"
            " WHERE w.signal = ? AND w.key = ?",
            (signal, key),
        ).fetchall()
        return [ParkedRun(RunId(r[0]), r[1], r[2], FlowId(r[3])) for r in rows]

    def find_wait(self, run_id: RunId, signal: str, key: str) -> ParkedRun | None:
        row = self._x(
            "SELECT w.path, r.generation, r.flow_id FROM waits w JOIN runs r ON r.id = w.run_id"
            " WHERE w.run_id = ? AND w.signal = ? AND w.key = ?",
            (run_id, signal, key),
        ).fetchone()
        return None if row is None else ParkedRun(run_id, row[0], row[1], FlowId(row[2]))

    def keep_signal(self, signal: str, key: str, payload: Json, at: datetime) -> None:
        self._x(
            "INSERT INTO pending_signals (signal, key, payload, created_ms) VALUES (?, ?, ?, ?)",
            (signal, key, codec.dumps(payload), to_ms(at)),
        )

    def take_pending_signal(self, signal: str, key: str) -> PendingSignal | None:
        row = self._x(
            "SELECT id, payload FROM pending_signals WHERE signal = ? AND key = ? ORDER BY id LIMIT 1", (signal, key)
        ).fetchone()
        if row is None:
            return None
        self._x("DELETE FROM pending_signals WHERE id = ?", (row[0],))
        return PendingSignal(codec.loads(bytes(row[1])))

    def advance_schedule(self, flow_id: FlowId, tick: datetime, next_due: datetime) -> bool:
        cur = self._x(
            "UPDATE schedules SET next_ms = ? WHERE flow_id = ? AND next_ms = ?",
            (to_ms(next_due), flow_id, to_ms(tick)),
        )
        return bool(cur.rowcount == 1)


def lease_lost(run_id: RunId) -> errors.LeaseLost:
    """The error for a write refused because another worker claimed the run since."""
    return errors.LeaseLost(f"run {run_id} was taken over by another worker; this result is not recorded")


class _SeenBefore(Exception):
    """A pipelined insert met a dedupe key already stored: the batch is re-run unpipelined, which answers it."""
