"""Delegation while an approver is away, and decision links, through a real `seamflow serve`.

张伟 (head of 信息技术部) is away: his tasks go to 刘洋, on his behalf; a delegation that would
loop is refused. A decision link decides without signing in, once; an altered, used, expired or
handed-over link is refused with a page that says why.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.approvals import Site, company, output_of
from tests.support.runs import run_in_status
from tests.support.wait import eventually

PROCURE = """
id: procure
trigger: {manual: {}}
steps:
  - id: approve
    approval:
      requester: "{{ event.body.requester }}"
      subject: "采购申请 {{ event.body.no }}"
      due: 2d
      levels:
        - name: 部门负责人
          assignees: [{department_head: it}]
"""
AWAY = {"delegate": "liu.yang", "from": "2026-12-07T08:00:00+08:00", "until": "2026-12-10T18:00:00+08:00"}


@pytest.fixture
async def site(project_dir: Path, tmp_path: Path) -> AsyncIterator[Site]:
    async with company(project_dir, tmp_path, {"procure": PROCURE}) as found:
        yield found


def _request(no: str) -> dict[str, object]:
    return {"no": no, "requester": "li.na", "item": "显示器 ×3", "amount": 4200}


async def test_an_away_approvers_pending_and_new_tasks_go_to_the_delegate_on_their_behalf(site: Site) -> None:
    before = await site.start("procure", _request("PR-2026-0101"))
    [pending] = await site.inbox("zhang.wei")
    not_his = await site.admin.put("/api/v1/delegations/zhang.wei", json=AWAY)  # an admin may set it for him
    assert not_his.status_code == 200, not_his.text
    async with site.client("chen.jing") as other:
        refused = await other.put("/api/v1/delegations/zhang.wei", json=AWAY)
    assert (refused.status_code, refused.json()["code"]) == (403, "approval.not_delegator")
    async with site.client("zhang.wei") as him:
        answer = await him.put("/api/v1/delegations/zhang.wei", json={**AWAY, "hand_over": True})
        assert answer.status_code == 200, answer.text
        assert answer.json()["handed_over"] == [pending["id"]] and answer.json()["is_active"] is True
    async with site.client("liu.yang") as delegate:
        loop = await delegate.put("/api/v1/delegations/liu.yang", json={**AWAY, "delegate": "zhang.wei"})
    assert (loop.status_code, loop.json()["code"]) == (409, "approval.delegation_loop"), loop.text
    after = await site.start("procure", _request("PR-2026-0102"))
    tasks = await site.inbox("liu.yang", count=2)
    assert {t["on_behalf_of"] for t in tasks} == {"zhang.wei"}
    assert await site.inbox("zhang.wei", count=0) == []
    assert (await site.decide("zhang.wei", pending["id"], "approve")).status_code == 403
    for task in tasks:
        assert (await site.decide("liu.yang", task["id"], "approve")).status_code == 200
    for run_id in (before, after):
        run = await run_in_status(site.admin, run_id, "completed")
        [decided] = output_of(run, "approve")["levels"]
        assert (decided["who"], decided["on_behalf_of"]) == ("liu.yang", "zhang.wei")
        delegated = [e for e in await site.events(run_id) if e["kind"] == "task.delegated"]
        assert len(delegated) == 1 and delegated[0]["attributes"]["on_behalf_of"] == "zhang.wei", delegated


async def test_after_the_period_tasks_go_to_the_approver_again(site: Site) -> None:
    async with site.client("zhang.wei") as him:
        assert (await him.put("/api/v1/delegations/zhang.wei", json=AWAY)).status_code == 200
        listed = (await him.get("/api/v1/delegations")).json()
    assert [(d["login"], d["delegate"]) for d in listed] == [("zhang.wei", "liu.yang")]
    site.set_clock("2026-12-10T18:00:01+08:00")
    await eventually(lambda: _delegation_over(site), timeout=20)
    await site.start("procure", _request("PR-2026-0103"))  # three days on: every lease ran out meanwhile
    [task] = await site.inbox("zhang.wei")
    assert task["on_behalf_of"] is None


async def _delegation_over(site: Site) -> None:
    listed = (await site.admin.get("/api/v1/delegations")).json()
    assert listed[0]["is_active"] is False, listed


async def _link(site: Site, login: str, task_id: str) -> str:
    answer = await site.post(login, f"/api/v1/tasks/{task_id}/link")
    assert answer.status_code == 200, answer.text
    return str(answer.json()["url"])


async def test_a_decision_link_decides_once_without_signing_in_and_refuses_altered_or_used_tokens(site: Site) -> None:
    run_id = await site.start("procure", _request("PR-2026-0201"))
    [task] = await site.inbox("zhang.wei")
    someone_else = await site.post("chen.jing", f"/api/v1/tasks/{task['id']}/link")
    assert (someone_else.status_code, someone_else.json()["code"]) == (403, "approval.not_assignee")
    url = await _link(site, "zhang.wei", task["id"])
    async with httpx.AsyncClient(timeout=30) as browser:  # no Authorization header, no cookie
        page = await browser.get(url)
        assert page.status_code == 200 and "采购申请 PR-2026-0201" in page.text and "同意" in page.text
        altered = url[:-6] + ("A" if url[-6] != "A" else "B") + url[-5:]
        forged = await browser.post(altered, data={"decision": "approve"})
        assert forged.status_code == 403 and "not valid" in forged.text
        bad = await browser.post(url, data={"decision": "maybe"})
        assert bad.status_code == 400
        decided = await browser.post(url, data={"decision": "approve", "comment": "同意，邮件审批"})
        assert decided.status_code == 200 and "审批已完成" in decided.text, decided.text
        again = await browser.post(url, data={"decision": "reject"})
        assert again.status_code == 409 and "already decided" in again.text
        assert (await browser.get(url)).status_code == 409
    run = await run_in_status(site.admin, run_id, "completed")
    [level] = output_of(run, "approve")["levels"]
    assert (level["who"], level["decision"], level["comment"]) == ("zhang.wei", "approve", "同意，邮件审批")


async def test_an_expired_link_is_gone_and_a_handed_over_tasks_link_is_refused(site: Site) -> None:
    await site.start("procure", _request("PR-2026-0202"))
    [task] = await site.inbox("zhang.wei")
    url = await _link(site, "zhang.wei", task["id"])
    async with site.client("zhang.wei") as him:
        answer = await him.put("/api/v1/delegations/zhang.wei", json={**AWAY, "hand_over": True})
        assert answer.status_code == 200, answer.text
    async with httpx.AsyncClient(timeout=30) as browser:
        moved = await browser.post(url, data={"decision": "approve"})
        assert moved.status_code == 403 and "assigned to someone else" in moved.text
    [handed] = await site.inbox("liu.yang")
    fresh = await _link(site, "liu.yang", handed["id"])
    site.set_clock("2026-12-09T09:00:01+08:00")  # the task was due two days after it was created

    async def expired() -> None:  # a GET decides nothing, so polling until the server's clock moved is safe
        async with httpx.AsyncClient(timeout=30) as browser:
            page = await browser.get(fresh)
        assert page.status_code == 410 and "expired" in page.text, page.text

    await eventually(expired, timeout=20)
    async with httpx.AsyncClient(timeout=30) as browser:
        gone = await browser.post(fresh, data={"decision": "approve"})
    assert gone.status_code == 410 and "expired" in gone.text, gone.text
    assert (await site.inbox("liu.yang"))[0]["status"] == "pending"


def _cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seamflow", "tasks", *args, "--project", str(project)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_the_cli_sets_lists_and_ends_a_delegation(site: Site) -> None:
    project = site.server.project
    period = ("--from", AWAY["from"], "--until", AWAY["until"])  # the server's clock is the fake one
    made = await asyncio.to_thread(_cli, project, "delegate", "--as", "zhang.wei", "--to", "liu.yang", *period)
    assert made.returncode == 0 and "tasks go to liu.yang" in made.stdout, made.stderr
    looped = await asyncio.to_thread(_cli, project, "delegate", "--as", "liu.yang", "--to", "zhang.wei", *period)
    assert looped.returncode != 0 and "loop" in looped.stderr
    listed = await asyncio.to_thread(_cli, project, "delegations")
    assert "zhang.wei" in listed.stdout and "liu.yang" in listed.stdout
    await site.start("procure", _request("PR-2026-0301"))
    [task] = await site.inbox("liu.yang")
    assert task["on_behalf_of"] == "zhang.wei"
    ended = await asyncio.to_thread(_cli, project, "delegate", "--as", "zhang.wei", "--end")
    assert ended.returncode == 0, ended.stderr
    await site.start("procure", _request("PR-2026-0302"))
    await site.inbox("zhang.wei")
