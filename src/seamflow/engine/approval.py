"""An approval's decisions, inside one run transaction: open a level, decide a task, remind, escalate.

An approval is a wait whose signal is a decided approval: the `approval` step parks its run on
the signal ('approval', approval id) and opens the approval in the same commit (`open_approval`:
the first level's tasks, its reminder and escalation timers, and the event-log rows). Each
decision (`decide`) locks the approval, refuses a task that is not pending (409) or not the
decider's (403), and then either leaves the level open (more approvals needed), opens the next
level, or settles the approval — which delivers the signal, so the run resumes with the
outcome as the step's output. A `return` sends the request back to the requester (an `amend`
task); once they resubmit it (`resubmit`, with their changes), the level that returned it opens
again with new tasks (a new round: approvals given before the return do not count). Tasks meant
for someone away go to their delegate (`delegation.py`). Every task created, reminder,
escalation, delegation and decision is a row in the event log: who, when, what, on which approval.

`plan` (JSON, kept with the approval) holds the levels with their assignees resolved from the
directory when the step began: `{"levels": [{"name", "mode", "needed", "assignees"}],
"due_s", "remind_s", "escalate", "managers": {login: manager}}`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from seamflow import errors, ids, store
from seamflow.engine.delegation import resolve_assignee
from seamflow.engine.notice_queue import queue_notice
from seamflow.ids import FlowId, Json, RunId

__all__ = [
    "DECISIONS",
    "SIGNAL",
    "Decided",
    "Deliver",
    "Witness",
    "decide",
    "escalate",
    "open_approval",
    "remind",
    "resubmit",
    "task_json",
    "withdraw",
]

SIGNAL = "approval"
"""The signal an approval step waits for; its key is the approval's id."""
DECISIONS = ("approve", "reject", "return")
SYSTEM = "seamflow"
"""Who decided when a due approval decides itself (`escalate: approve|reject`)."""

Deliver = Callable[[store.RunTx, str, str, Json, datetime], list[RunId]]
"""`journal.deliver_signal` without its keyword: completes the approval step's wait."""

Witness = Callable[[store.RunTx, bool], object]
"""Called in a decision's transaction once it is applied, with whether it settled the approval:
what it writes (the decision's audit entry) commits with the decision, or neither does."""


@dataclass(frozen=True, slots=True)
class Decided:
    """A decision as committed: the task as it is now, and whether the approval was settled."""

    task: store.StoredTask
    woken: list[RunId]
    """The run, if the decision settled its approval (it is runnable again); else empty."""

    @property
    def is_settled(self) -> bool:
        """True if the decision settled the approval (its run resumes)."""
        return bool(self.woken)


def open_approval(tx: store.RunTx, run_id: RunId, flow_id: FlowId, approval: store.NewApproval, at: datetime) -> None:
    """Open an approval with its first level's tasks (called with the step's wait, same commit)."""
    tx.insert_approval(run_id, flow_id, approval, at)
    row = tx.lock_approval(approval.id)
    assert row is not None  # inserted just above
    _open_level(tx, row, 0, at, 0)


def decide(
    tx: store.RunTx,
    task_id: str,
    who: str,
    decision: str,
    comment: str | None,
    form: Json,
    at: datetime,
    deliver: Deliver,
) -> Decided:
    """Apply one decision; return the task as decided, and the run if the approval was settled
    (it is runnable again).

    Raises:
        errors.NotFound: there is no such task.
        errors.Forbidden: `who` is not the task's assignee (`approval.not_assignee`).
        errors.Conflict: the task or its level was decided already (`approval.already_decided`).
    """
    if decision not in DECISIONS:
        raise errors.InvalidInput(f"decision: got {errors.redact(decision)}; expected one of {', '.join(DECISIONS)}")
    found = tx.read_task(task_id)
    if found is None:
        raise errors.NotFound(f"task {task_id} does not exist", code="approval.task_not_found")
    row = tx.lock_approval(found.approval_id)  # serialises deciders of this approval
    task = tx.read_task(task_id)  # as it is under the lock
    assert row is not None and task is not None  # approvals and tasks are not deleted while open
    _check_pending(task, row, who)
    if task.kind != "decide":
        raise errors.InvalidInput(
            f"task {task_id} asks the requester to amend the request; expected a resubmission"
            f" (POST /api/v1/tasks/{task_id}/resubmit) or a withdrawal, not a decision",
            code="approval.resubmit_expected",
        )
    _check_form(_plan(row).get("form"), form, task_id)
    tx.decide_task(task_id, decision, comment, form, at)
    _log(
        tx,
        row,
        at,
        "task.decided",
        task_id,
        who=who,
        level=task.level,
        decision=decision,
        on_behalf_of=task.on_behalf_of,
    )
    tasks = tx.approval_tasks(row.id)  # read once, as decided: the level's count and the outcome use it
    decided = next(t for t in tasks if t.id == task_id)
    return Decided(decided, _after_decision(tx, row, task.level, decision, at, deliver, tasks=tasks))


def resubmit(tx: store.RunTx, task_id: str, who: str, changes: Json, comment: str | None, at: datetime) -> None:
    """The requester resubmits a returned request with `changes`; the level that returned it opens again.

    Raises:
        errors.NotFound: there is no such task.
        errors.Forbidden: `who` is not the requester this amend task is for.
        errors.Conflict: the task was resubmitted already, or the approval was withdrawn.
        errors.InvalidInput: the task is not an amend task.
    """
    found = tx.read_task(task_id)
    if found is None:
        raise errors.NotFound(f"task {task_id} does not exist", code="approval.task_not_found")
    row = tx.lock_approval(found.approval_id)
    task = tx.read_task(task_id)
    assert row is not None and task is not None  # approvals and tasks are not deleted while open
    _check_pending(task, row, who)
    if task.kind != "amend":
        raise errors.InvalidInput(
            f"task {task_id} asks for a decision; only a returned request's amend task can be resubmitted",
            code="approval.not_returned",
        )
    if not isinstance(changes, dict | None):
        raise errors.InvalidInput(f"changes of task {task_id}: got {errors.redact(changes)}; expected a JSON object")
    tx.decide_task(task_id, "resubmit", comment, changes, at)
    if changes:
        data = task.data if isinstance(task.data, dict) else {"request": task.data}
        merged = {**(data.get("changes") or {}), **changes}  # type: ignore[dict-item]  # changes are objects
        tx.amend_approval(row.id, {**data, "changes": merged}, at)
    _log(tx, row, at, "approval.resubmitted", task_id, who=who, level=task.level)
    _open_level(tx, row, task.level, at, task.round + 1)


def withdraw(tx: store.RunTx, task_id: str, who: str, at: datetime, deliver: Deliver) -> list[RunId]:
    """The requester withdraws the approval of a task; its run resumes with the decision `withdrawn`.

    Raises:
        errors.NotFound: there is no such task.
        errors.Forbidden: `who` is not the approval's requester.
        errors.Conflict: the approval was settled already.
    """
    found = tx.read_task(task_id)
    row = None if found is None else tx.lock_approval(found.approval_id)
    if row is None:
        raise errors.NotFound(f"task {task_id} does not exist", code="approval.task_not_found")
    if row.requester != who:
        raise errors.Forbidden(f"only the requester may withdraw approval {row.id}", code="approval.not_requester")
    if row.status != "open":
        raise errors.Conflict(f"approval {row.id} is {row.status} already", code="approval.already_decided")
    _log(tx, row, at, "approval.withdrawn", None, who=who, level=row.level)
    return _settle(tx, row, "withdrawn", at, deliver)


def remind(tx: store.RunTx, run_id: RunId, path: str, at: datetime) -> None:
    """The open level's reminder is due: log a reminder per pending task (notifications read the log)."""
    row = tx.find_approval(run_id, path)
    if row is None or row.status != "open":
        return
    for task in _pending(tx, row):
        _log(tx, row, at, "task.reminded", task.id, who=task.assignee, level=task.level)
        queue_notice(tx, row, "reminded", task.id, task.assignee, at)


def escalate(tx: store.RunTx, run_id: RunId, path: str, at: datetime, deliver: Deliver) -> list[RunId]:
    """The open level is overdue: ask each pending assignee's manager, or decide the level as planned."""
    row = tx.find_approval(run_id, path)
    if row is None or row.status != "open":
        return []
    plan = _plan(row)
    how = plan.get("escalate")
    pending = _pending(tx, row)
    if how in ("approve", "reject"):
        for task in pending:
            tx.decide_task(task.id, how, "decided when due", None, at)
            _log(tx, row, at, "task.escalated", task.id, who=task.assignee, level=task.level, decision=how)
        return _after_decision(tx, row, row.level, str(how), at, deliver, needed_override=True)
    managers: dict[str, Any] = plan.get("managers") or {}
    delegations = tx.read_delegations()
    for task in pending:
        manager = managers.get(task.on_behalf_of or task.assignee)
        if manager and manager != row.requester:
            who, behalf = resolve_assignee(delegations, manager, at, row.requester)
            new_id = ids.new_id("tsk")
            tx.insert_task(
                store.NewTask(new_id, row.id, row.level, who, None, on_behalf_of=behalf, round=task.round), at
            )
            _log(
                tx,
                row,
                at,
                "task.escalated",
                new_id,
                who=who,
                level=row.level,
                escalated_from=task.assignee,
                on_behalf_of=behalf,
            )
            queue_notice(tx, row, "escalated", new_id, who, at)
    return []


def task_json(t: store.StoredTask) -> dict[str, Json]:
    """A task as the API and `seamflow tasks --json` show it (levels counted from 1)."""
    return {
        "id": t.id,
        "approval_id": t.approval_id,
        "run_id": t.run_id,
        "flow_id": t.flow_id,
        "step": t.path,
        "subject": t.subject,
        "requester": t.requester,
        "level": t.level + 1,
        "kind": t.kind,
        "assignee": t.assignee,
        "on_behalf_of": t.on_behalf_of,
        "status": t.status,
        "decision": t.decision,
        "comment": t.comment,
        "form": t.form,
        "created": t.created.isoformat(),
        "due": None if t.due is None else t.due.isoformat(),
        "decided": None if t.decided is None else t.decided.isoformat(),
        "data": t.data,
    }


# -- inside: levels and outcome -------------------------------------------------------------
def _after_decision(
    tx: store.RunTx,
    row: store.ApprovalRow,
    level: int,
    decision: str,
    at: datetime,
    deliver: Deliver,
    *,
    needed_override: bool = False,
    tasks: list[store.StoredTask] | None = None,
) -> list[RunId]:
    """The level's or approval's next state after a decision; `tasks` are the approval's tasks as
    they are after it (read here when not given)."""
    if tasks is None:
        tasks = tx.approval_tasks(row.id)
    if decision == "reject":
        return _settle(tx, row, "rejected", at, deliver, tasks)
    if decision == "return":
        _return_to_requester(tx, row, level, _round(tasks), at)
        return []
    spec = _plan(row)["levels"][level]
    now = _round(tasks)
    approved = sum(
        1 for t in tasks if t.level == level and t.round == now and t.kind == "decide" and t.decision == "approve"
    )
    if approved < int(spec["needed"]) and not needed_override:
        return []
    tx.close_tasks(row.id, at)
    if level + 1 < len(_plan(row)["levels"]):
        _open_level(tx, row, level + 1, at, now)
        return []
    return _settle(tx, row, "approved", at, deliver, tasks)


def _return_to_requester(tx: store.RunTx, row: store.ApprovalRow, level: int, round_: int, at: datetime) -> None:
    """Close the level and ask the requester to amend and resubmit; the level's timers stop meanwhile."""
    tx.close_tasks(row.id, at)
    tx.delete_timers(row.run_id, row.path, store.TimerKind.REMIND)
    tx.delete_timers(row.run_id, row.path, store.TimerKind.ESCALATE)
    task_id = ids.new_id("tsk")
    tx.insert_task(store.NewTask(task_id, row.id, level, row.requester, None, kind="amend", round=round_), at)
    _log(tx, row, at, "approval.returned", task_id, who=row.requester, level=level)
    queue_notice(tx, row, "returned", task_id, row.requester, at)


def _round(tasks: list[store.StoredTask]) -> int:
    """How many times the request was resubmitted (the round of the tasks now open)."""
    return sum(1 for t in tasks if t.kind == "amend" and t.status == "decided")


def _open_level(tx: store.RunTx, row: store.ApprovalRow, level: int, at: datetime, round_: int) -> None:
    plan = _plan(row)
    spec = plan["levels"][level]
    due = _after(at, plan.get("due_s"))
    tx.update_approval(row.id, level, "open", at)
    delegations = tx.read_delegations()
    for login in spec["assignees"]:
        task_id = ids.new_id("tsk")
        who, behalf = resolve_assignee(delegations, str(login), at, row.requester)
        tx.insert_task(store.NewTask(task_id, row.id, level, who, due, on_behalf_of=behalf, round=round_), at)
        _log(
            tx, row, at, "task.created", task_id, who=who, level=level, level_name=spec.get("name"), on_behalf_of=behalf
        )
        queue_notice(tx, row, "created", task_id, who, at)
        if behalf is not None:
            _log(tx, row, at, "task.delegated", task_id, who=who, level=level, on_behalf_of=behalf)
    if (remind_at := _after(at, plan.get("remind_s"))) is not None:
        tx.set_timer(row.run_id, store.Timer(row.path, store.TimerKind.REMIND, remind_at))
    if due is not None and plan.get("escalate"):
        tx.set_timer(row.run_id, store.Timer(row.path, store.TimerKind.ESCALATE, due))


def _settle(
    tx: store.RunTx,
    row: store.ApprovalRow,
    outcome: str,
    at: datetime,
    deliver: Deliver,
    known: list[store.StoredTask] | None = None,
) -> list[RunId]:
    """Close the approval with `outcome` and hand its output to the run; `known` are its tasks as
    they are now (closing the pending ones changes none of the decided ones that the output uses)."""
    tx.close_tasks(row.id, at)
    tx.update_approval(row.id, row.level, outcome, at)
    # in the order things happened: a return's round before the resubmitted one (clocks of processes may differ)
    tasks = sorted(
        (t for t in (tx.approval_tasks(row.id) if known is None else known) if t.status == "decided"),
        key=lambda t: (t.round, t.level, t.created, t.id),
    )
    levels = _plan(row)["levels"]
    decisions: list[Json] = [
        {
            "level": t.level + 1,
            "name": levels[t.level].get("name"),
            "who": t.assignee,
            "on_behalf_of": t.on_behalf_of,
            "when": _iso(t.decided),
            "decision": t.decision,
            "comment": t.comment,
            "form": t.form,
        }
        for t in tasks
        if t.kind == "decide"
    ]
    amendments: list[Json] = [
        {"level": t.level + 1, "when": _iso(t.decided), "comment": t.comment, "changes": t.form}
        for t in tasks
        if t.kind == "amend"
    ]
    changes: dict[str, Json] = {}
    for t in tasks:
        if t.kind == "amend" and isinstance(t.form, dict):
            changes.update(t.form)
    output: Json = {
        "decision": outcome,
        "approval_id": row.id,
        "requester": row.requester,
        "subject": row.subject,
        "levels": decisions,
        "amendments": amendments,
        "changes": changes or None,
    }
    _log(tx, row, at, "approval.completed", None, decision=outcome)
    last = max(tasks, key=lambda t: (t.decided or at, t.id), default=None)
    queue_notice(tx, row, "completed", None if last is None else last.id, row.requester, at, outcome=outcome)
    return deliver(tx, SIGNAL, row.id, output, at)


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _pending(tx: store.RunTx, row: store.ApprovalRow) -> list[store.StoredTask]:
    return [
        t for t in tx.approval_tasks(row.id) if t.status == "pending" and t.level == row.level and t.kind == "decide"
    ]


def _check_pending(task: store.StoredTask, row: store.ApprovalRow, who: str) -> None:
    if task.assignee != who:
        raise errors.Forbidden(f"task {task.id} is assigned to someone else", code="approval.not_assignee")
    if task.status != "pending" or row.status != "open":
        raise errors.Conflict(
            f"task {task.id} was already decided ({_settled(task, row)}); nothing was changed",
            code="approval.already_decided",
        )


def _plan(row: store.ApprovalRow) -> dict[str, Any]:
    assert isinstance(row.plan, dict)
    return row.plan


def _after(at: datetime, seconds: object) -> datetime | None:
    """`at` plus a plan's seconds (stored JSON numbers come back as int, float or Decimal)."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float | Decimal):
        return None
    return at + timedelta(seconds=float(seconds))


def _check_form(schema: object, form: Json, task_id: str) -> None:
    """The form data against the step's JSON Schema: a 422 that says where and what was expected."""
    if not isinstance(schema, dict) or form is None:
        return
    import jsonschema  # type: ignore[import-untyped]  # only for steps with a form

    problems = sorted(jsonschema.validators.validator_for(schema)(schema).iter_errors(form), key=str)
    if problems:
        first = problems[0]
        where = "form" + "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in first.absolute_path)
        raise errors.PayloadInvalid(
            f"{where} of task {task_id}: {errors.redact_text(first.message, limit=300)}; expected data matching"
            " the approval's form",
            code="approval.form_invalid",
            http_status=422,
        )


def _settled(task: store.StoredTask, row: store.ApprovalRow) -> str:
    if task.status == "decided":
        return f"{task.decision} by {task.assignee}"
    return f"the level or approval was settled: {row.status}" if row.status != "open" else "its level was settled"


def _log(
    tx: store.RunTx, row: store.ApprovalRow, at: datetime, kind: str, task_id: str | None, **attributes: Json
) -> None:
    objects: Json = {"approval": row.id, **({"task": task_id} if task_id else {})}
    attributes["subject"] = row.subject
    attributes["requester"] = row.requester
    tx.append_log([store.LogRow(at, kind, row.flow_id, row.run_id, row.path, kind, objects, attributes)])
