"""Delegation while someone is away: whose tasks go to whom, when, and handing over what is pending.

A user (or an admin for them) names a delegate for a period. A task created for them in that
period goes to the delegate and records on whose behalf (`on_behalf_of`); a delegate who is away
too passes it on, along the chain, which never loops: setting a delegation that would close a
loop is refused, and resolving stops at a login seen before. A chain never ends at the
requester (self-approval): it stops one link earlier. Pending tasks may be handed over when the
delegation is set (the delegate is notified of them as of new tasks). Every task that changes
hands is a `task.delegated` row of the event log.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from seamflow import errors, store
from seamflow.engine.notice_queue import queue_notice
from seamflow.ids import Json

__all__ = ["resolve_assignee", "set_delegation"]


def resolve_assignee(
    delegations: Sequence[store.Delegation], login: str, at: datetime, requester: str
) -> tuple[str, str | None]:
    """Who gets a task meant for `login` at `at`, and on whose behalf (None if `login` keeps it)."""
    active = {d.login: d for d in delegations if d.is_active(at)}
    seen = {login}
    current = login
    while (found := active.get(current)) is not None:
        if found.delegate in seen or found.delegate == requester:
            break
        seen.add(found.delegate)
        current = found.delegate
    return current, None if current == login else login


def set_delegation(tx: store.RunTx, delegation: store.Delegation, *, hand_over: bool, at: datetime) -> list[str]:
    """Set a user's delegation; with `hand_over`, give their pending tasks to the delegate now.

    Returns:
        The ids of the tasks handed over.

    Raises:
        errors.InvalidInput: the period is empty, or the user would delegate to themselves.
        errors.Conflict: the delegate's own delegations lead back to the user (`approval.delegation_loop`).
    """
    d = delegation
    if d.delegate == d.login:
        raise errors.InvalidInput(
            f"delegate: {d.login} cannot delegate to themselves; expected another user's login",
            code="approval.delegation_invalid",
        )
    if d.ends <= d.starts:
        raise errors.InvalidInput(
            f"until: {d.ends.isoformat()} is not after from: {d.starts.isoformat()}; expected a period that ends"
            " after it starts",
            code="approval.delegation_invalid",
        )
    others = [x for x in tx.read_delegations() if x.login != d.login]
    _refuse_loop(others, d)
    tx.set_delegation(d, at)
    if not hand_over:
        return []
    chain = [*others, d]
    handed: list[str] = []
    for task in tx.pending_tasks_of(d.login):
        if task.kind != "decide":
            continue  # an amend task is the requester's own request
        to, _ = resolve_assignee(chain, d.login, max(at, d.starts), task.requester)
        if to == d.login:
            continue
        behalf = task.on_behalf_of or d.login
        tx.reassign_task(task.id, to, behalf)
        row = tx.lock_approval(task.approval_id)
        if row is not None:  # the delegate is told of the task as if it were new to them
            queue_notice(tx, row, "created", task.id, to, at)
        attributes: Json = {
            "who": to,
            "on_behalf_of": behalf,
            "from": d.login,
            "level": task.level,
            "subject": task.subject,
        }
        objects: Json = {"approval": task.approval_id, "task": task.id}
        tx.append_log(
            [
                store.LogRow(
                    at, "task.delegated", task.flow_id, task.run_id, task.path, "task.delegated", objects, attributes
                )
            ]
        )
        handed.append(task.id)
    return handed


def _refuse_loop(others: Sequence[store.Delegation], d: store.Delegation) -> None:
    """Follow the delegate's delegations (whatever their periods): reaching the user again is a loop."""
    by_login = {x.login: x.delegate for x in others}
    path = [d.login, d.delegate]
    current = d.delegate
    while current in by_login:
        current = by_login[current]
        path.append(current)
        if current == d.login:
            raise errors.Conflict(
                f"delegating {d.login} to {d.delegate} would make a loop ({' → '.join(path)});"
                " expected a delegate whose delegations do not lead back",
                code="approval.delegation_loop",
            )
        if len(path) > len(by_login) + 2:
            return  # a loop among the others, not through this user (refused when it was set)
