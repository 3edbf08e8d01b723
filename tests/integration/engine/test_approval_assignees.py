"""Who an approval step asks: each kind of assignee resolved from a real directory, on both backends."""

from __future__ import annotations

from typing import Any

import pytest

from seamflow import errors, store
from seamflow.engine.assignees import plan_approval
from seamflow.flows import compile_flow, spec

PEOPLE = store.DirectoryEntries(
    departments=[store.StoredDepartment("it", "信息技术部", head_login="zhang.wei")],
    positions=[store.StoredPosition("finance_director", "财务总监")],
    users=[
        store.StoredUser("liu.yang", "刘洋", department_id="it"),
        store.StoredUser("zhang.wei", "张伟", department_id="it", manager_login="liu.yang"),
        store.StoredUser("li.na", "李娜", department_id="it", manager_login="zhang.wei"),
        store.StoredUser("chen.jing", "陈静", positions=("finance_director",)),
        store.StoredUser("zhao.lei", "赵磊", positions=("finance_director",)),
        store.StoredUser("sun.li", "孙丽", positions=("finance_director",), is_active=False),
    ],
)


def _step(approval: dict[str, Any]) -> Any:
    flow = spec.Flow.model_validate(
        {"id": "p2p", "trigger": {"manual": {}}, "steps": [{"id": "approve", "approval": approval}]}
    )
    return compile_flow(flow, version="v1", source="", path="flows/p2p.yaml").steps[0]


async def _levels(db: store.SqlStore, approval: dict[str, Any], body: dict[str, Any]) -> list[Any]:
    await db.save_directory_entries(PEOPLE)
    opened = await plan_approval(_step(approval), {"event": {"body": body}, "steps": {}}, "approve", db)
    assert isinstance(opened.plan, dict)
    return [(level["name"], level["assignees"], level["needed"]) for level in opened.plan["levels"]]


async def test_each_kind_of_assignee_is_found_in_the_directory(db: store.SqlStore) -> None:
    approval = {
        "requester": "{{ event.body.requester }}",
        "levels": [
            {"name": "head", "assignees": [{"department_head": "{{ event.body.department }}"}]},
            {"name": "finance", "assignees": [{"position": "finance_director"}], "mode": "all"},
            {"name": "up two", "assignees": [{"manager_of_requester": 2}, {"user": "zhao.lei"}], "mode": 2},
            {"name": "listed", "assignees": [{"expression": "{{ event.body.reviewers }}"}]},
            {"name": "small only", "when": "{{ event.body.amount < 5000 }}", "assignees": [{"user": "liu.yang"}]},
        ],
    }
    body = {"requester": "li.na", "department": "it", "amount": 8600, "reviewers": ["chen.jing", "nobody"]}
    assert await _levels(db, approval, body) == [
        ("head", ["zhang.wei"], 1),
        ("finance", ["chen.jing", "zhao.lei"], 2),  # sun.li is inactive
        ("up two", ["liu.yang", "zhao.lei"], 2),
        ("listed", ["chen.jing"], 1),  # an unknown login is left out
    ]


async def test_the_requester_never_approves_their_own_request(db: store.SqlStore) -> None:
    approval = {
        "requester": "{{ event.body.requester }}",
        "levels": [{"name": "部门负责人", "assignees": [{"department_head": "it"}, {"user": "liu.yang"}]}],
    }
    assert await _levels(db, approval, {"requester": "zhang.wei"}) == [("部门负责人", ["liu.yang"], 1)]
    alone = {"requester": "{{ event.body.requester }}", "levels": [{"assignees": [{"department_head": "it"}]}]}
    with pytest.raises(errors.Permanent) as refused:
        await _levels(db, alone, {"requester": "zhang.wei"})
    assert refused.value.code == "approval.no_assignee"
    assert "the requester zhang.wei may not approve their own request" in str(refused.value)
    allowed = {**alone, "allow_self_approval": True}
    assert await _levels(db, allowed, {"requester": "zhang.wei"}) == [(None, ["zhang.wei"], 1)]
