"""The journal: every decision about a run's state, in one place.

A run's life, told through this module: an event is **accepted** (`accept`: the event, its
queued run and the outcomes of its leading transforms commit together; the same dedupe key
twice gives the first run). Each step attempt is **recorded** (`record_step`) with its
consequences in one commit: the next step simply follows; a retry sets a timer and parks the
run; a `wait` registers a wait (and a timeout timer) and parks it; a `call` accepts a child
run and parks the parent on the child's `run.finished` signal; the last step (or a failure)
**finishes** the run (`finish`), which signals a waiting parent. A **signal** (`deliver_signal`)
or a due **timer** (`fire_timers`) completes a wait — journaled as the wait step's output —
and makes the run runnable again; a signal nobody waits for yet is kept for the run that will.
A failed or dead-lettered run can be **replayed** (`replay`) in a new generation.

The functions below run inside one store transaction (`store.RunTx`): they decide, the store
only inserts, updates and deletes what it is told. Every write that carries a lease epoch is
fenced: a worker that lost the run cannot commit over its new owner.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol, TypeVar

from seamflow import clock, errors, ids, store
from seamflow.engine import approval
from seamflow.engine.delegation import set_delegation
from seamflow.ids import EventId, FlowId, Json, RunId

__all__ = ["Journal", "RunStore", "accept", "deliver_signal", "finish", "fire_timers", "record_step", "replay"]

T = TypeVar("T")


class RunStore(Protocol):
    """What the journal needs of a store: one transaction at a time over runs."""

    async def transact(self, unit: Callable[[store.RunTx], T]) -> T:
        """Run `unit` in the next transaction; return its result once committed."""
        ...


class Journal:
    """The journal's operations, each one committed transaction.

    Args:
        db: the store the journal writes to.
    """

    def __init__(self, db: RunStore) -> None:
        self._db = db

    async def accept(self, event: store.NewEvent) -> store.Accepted:
        """Commit an event and its queued run; a seen dedupe key answers with the first run."""
        return await self._db.transact(lambda tx: accept(tx, event))

    async def record_step(self, record: store.StepRecord) -> list[RunId]:
        """Journal a step attempt with its consequences; return runs that became runnable.

        Raises:
            errors.LeaseLost: the record's epoch is stale (another worker claimed the run).
        """
        return await self._db.transact(lambda tx: record_step(tx, record))

    async def finish(
        self, run_id: RunId, flow_id: FlowId, outcome: store.RunFinish, *, epoch: int | None = None
    ) -> list[RunId]:
        """End a run; return the parent run if it became runnable.

        Raises:
            errors.LeaseLost: `epoch` is given and the run was claimed by another worker since.
        """
        return await self._db.transact(lambda tx: finish(tx, run_id, flow_id, outcome, clock.now(), epoch=epoch))

    async def deliver_signal(self, signal: str, key: str, payload: Json) -> list[RunId]:
        """Complete every wait on (signal, key), or keep the signal for a run that will wait for it."""
        return await self._db.transact(
            lambda tx: deliver_signal(tx, signal, key, payload, clock.now(), keep_if_unmatched=True)
        )

    async def fire_timers(self, now: datetime, limit: int) -> list[store.DueTimer]:
        """Consume due timers: complete timed waits and timeouts, queue retries."""
        return await self._db.transact(lambda tx: fire_timers(tx, now, limit))

    async def decide_task(
        self,
        task_id: str,
        who: str,
        decision: str,
        comment: str | None,
        form: Json,
        witness: approval.Witness | None = None,
    ) -> approval.Decided:
        """Apply a decision on a task, with `witness` (its audit entry) in the same commit.

        Raises:
            errors.NotFound, errors.Forbidden, errors.Conflict: see `approval.decide`.
        """

        def unit(tx: store.RunTx) -> approval.Decided:
            decided = approval.decide(tx, task_id, who, decision, comment, form, clock.now(), _deliver)
            if witness is not None:
                witness(tx, decided.is_settled)
            return decided

        return await self._db.transact(unit)

    async def withdraw(self, task_id: str, who: str) -> list[RunId]:
        """The requester withdraws the approval of a task; return its run (runnable again)."""
        return await self._db.transact(lambda tx: approval.withdraw(tx, task_id, who, clock.now(), _deliver))

    async def resubmit(self, task_id: str, who: str, changes: Json, comment: str | None) -> None:
        """The requester resubmits a returned request; the level that returned it opens again.

        Raises:
            errors.NotFound, errors.Forbidden, errors.Conflict, errors.InvalidInput: see `approval.resubmit`.
        """
        await self._db.transact(lambda tx: approval.resubmit(tx, task_id, who, changes, comment, clock.now()))

    async def delegate(self, delegation: store.Delegation, *, hand_over: bool) -> list[str]:
        """Set a user's delegation (replacing theirs); return the pending tasks handed over.

        Raises:
            errors.InvalidInput, errors.Conflict: see `delegation.set_delegation`.
        """
        return await self._db.transact(lambda tx: set_delegation(tx, delegation, hand_over=hand_over, at=clock.now()))

    async def end_delegation(self, login: str) -> bool:
        """End a user's delegation; False if they had none."""
        return await self._db.transact(lambda tx: tx.clear_delegation(login))

    async def replay(self, run_id: RunId) -> None:
        """Queue a failed or dead-lettered run again; it continues from its failed step.

        Raises:
            errors.NotFound: there is no such run.
            errors.Conflict: the run is not failed or dead-lettered.
        """
        await self._db.transact(lambda tx: replay(tx, run_id, clock.now()))

    async def fire_schedule(
        self, flow_id: FlowId, tick: datetime, next_due: datetime, event: store.NewEvent | None
    ) -> store.Accepted | None:
        """Accept one tick's event and move the schedule to its next tick, together.

        Returns None if another process fired this tick already, or there was no event (the
        flow's `when` is false for this tick: only the schedule moves).
        """

        def unit(tx: store.RunTx) -> store.Accepted | None:
            if not tx.advance_schedule(flow_id, tick, next_due) or event is None:
                return None
            return accept(tx, event)

        return await self._db.transact(unit)


# -- inside one transaction ------------------------------------------------------------
def accept(tx: store.RunTx, event: store.NewEvent) -> store.Accepted:
    """Store the event and create its queued run, unless its flow has seen the dedupe key."""
    event_id = EventId(ids.new_id("evt"))
    run_id = event.run_id or RunId(ids.new_id("run"))
    at = event.received
    if not tx.insert_event(event_id, event.flow_id, event.trigger, event.dedupe_key, event.body, at):
        assert event.dedupe_key is not None  # only a dedupe key can collide
        first_run, first_event = tx.find_first_run(event.flow_id, event.dedupe_key)
        return store.Accepted(first_run, first_event, is_duplicate=True)
    tx.insert_run(
        store.NewRun(
            run_id, event.flow_id, event.flow_version, event_id, at, event.parent_run_id, event.parent_path, event.lease
        )
    )
    log = [
        store.LogRow(
            at, "run.queued", event.flow_id, run_id, attributes={"trigger": event.trigger, "event_id": event_id}
        )
    ]
    for entry in event.journal:
        tx.append_journal(run_id, entry)
        log.append(store.LogRow(entry.finished, "step.completed", event.flow_id, run_id, entry.path))
    tx.append_log(log)
    return store.Accepted(run_id, event_id, is_duplicate=False)


def record_step(tx: store.RunTx, record: store.StepRecord) -> list[RunId]:
    """Journal a step attempt and commit its consequences: a timer, a wait, a child run, the run's end."""
    entry = record.entry
    at = entry.finished
    is_parked = record.timer is not None or record.wait is not None or record.child is not None
    if record.finish is None:  # a finish is fenced by its own write
        status = store.RunStatus.WAITING if is_parked else record.run_status
        tx.update_run(record.run_id, at, epoch=record.epoch, status=status, release=is_parked)
    tx.append_journal(record.run_id, entry)
    log = [store.LogRow(at, f"step.{entry.status.value}", record.flow_id, record.run_id, entry.path)]
    if (e := record.emit) is not None:
        log.append(
            store.LogRow(
                e.at, "business", record.flow_id, record.run_id, entry.path, e.activity, e.objects, e.attributes
            )
        )
    if record.finish is not None:
        return finish(tx, record.run_id, record.flow_id, record.finish, at, log, epoch=record.epoch)
    tx.append_log(log)
    if record.timer is not None:
        tx.set_timer(record.run_id, record.timer)
    if record.approval is not None:
        approval.open_approval(tx, record.run_id, record.flow_id, record.approval, at)
    return _park(tx, record, at) if is_parked else []


def _park(tx: store.RunTx, record: store.StepRecord, at: datetime) -> list[RunId]:
    """Register what a parked step waits for; a signal that arrived earlier completes it at once."""
    woken: list[RunId] = []
    wait = record.wait
    if record.child is not None:
        child = accept(tx, record.child)
        wait = store.Wait(record.entry.path, "run.finished", child.run_id)
        if not child.is_duplicate:
            woken.append(child.run_id)
        elif not _keep_end_of_finished_child(tx, child.run_id, at):
            woken.append(child.run_id)  # the child of an earlier attempt is still unfinished: let it go on
    if wait is not None:
        tx.insert_wait(record.run_id, wait, at)
        if (pending := tx.take_pending_signal(wait.signal, wait.key)) is not None:
            parked = tx.find_wait(record.run_id, wait.signal, wait.key)
            assert parked is not None  # inserted just above
            _resolve_wait(tx, parked, _signal_output(wait.signal, wait.key, pending.payload), at)
            woken.append(record.run_id)
    return woken


def _keep_end_of_finished_child(tx: store.RunTx, child_id: RunId, at: datetime) -> bool:
    """If a child run has finished, keep its `run.finished` signal for the parent's new wait."""
    end = tx.run_end(child_id)
    if end is None or not end.status.is_finished:
        return False
    tx.keep_signal("run.finished", child_id, _child_payload(child_id, end.status, end.output, end.error), at)
    return True


def finish(
    tx: store.RunTx,
    run_id: RunId,
    flow_id: FlowId,
    outcome: store.RunFinish,
    at: datetime,
    log: list[store.LogRow] | None = None,
    *,
    epoch: int | None = None,
) -> list[RunId]:
    """End a run and drop its lease; a parent waiting for it gets its `run.finished` signal."""
    tx.end_run(run_id, outcome, at, epoch=epoch)
    attributes: Json = None if outcome.error is None else {"error": outcome.error}
    tx.append_log(
        [*(log or []), store.LogRow(at, f"run.{outcome.status.value}", flow_id, run_id, attributes=attributes)]
    )
    if not outcome.has_parent:
        return []
    payload = _child_payload(run_id, outcome.status, outcome.output, outcome.error)
    return deliver_signal(tx, "run.finished", run_id, payload, at, keep_if_unmatched=False)


def deliver_signal(
    tx: store.RunTx, signal: str, key: str, payload: Json, at: datetime, *, keep_if_unmatched: bool
) -> list[RunId]:
    """Complete every wait on (signal, key); with `keep_if_unmatched`, keep a signal nobody waits for."""
    waiting = tx.find_waits(signal, key)
    if not waiting and keep_if_unmatched:
        tx.keep_signal(signal, key, payload, at)
    output = _signal_output(signal, key, payload)
    for parked in waiting:
        _resolve_wait(tx, parked, output, at)
    return [parked.run_id for parked in waiting]


def fire_timers(tx: store.RunTx, now: datetime, limit: int) -> list[store.DueTimer]:
    """Consume due timers: a timed wait completes, a timeout completes its wait as timed out, a retry requeues."""
    fired = []
    for timer in tx.take_due_timers(now, limit):
        parked = timer.run
        tx.delete_timers(parked.run_id, parked.path, timer.kind)
        if timer.kind is store.TimerKind.TIMEOUT:
            _resolve_wait(tx, parked, {"timed_out": True, "payload": None}, now)
        elif timer.kind is store.TimerKind.WAKE:
            _resolve_wait(tx, parked, {"woke_at_ms": int(now.timestamp() * 1000)}, now)
        elif timer.kind is store.TimerKind.REMIND:
            approval.remind(tx, parked.run_id, parked.path, now)
        elif timer.kind is store.TimerKind.ESCALATE:
            approval.escalate(tx, parked.run_id, parked.path, now, _deliver)
        else:
            tx.make_runnable(parked.run_id, now)
        fired.append(store.DueTimer(parked.run_id, parked.path, timer.kind))
    return fired


def replay(tx: store.RunTx, run_id: RunId, at: datetime) -> None:
    """Queue a failed or dead-lettered run again in a new generation."""
    end = tx.run_end(run_id)
    if end is None:
        raise errors.NotFound(f"run {run_id} does not exist")
    if end.status not in (store.RunStatus.DEAD_LETTER, store.RunStatus.FAILED):
        raise errors.Conflict(f"run {run_id} is {end.status.value}; only failed or dead_letter runs can be replayed")
    tx.restart_run(run_id, at)
    tx.append_log([store.LogRow(at, "run.replayed", end.flow_id, run_id)])


def _resolve_wait(tx: store.RunTx, parked: store.ParkedRun, output: Json, at: datetime) -> None:
    """Journal a wait step as completed with `output`, drop its wait and timers, make the run runnable."""
    run_id, path = parked.run_id, parked.path
    attempt = tx.next_attempt(run_id, path)
    status = store.StepStatus.COMPLETED
    tx.append_journal(
        run_id, store.JournalEntry(path, attempt, parked.generation, "wait", status, None, output, None, at, at)
    )
    tx.delete_wait(run_id, path)
    tx.delete_timers(run_id, path)
    tx.make_runnable(run_id, at)
    tx.append_log([store.LogRow(at, "step.completed", parked.flow_id, run_id, path)])


def _deliver(tx: store.RunTx, signal: str, key: str, payload: Json, at: datetime) -> list[RunId]:
    return deliver_signal(tx, signal, key, payload, at, keep_if_unmatched=False)


def _signal_output(signal: str, key: str, payload: Json) -> Json:
    return {"signal": signal, "key": key, "payload": payload, "timed_out": False}


def _child_payload(run_id: RunId, status: store.RunStatus, output: Json, error: Json) -> Json:
    return {"run_id": run_id, "status": status.value, "output": output, "error": error}
