"""Who decides: an `approval` step's levels resolved to logins from the directory, when the step begins.

Each level's `when` is evaluated then (a level whose condition is false is left out), and its
assignees are looked up: a user by login, every active holder of a position, a department's
head, the requester's manager N levels up, or logins given by an expression. The requester is
left out of the levels (self-approval is refused) unless the step allows it. A level that ends
up with nobody is an error that names the level and what was looked up: a run must not wait
for a decision no one can make.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from seamflow import errors, ids, redact, store
from seamflow.flows import CompiledStep, spec
from seamflow.ids import Json

__all__ = ["plan_approval"]


class _People:
    """The directory as the step found it: users by login, departments by id."""

    def __init__(self, users: list[store.StoredUser], departments: list[store.StoredDepartment]) -> None:
        self.users = {u.login: u for u in users if u.is_active}
        self.departments = {d.id: d for d in departments}

    def manager_of(self, login: str, levels: int) -> str | None:
        current: str | None = login
        for _ in range(levels):
            user = self.users.get(current or "")
            current = user.manager_login if user is not None else None
        return current


async def plan_approval(
    step: CompiledStep, scope: Mapping[str, Any], path: str, people: store.DirectoryStore
) -> store.NewApproval:
    """The approval to open for `step`: levels with their assignees, timers, the request.

    Raises:
        errors.Permanent: a level has no assignee (`approval.no_assignee`).
        errors.ExpressionError: a template failed.
    """
    assert isinstance(step.spec, spec.ApprovalStep)
    a = step.spec.approval
    directory = _People(await people.list_users(), await people.list_departments())
    requester = str(_render(step, "requester", scope))
    levels: list[Json] = []
    asked: set[str] = set()
    for i, level in enumerate(a.levels):
        when = step.template(f"levels[{i}].when")
        if when is not None and not when.is_true(scope):
            continue
        logins = _level_logins(step, level, i, scope, directory, requester)
        if not a.allow_self_approval:
            logins = [login for login in logins if login != requester]
        if not logins:
            raise errors.Permanent(
                f"level {level.name or i + 1} has no assignee in the directory"
                f" (the requester {requester} may not approve their own request)",
                where=f"{path}.levels[{i}]",
                code="approval.no_assignee",
            )
        needed = 1 if level.mode == "any" else len(logins) if level.mode == "all" else min(int(level.mode), len(logins))
        asked |= set(logins)
        levels.append({"name": level.name, "mode": level.mode, "needed": needed, "assignees": list[Json](logins)})
    if not levels:
        raise errors.Permanent("no level applies to this request", where=path, code="approval.no_assignee")
    plan: Json = {
        "levels": levels,
        "due_s": None if a.due is None else a.due.total_seconds(),
        "remind_s": None if a.remind_after is None else a.remind_after.total_seconds(),
        "escalate": a.escalate,
        "form": a.form,
        "notify": None if a.notify is None else {"connection": a.notify.connection, "on": list[Json](a.notify.on)},
        "managers": {login: directory.manager_of(login, 1) for login in sorted(asked)},
    }
    subject = _render(step, "subject", scope)
    data: Json = redact.mask(scope.get("event"))
    return store.NewApproval(ids.new_id("apr"), path, requester, None if subject is None else str(subject), data, plan)


def _level_logins(
    step: CompiledStep, level: spec.ApprovalLevel, i: int, scope: Mapping[str, Any], people: _People, requester: str
) -> list[str]:
    found: list[str] = []
    for j, who in enumerate(level.assignees):
        template = step.template(f"levels[{i}].assignees[{j}]")
        given = template.render(scope) if template is not None else None
        if who.user is not None:
            found += [who.user] if who.user in people.users else []
        elif who.position is not None:
            found += sorted(u.login for u in people.users.values() if who.position in (u.positions or ()))
        elif who.department_head is not None:
            department = people.departments.get(str(given))
            found += [department.head_login] if department is not None and department.head_login else []
        elif who.manager_of_requester is not None:
            manager = people.manager_of(requester, who.manager_of_requester)
            found += [manager] if manager is not None else []
        else:
            logins = given if isinstance(given, list) else [given]
            found += [str(login) for login in logins if str(login) in people.users]
    return list(dict.fromkeys(found))  # once each, in the order given


def _render(step: CompiledStep, name: str, scope: Mapping[str, Any]) -> Json:
    template = step.template(name)
    return None if template is None else template.render(scope)
