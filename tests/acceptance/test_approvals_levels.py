"""Approval levels through a real `seamflow serve`: two of three reviewers in parallel, then everyone of
a level, a conditional level; a return that loops back to the requester and a withdrawal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.approvals import Site, company, output_of
from tests.support.runs import run_in_status

CONTRACT = """
id: contract-review
trigger: {manual: {}}
steps:
  - id: approve
    approval:
      requester: "{{ event.body.requester }}"
      subject: "合同评审 {{ event.body.no }}"
      levels:
        - name: 法务会审
          mode: 2
          assignees: [{position: legal_reviewer}]
        - name: 财务与部门
          mode: all
          assignees: [{user: chen.jing}, {department_head: "{{ event.body.department }}"}]
        - name: 总经理
          when: "{{ event.body.amount > 100000 }}"
          assignees: [{user: liu.yang}]
  - id: result
    transform:
      decision: "{{ steps.approve.decision }}"
      decisions: "{{ steps.approve.levels | length }}"
"""
PROCURE = """
id: procure
trigger: {manual: {}}
steps:
  - id: approve
    approval:
      requester: "{{ event.body.requester }}"
      subject: "采购申请 {{ event.body.no }}"
      levels:
        - name: 部门负责人
          assignees: [{department_head: it}]
        - name: 财务总监
          assignees: [{position: finance_director}]
"""
CONTRACT_BODY = {"no": "HT-2026-118", "requester": "li.na", "department": "it", "amount": 56000}
PURCHASE = {"no": "PR-2026-0042", "requester": "li.na", "item": "ThinkPad X1 ×2", "amount": 8600}


@pytest.fixture
async def site(project_dir: Path, tmp_path: Path) -> AsyncIterator[Site]:
    async with company(project_dir, tmp_path, {"contract-review": CONTRACT, "procure": PROCURE}) as found:
        yield found


async def test_two_of_three_reviewers_then_everyone_of_the_next_level_and_a_false_condition_skips_a_level(
    site: Site,
) -> None:
    run_id = await site.start("contract-review", CONTRACT_BODY)
    reviewers = {login: (await site.inbox(login))[0] for login in ("wang.fang", "sun.li", "zhou.min")}
    assert {t["level"] for t in reviewers.values()} == {1}
    first = await site.decide("wang.fang", reviewers["wang.fang"]["id"], "approve")
    assert first.status_code == 200 and first.json()["approval_settled"] is False, first.text
    await site.inbox("sun.li")  # one approval of two: the level is still open for the others
    second = await site.decide("sun.li", reviewers["sun.li"]["id"], "approve", comment="条款无异议")
    assert second.status_code == 200, second.text
    late = await site.decide("zhou.min", reviewers["zhou.min"]["id"], "approve")
    assert (late.status_code, late.json()["code"]) == (409, "approval.already_decided"), late.text
    [finance] = await site.inbox("chen.jing")
    [head] = await site.inbox("zhang.wei")
    assert finance["level"] == head["level"] == 2
    answer = await site.decide("chen.jing", finance["id"], "approve")
    assert answer.json()["approval_settled"] is False, answer.text  # all-of: the head has not decided
    answer = await site.decide("zhang.wei", head["id"], "approve")
    assert answer.json()["approval_settled"] is True, answer.text  # 56,000 CNY: no 总经理 level
    run = await run_in_status(site.admin, run_id, "completed")
    assert output_of(run, "result") == {"decision": "approved", "decisions": 4}
    who = [(d["level"], d["who"]) for d in output_of(run, "approve")["levels"]]
    assert sorted(who) == [(1, "sun.li"), (1, "wang.fang"), (2, "chen.jing"), (2, "zhang.wei")]
    assert await site.inbox("liu.yang", count=0) == []


async def test_a_return_asks_the_requester_to_amend_and_the_level_that_returned_it_decides_again(site: Site) -> None:
    run_id = await site.start("procure", PURCHASE)
    [head] = await site.inbox("zhang.wei")
    assert (await site.decide("zhang.wei", head["id"], "approve")).status_code == 200
    [finance] = await site.inbox("chen.jing")
    returned = await site.decide("chen.jing", finance["id"], "return", comment="请改为两台以内、金额 5,000 以下")
    assert returned.status_code == 200 and returned.json()["approval_settled"] is False, returned.text
    [amend] = await site.inbox("li.na")
    assert (amend["kind"], amend["level"]) == ("amend", 2)
    as_decision = await site.decide("li.na", amend["id"], "approve")
    assert (as_decision.status_code, as_decision.json()["code"]) == (400, "approval.resubmit_expected")
    not_hers = await site.post("zhang.wei", f"/api/v1/tasks/{amend['id']}/resubmit", {"changes": {"amount": 1}})
    assert (not_hers.status_code, not_hers.json()["code"]) == (403, "approval.not_assignee")
    changes = {"amount": 4800, "item": "ThinkPad X1 ×1"}
    again = await site.post("li.na", f"/api/v1/tasks/{amend['id']}/resubmit", {"changes": changes, "comment": "已改"})
    assert again.status_code == 200 and again.json()["status"] == "decided", again.text
    assert await site.inbox("zhang.wei", count=0) == []  # level 1 approved already: not asked again
    [second] = await site.inbox("chen.jing")
    assert second["id"] != finance["id"] and second["data"]["changes"] == changes
    assert (await site.decide("chen.jing", second["id"], "approve")).json()["approval_settled"] is True
    run = await run_in_status(site.admin, run_id, "completed")
    out = output_of(run, "approve")
    assert (out["decision"], out["changes"]) == ("approved", changes)
    assert [(d["who"], d["decision"]) for d in out["levels"]] == [
        ("zhang.wei", "approve"),
        ("chen.jing", "return"),
        ("chen.jing", "approve"),
    ]
    assert [a["comment"] for a in out["amendments"]] == ["已改"]
    kinds = [e["kind"] for e in await site.events(run_id)]
    assert kinds.count("approval.returned") == 1 and kinds.count("approval.resubmitted") == 1


async def test_the_requester_withdraws_a_returned_request_and_the_run_resumes_once(site: Site) -> None:
    run_id = await site.start("procure", PURCHASE)
    [head] = await site.inbox("zhang.wei")
    assert (await site.decide("zhang.wei", head["id"], "return")).status_code == 200
    [amend] = await site.inbox("li.na")
    someone_else = await site.post("zhang.wei", f"/api/v1/tasks/{amend['id']}/withdraw")
    assert (someone_else.status_code, someone_else.json()["code"]) == (403, "approval.not_requester")
    withdrawn = await site.post("li.na", f"/api/v1/tasks/{amend['id']}/withdraw")
    assert withdrawn.status_code == 200, withdrawn.text
    run = await run_in_status(site.admin, run_id, "completed")
    assert output_of(run, "approve")["decision"] == "withdrawn"
    late = await site.post("li.na", f"/api/v1/tasks/{amend['id']}/resubmit", {"changes": {"amount": 1}})
    assert (late.status_code, late.json()["code"]) == (409, "approval.already_decided")
    assert [s["step"] for s in run["steps"] if s["status"] == "completed"].count("approve") == 1
