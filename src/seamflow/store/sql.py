"""The store's write operations, shared by both backends; each is one unit of a group commit.

Backends subclass `SqlStore` and provide the connection, the placeholder style and the
hooks that differ (claiming, wake-ups, error classification).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, LiteralString

from seamflow import codec, errors, ids
from seamflow.ids import EventId, FlowId, Json, RunId
from seamflow.store.base import (
    Accepted,
    DueTimer,
    JournalEntry,
    NewEvent,
    RunFinish,
    RunStatus,
    StepRecord,
    TimerKind,
    Wait,
)
from seamflow.store.feeds import FeedOps
from seamflow.store.leases import LeaseOps
from seamflow.store.rows import BLOB_THRESHOLD_BYTES, JOURNAL_ENTRY_LIMIT_BYTES, Conn, from_ms, to_ms
from seamflow.store.syncs import SyncOps
from seamflow.store.views import RunViews

__all__ = ["BLOB_THRESHOLD_BYTES", "JOURNAL_ENTRY_LIMIT_BYTES", "SqlStore"]


class SqlStore(RunViews, LeaseOps, FeedOps, SyncOps):
    """Store operations written once over a DB-API connection; see `store.Store`."""

    async def save_flow_version(self, flow_id: FlowId, version: str, source: str, path: str) -> None:
        def unit(conn: Conn) -> None:
            self._x(
                conn,
                "INSERT INTO flow_versions (flow_id, version, source, path, created_ms) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (flow_id, version) DO NOTHING",
                (flow_id, version, source, path, to_ms(datetime.now(UTC))),
            )

        await self._write(unit)

    async def accept_event(self, event: NewEvent) -> Accepted:
        """Store the event and create its queued run, unless its dedupe key was seen."""
        return await self._write(lambda conn: self._accept(conn, event))

    def _accept(self, conn: Conn, event: NewEvent) -> Accepted:
        event_id = EventId(ids.new_id("evt"))
        run_id = event.run_id or RunId(ids.new_id("run"))
        now = to_ms(event.received)
        body = self._pack(conn, event.body, "the event body")
        inserted = self._x(
            conn,
            "INSERT INTO events (id, flow_id, trigger, dedupe_key, body, received_ms) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (flow_id, dedupe_key) DO NOTHING",
            (event_id, event.flow_id, event.trigger, event.dedupe_key, body, now),
        )
        if not self._one_row(conn, inserted, _SeenBefore):  # the dedupe key was seen: answer with the first run
            self._appends.flush(conn)  # the first run may be in this very batch
            row = self._x(
                conn,
                "SELECT r.id, e.id FROM events e JOIN runs r ON r.event_id = e.id"
                " WHERE e.flow_id = ? AND e.dedupe_key = ?",
                (event.flow_id, event.dedupe_key),
            ).fetchone()
            return Accepted(RunId(row[0]), EventId(row[1]), is_duplicate=True)
        lease = event.lease
        self._appends.add(
            "runs",
            (
                run_id,
                event.flow_id,
                event.flow_version,
                event_id,
                RunStatus.QUEUED.value,
                event.parent_run_id,
                event.parent_path,
                now,
                now,
                None if lease is None else lease.owner,
                0 if lease is None else to_ms(lease.until),
                0 if lease is None else 1,
            ),
        )
        if lease is None:
            self._notify_runnable(conn)
        attrs = codec.dumps_text({"trigger": event.trigger, "event_id": event_id})
        self._log(conn, [(now, "run.queued", event.flow_id, run_id, None, None, None, attrs)])
        for entry in event.journal:
            self._journal_entry(conn, run_id, entry)
            path = entry.path
            self._log(conn, [(to_ms(entry.finished), "step.completed", event.flow_id, run_id, path, None, None, None)])
        return Accepted(run_id, event_id, is_duplicate=False)

    def _journal_entry(self, conn: Conn, run_id: RunId, entry: JournalEntry) -> None:
        self._journal(
            (
                run_id,
                entry.path,
                entry.attempt,
                entry.generation,
                entry.kind,
                entry.status.value,
                self._pack(conn, entry.input, f"the input of step {entry.path}"),
                self._pack(conn, entry.output, f"the output of step {entry.path}"),
                None if entry.error is None else codec.dumps_text(entry.error),
                to_ms(entry.started),
                to_ms(entry.finished),
            )
        )

    async def record_step(self, record: StepRecord) -> list[RunId]:
        """Journal a step attempt with its consequences (timer, wait, event, finish) in one commit.

        Returns:
            Runs that became runnable as a consequence (a parent whose child finished, or
            this run if a signal for its wait was already pending).
        """
        return await self._write(lambda conn: self._record_step(conn, record))

    def _record_step(self, conn: Conn, record: StepRecord) -> list[RunId]:
        entry = record.entry
        now = to_ms(entry.finished)
        is_parked = record.timer is not None or record.wait is not None or record.child is not None
        status = RunStatus.WAITING if is_parked else record.run_status
        if record.finish is None:  # a finish is fenced by its own UPDATE (one statement, see _finish)
            self._fence(conn, record.run_id, record.epoch, now, release=is_parked, status=status)
        self._journal_entry(conn, record.run_id, entry)
        kind = f"step.{entry.status.value}"
        log: list[tuple[Any, ...]] = [(now, kind, record.flow_id, record.run_id, entry.path, None, None, None)]
        if record.emit is not None:
            e = record.emit
            objects, attributes = codec.dumps_text(e.objects), codec.dumps_text(e.attributes)
            log.append(
                (to_ms(e.at), "business", record.flow_id, record.run_id, entry.path, e.activity, objects, attributes)
            )
        if record.finish is not None:
            return self._finish(conn, record.run_id, record.flow_id, record.finish, now, log, epoch=record.epoch)
        self._log(conn, log)
        if record.timer is not None:
            self._x(
                conn,
                "INSERT INTO timers (run_id, path, kind, due_ms) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (run_id, path, kind) DO UPDATE SET due_ms = excluded.due_ms",
                (record.run_id, record.timer.path, record.timer.kind.value, to_ms(record.timer.due)),
            )
        return self._park(conn, record, now) if is_parked else []

    def _park(self, conn: Conn, record: StepRecord, now: int) -> list[RunId]:
        """Register the wait of a parked step; a signal that arrived earlier completes it at once."""
        woken: list[RunId] = []
        wait = record.wait
        if record.child is not None:
            accepted = self._accept(conn, record.child)
            wait = Wait(record.entry.path, "run.finished", accepted.run_id)
            if accepted.is_duplicate:  # the child may have finished already: take its outcome
                woken.extend(self._finished_child(conn, record.run_id, accepted.run_id, now))
            else:
                woken.append(accepted.run_id)
        if wait is not None:
            self._x(
                conn,
                "INSERT INTO waits (run_id, path, signal, key, created_ms) VALUES (?, ?, ?, ?, ?)",
                (record.run_id, wait.path, wait.signal, wait.key, now),
            )
            woken.extend(self._take_pending_signal(conn, record.run_id, wait.signal, wait.key, now))
        return woken

    async def finish_run(
        self, run_id: RunId, flow_id: FlowId, finish: RunFinish, *, epoch: int | None = None
    ) -> list[RunId]:
        """End a run; if it is a child run, complete its parent's waiting `call` step.

        Raises:
            errors.LeaseLost: `epoch` is given and the run was claimed by another worker since.
        """

        def unit(conn: Conn) -> list[RunId]:
            now = to_ms(datetime.now(UTC))
            return self._finish(conn, run_id, flow_id, finish, now, epoch=epoch)

        return await self._write(unit)

    def _fence(
        self, conn: Conn, run_id: RunId, epoch: int | None, now: int, *, release: bool, status: RunStatus | None
    ) -> None:
        """Refuse a write from a worker whose lease on the run was taken over (its epoch is old).

        One UPDATE also sets the run's new `status` (if any) and, with `release`, drops the lease
        (the run parks), so the next wake-up can be claimed by any worker at once.
        """
        if epoch is None:
            if status is not None:
                self._x(conn, "UPDATE runs SET status = ?, updated_ms = ? WHERE id = ?", (status.value, now, run_id))
            return
        sql: LiteralString = (
            "UPDATE runs SET owner = NULL, lease_until_ms = 0, status = COALESCE(?, status), updated_ms = ?"
            " WHERE id = ? AND epoch = ?"
            if release
            else "UPDATE runs SET status = COALESCE(?, status), updated_ms = ? WHERE id = ? AND epoch = ?"
        )
        value = None if status is None else status.value
        if not self._one_row(conn, self._x(conn, sql, (value, now, run_id, epoch)), lambda: _lease_lost(run_id)):
            raise _lease_lost(run_id)

    def _finish(
        self,
        conn: Conn,
        run_id: RunId,
        flow_id: FlowId,
        finish: RunFinish,
        now: int,
        log: list[tuple[Any, ...]] | None = None,
        *,
        epoch: int | None = None,
    ) -> list[RunId]:
        """End a run and release its lease; with `epoch`, only if the writer still holds it (fencing)."""
        sql: LiteralString = (
            "UPDATE runs SET status = ?, output = ?, error = ?, updated_ms = ?, finished_ms = ?, owner = NULL,"
            " lease_until_ms = 0 WHERE id = ?"
        )
        values: tuple[Any, ...] = (
            finish.status.value,
            self._pack(conn, finish.output, "the run output"),
            None if finish.error is None else codec.dumps_text(finish.error),
            now,
            now,
            run_id,
        )
        if epoch is not None:
            sql += " AND epoch = ?"
            values = (*values, epoch)
        updated = self._x(conn, sql, values)
        if epoch is not None and not self._one_row(conn, updated, lambda: _lease_lost(run_id)):
            raise _lease_lost(run_id)
        attrs = None if finish.error is None else codec.dumps_text({"error": finish.error})
        self._log(conn, [*(log or []), (now, f"run.{finish.status.value}", flow_id, run_id, None, None, None, attrs)])
        if not finish.has_parent:
            return []
        payload: Json = {
            "run_id": run_id,
            "status": finish.status.value,
            "output": finish.output,
            "error": finish.error,
        }
        return self._signal(conn, "run.finished", run_id, payload, now, keep_if_unmatched=False)

    async def deliver_signal(self, signal: str, key: str, payload: Json) -> list[RunId]:
        """Complete every wait on (signal, key); keep the signal if no run waits for it yet."""
        now = to_ms(datetime.now(UTC))
        return await self._write(lambda conn: self._signal(conn, signal, key, payload, now, keep_if_unmatched=True))

    def _signal(
        self, conn: Conn, signal: str, key: str, payload: Json, now: int, *, keep_if_unmatched: bool
    ) -> list[RunId]:
        waits = self._x(
            conn,
            "SELECT w.run_id, w.path, r.generation, r.flow_id FROM waits w JOIN runs r ON r.id = w.run_id"
            " WHERE w.signal = ? AND w.key = ?",
            (signal, key),
        ).fetchall()
        if not waits and keep_if_unmatched:
            self._x(
                conn,
                "INSERT INTO pending_signals (signal, key, payload, created_ms) VALUES (?, ?, ?, ?)",
                (signal, key, codec.dumps(payload), now),
            )
        output: Json = {"signal": signal, "key": key, "payload": payload, "timed_out": False}
        for run_id, path, generation, flow_id in waits:
            self._resolve_wait(conn, RunId(run_id), path, generation, flow_id, output, now)
        return [RunId(w[0]) for w in waits]

    def _finished_child(self, conn: Conn, run_id: RunId, child_id: RunId, now: int) -> list[RunId]:
        row = self._x(conn, "SELECT status, output, error FROM runs WHERE id = ?", (child_id,)).fetchone()
        if row is None or not RunStatus(row[0]).is_finished:
            return [child_id]
        payload: Json = {
            "run_id": child_id,
            "status": row[0],
            "output": self._unpack(conn, row[1]),
            "error": None if row[2] is None else codec.loads(row[2]),
        }
        self._x(
            conn,
            "INSERT INTO pending_signals (signal, key, payload, created_ms) VALUES (?, ?, ?, ?)",
            ("run.finished", child_id, codec.dumps(payload), now),
        )
        return []

    def _take_pending_signal(self, conn: Conn, run_id: RunId, signal: str, key: str, now: int) -> list[RunId]:
        row = self._x(
            conn,
            "SELECT id, payload FROM pending_signals WHERE signal = ? AND key = ? ORDER BY id LIMIT 1",
            (signal, key),
        ).fetchone()
        if row is None:
            return []
        self._x(conn, "DELETE FROM pending_signals WHERE id = ?", (row[0],))
        return self._signal_one(conn, run_id, signal, key, codec.loads(bytes(row[1])), now)

    def _signal_one(self, conn: Conn, run_id: RunId, signal: str, key: str, payload: Json, now: int) -> list[RunId]:
        wait = self._x(
            conn,
            "SELECT w.path, r.generation, r.flow_id FROM waits w JOIN runs r ON r.id = w.run_id"
            " WHERE w.run_id = ? AND w.signal = ? AND w.key = ?",
            (run_id, signal, key),
        ).fetchone()
        output: Json = {"signal": signal, "key": key, "payload": payload, "timed_out": False}
        self._resolve_wait(conn, run_id, wait[0], wait[1], wait[2], output, now)
        return [run_id]

    def _resolve_wait(
        self, conn: Conn, run_id: RunId, path: str, generation: int, flow_id: str, output: Json, now: int
    ) -> None:
        attempt = self._next_attempt(conn, run_id, path)
        output_packed = self._pack(conn, output, f"the output of step {path}")
        self._journal((run_id, path, attempt, generation, "wait", "completed", None, output_packed, None, now, now))
        self._x(conn, "DELETE FROM waits WHERE run_id = ? AND path = ?", (run_id, path))
        self._x(conn, "DELETE FROM timers WHERE run_id = ? AND path = ?", (run_id, path))
        self._requeue(conn, run_id, now)
        self._log(conn, [(now, "step.completed", flow_id, run_id, path, None, None, None)])

    def _requeue(self, conn: Conn, run_id: RunId, now: int) -> None:
        """Make a parked run runnable by any worker (no owner) and wake idle workers."""
        self._x(
            conn,
            "UPDATE runs SET status = 'queued', owner = NULL, lease_until_ms = 0, updated_ms = ? WHERE id = ?",
            (now, run_id),
        )
        self._notify_runnable(conn)

    def _next_attempt(self, conn: Conn, run_id: RunId, path: str) -> int:
        self._appends.flush(conn)  # the journal rows of this batch must be visible to the read
        row = self._x(
            conn, "SELECT COALESCE(MAX(attempt), 0) FROM journal WHERE run_id = ? AND path = ?", (run_id, path)
        ).fetchone()
        return int(row[0]) + 1

    async def claim_due_timers(self, now: datetime, limit: int) -> list[DueTimer]:
        """Consume due timers and queue their runs; a timed-out wait is journaled as timed out."""
        return await self._write(lambda conn: self._claim_timers(conn, to_ms(now), limit))

    def _claim_timers(self, conn: Conn, now: int, limit: int) -> list[DueTimer]:
        rows = self._x(
            conn,
            "SELECT t.run_id, t.path, t.kind, r.generation, r.flow_id FROM timers t JOIN runs r ON r.id = t.run_id"  # noqa: S608 - constants only
            " WHERE t.due_ms <= ? ORDER BY t.due_ms LIMIT ?" + self._SKIP_LOCKED_TIMERS,
            (now, limit),
        ).fetchall()
        due = []
        for run_id, path, kind, generation, flow_id in rows:
            self._x(conn, "DELETE FROM timers WHERE run_id = ? AND path = ? AND kind = ?", (run_id, path, kind))
            timer_kind = TimerKind(kind)
            if timer_kind is TimerKind.TIMEOUT:
                output: Json = {"timed_out": True, "payload": None}
                self._resolve_wait(conn, RunId(run_id), path, generation, flow_id, output, now)
            elif timer_kind is TimerKind.WAKE:
                self._resolve_wait(conn, RunId(run_id), path, generation, flow_id, {"woke_at_ms": now}, now)
            else:
                self._requeue(conn, RunId(run_id), now)
            due.append(DueTimer(RunId(run_id), path, timer_kind))
        return due

    async def replay_run(self, run_id: RunId) -> None:
        """Queue a failed or dead-lettered run again; it continues from the failed step."""

        def unit(conn: Conn) -> None:
            row = self._x(conn, "SELECT status, flow_id FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise errors.NotFound(f"run {run_id} does not exist")
            if row[0] not in (RunStatus.DEAD_LETTER.value, RunStatus.FAILED.value):
                raise errors.Conflict(f"run {run_id} is {row[0]}; only failed or dead_letter runs can be replayed")
            now = to_ms(datetime.now(UTC))
            self._x(
                conn,
                "UPDATE runs SET status = 'queued', generation = generation + 1, error = NULL,"
                " finished_ms = NULL, owner = NULL, lease_until_ms = 0, updated_ms = ? WHERE id = ?",
                (now, run_id),
            )
            self._notify_runnable(conn)
            self._log(conn, [(now, "run.replayed", row[1], run_id, None, None, None, None)])

        await self._write(unit)

    async def upsert_schedule(self, flow_id: FlowId, spec: str, next_due: datetime) -> datetime:
        """Register a flow's schedule; keep its next tick if the spec is unchanged.

        Returns:
            The next tick that will fire.
        """

        def unit(conn: Conn) -> datetime:
            row = self._x(conn, "SELECT spec, next_ms FROM schedules WHERE flow_id = ?", (flow_id,)).fetchone()
            if row is not None and row[0] == spec:
                return from_ms(row[1])  # type: ignore[return-value]  # NOT NULL column
            self._x(
                conn,
                "INSERT INTO schedules (flow_id, spec, next_ms) VALUES (?, ?, ?)"
                " ON CONFLICT (flow_id) DO UPDATE SET spec = excluded.spec, next_ms = excluded.next_ms",
                (flow_id, spec, to_ms(next_due)),
            )
            return next_due

        return await self._write(unit)

    async def remove_schedules_except(self, flow_ids: list[str]) -> None:
        """Forget schedules of flows that no longer have a schedule trigger."""

        def unit(conn: Conn) -> None:
            for (flow_id,) in self._x(conn, "SELECT flow_id FROM schedules").fetchall():
                if flow_id not in flow_ids:
                    self._x(conn, "DELETE FROM schedules WHERE flow_id = ?", (flow_id,))

        await self._write(unit)

    async def fire_schedule(
        self, flow_id: FlowId, tick: datetime, next_due: datetime, event: NewEvent | None
    ) -> Accepted | None:
        """Accept the event of one tick and move the schedule to the next tick, together.

        With no event (the flow's `when` is false for this tick) only the schedule moves.
        Returns None if another process fired this tick already, or there was no event.
        """

        def unit(conn: Conn) -> Accepted | None:
            cur = self._x(
                conn,
                "UPDATE schedules SET next_ms = ? WHERE flow_id = ? AND next_ms = ?",
                (to_ms(next_due), flow_id, to_ms(tick)),
            )
            if cur.rowcount != 1 or event is None:
                return None
            return self._accept(conn, event)

        return await self._write(unit)

    async def add_api_token(self, name: str, token_hash: str) -> None:
        def unit(conn: Conn) -> None:
            self._x(
                conn,
                "INSERT INTO api_tokens (id, name, hash, created_ms) VALUES (?, ?, ?, ?)",
                (ids.new_id("tok"), name, token_hash, to_ms(datetime.now(UTC))),
            )

        await self._write(unit)


def _lease_lost(run_id: RunId) -> errors.LeaseLost:
    return errors.LeaseLost(f"run {run_id} was taken over by another worker; this result is not recorded")


class _SeenBefore(Exception):
    """A pipelined insert met a dedupe key already stored: the batch is re-run unpipelined, which answers it."""
