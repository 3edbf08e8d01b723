"""Approvals through a real `seamflow serve`: a purchase request to the department head, then the
finance director when over 5,000 CNY; the inbox API, a race, 403, a reminder and a restart.

Time is moved with `SEAMFLOW_FAKE_CLOCK` (the server re-reads the file when it changes), so a
reminder falls due without waiting.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.runs import run_in_status
from tests.support.server import Server, make_project
from tests.support.wait import eventually

T0 = "2026-12-07T09:00:00+08:00"
PROCURE = """
id: procure-to-pay
trigger: {manual: {}}
steps:
  - id: approve
    approval:
      requester: "{{ event.body.requester }}"
      subject: "采购申请 {{ event.body.no }}"
      remind_after: 4h
      due: 1d
      escalate: manager
      form:
        type: object
        properties: {budget_code: {type: string, pattern: "^[A-Z]{2}-[0-9]{2}$"}}
      levels:
        - name: 部门负责人
          assignees: [{department_head: "{{ event.body.department }}"}]
        - name: 财务总监
          when: "{{ event.body.amount > 5000 }}"
          assignees: [{position: finance_director}, {user: zhao.lei}]
  - id: result
    transform:
      decision: "{{ steps.approve.decision }}"
      decisions: "{{ steps.approve.levels | length }}"
"""
PEOPLE = {  # login -> user, managers first; everyone is an approver, li.na asks
    "liu.yang": {"name": "刘洋", "department": "it"},
    "zhang.wei": {"name": "张伟", "department": "it", "manager": "liu.yang"},
    "li.na": {"name": "李娜", "department": "it", "manager": "zhang.wei"},
    "chen.jing": {"name": "陈静", "department": "finance", "positions": ["finance_director"]},
    "zhao.lei": {"name": "赵磊", "department": "finance"},
}


@dataclass
class Site:
    server: Server
    clock_file: Path
    admin: httpx.AsyncClient
    tokens: dict[str, str]

    def client(self, login: str) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.tokens[login]}"}
        return httpx.AsyncClient(base_url=self.server.url, headers=headers, timeout=30)

    async def request(self, amount: int) -> str:
        body = {"input": {"no": "PR-2026-0042", "requester": "li.na", "department": "it", "amount": amount}}
        answer = await self.admin.post("/api/v1/flows/procure-to-pay/runs", json=body)
        assert answer.status_code == 202, answer.text
        return str(answer.json()["run_id"])

    async def inbox(self, login: str, count: int = 1) -> list[dict[str, Any]]:
        async with self.client(login) as client:

            async def check() -> list[dict[str, Any]]:
                tasks: list[dict[str, Any]] = (await client.get("/api/v1/tasks?assignee=me&status=pending")).json()
                assert len(tasks) == count, tasks
                return tasks

            return await eventually(check, timeout=20)

    async def decide(self, login: str, task_id: str, decision: str, **extra: object) -> httpx.Response:
        async with self.client(login) as client:
            return await client.post(f"/api/v1/tasks/{task_id}/decision", json={"decision": decision, **extra})


def _result(run: dict[str, Any]) -> Any:
    return next(s["output"] for s in run["steps"] if s["step"] == "result")


@pytest.fixture
async def site(project_dir: Path, tmp_path: Path) -> AsyncIterator[Site]:
    clock_file = tmp_path / "clock"
    clock_file.write_text(T0)
    make_project(project_dir, {"procure-to-pay": PROCURE})
    server = Server(project_dir, env={"SEAMFLOW_FAKE_CLOCK": str(clock_file)})
    await server.start()
    try:
        async with server.client() as admin:
            for path, body in [
                ("departments/it", {"name": "信息技术部"}),
                ("departments/finance", {"name": "财务部"}),
                ("positions/finance_director", {"name": "财务总监"}),
            ]:
                assert (await admin.put(f"/api/v1/directory/{path}", json=body)).status_code == 200
            tokens = {}
            for login, user in PEOPLE.items():
                answer = await admin.put(f"/api/v1/directory/users/{login}", json={**user, "roles": ["approver"]})
                assert answer.status_code == 200, answer.text
                made = await admin.post(f"/api/v1/directory/users/{login}/tokens", json={"name": "inbox"})
                tokens[login] = made.json()["token"]
            answer = await admin.put(
                "/api/v1/directory/departments/it", json={"name": "信息技术部", "head": "zhang.wei"}
            )
            assert answer.status_code == 200, answer.text
            yield Site(server, clock_file, admin, tokens)
    finally:
        server.kill()


async def test_a_large_purchase_goes_to_the_head_then_finance_and_the_run_resumes_once(site: Site) -> None:
    run_id = await site.request(8600)
    [head] = await site.inbox("zhang.wei")
    assert (head["subject"], head["requester"], head["level"]) == ("采购申请 PR-2026-0042", "li.na", 1)
    assert head["data"]["body"]["amount"] == 8600
    bad = await site.decide("zhang.wei", head["id"], "approve", form={"budget_code": "it-7"})
    assert (bad.status_code, bad.json()["code"]) == (422, "approval.form_invalid"), bad.text
    not_theirs = await site.decide("chen.jing", head["id"], "approve")
    assert (not_theirs.status_code, not_theirs.json()["code"]) == (403, "approval.not_assignee")
    answer = await site.decide("zhang.wei", head["id"], "approve", comment="预算内", form={"budget_code": "IT-07"})
    assert answer.status_code == 200 and answer.json()["approval_settled"] is False, answer.text
    [director] = await site.inbox("chen.jing")
    [other] = await site.inbox("zhao.lei")
    race = await asyncio.gather(
        site.decide("chen.jing", director["id"], "approve"), site.decide("zhao.lei", other["id"], "approve")
    )
    assert sorted(r.status_code for r in race) == [200, 409], [r.text for r in race]
    assert next(r for r in race if r.status_code == 409).json()["code"] == "approval.already_decided"
    run = await run_in_status(site.admin, run_id, "completed")
    assert _result(run) == {"decision": "approved", "decisions": 2}
    done = [s for s in run["steps"] if s["step"] == "approve" and s["status"] == "completed"]
    assert len(done) == 1


async def test_a_small_purchase_skips_finance_and_a_restart_keeps_the_task(site: Site) -> None:
    run_id = await site.request(1200)
    [head] = await site.inbox("zhang.wei")
    await site.server.restart()
    [again] = await site.inbox("zhang.wei")
    assert again["id"] == head["id"]
    answer = await site.decide("zhang.wei", head["id"], "reject", comment="请先比价")
    assert answer.status_code == 200 and answer.json()["approval_settled"] is True, answer.text
    run = await run_in_status(site.admin, run_id, "completed")
    assert _result(run) == {"decision": "rejected", "decisions": 1}


async def test_a_due_reminder_then_escalation_to_the_manager(site: Site) -> None:
    run_id = await site.request(1200)
    await site.inbox("zhang.wei")
    site.clock_file.write_text("2026-12-07T13:00:01+08:00")

    async def logged(kind: str) -> None:
        events = (await site.admin.get(f"/api/v1/events?run={run_id}")).json()
        assert kind in [e["kind"] for e in events], events

    async def heartbeats_after(instant: str) -> None:
        """A day's jump outlives every lease: decide once each process has renewed its own at the new time."""
        workers = (await site.admin.get("/api/v1/workers")).json()
        assert workers and all(w["heartbeat"] > instant for w in workers), workers

    await eventually(lambda: logged("task.reminded"), timeout=20)
    site.clock_file.write_text("2026-12-08T09:00:01+08:00")
    [escalated] = await site.inbox("liu.yang")
    await eventually(lambda: heartbeats_after("2026-12-08T01:00:01+00:00"), timeout=30)
    answer = await site.decide("liu.yang", escalated["id"], "approve")
    assert answer.status_code == 200, answer.text
    await run_in_status(site.admin, run_id, "completed")


def _cli(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "seamflow", "tasks", *args, "--project", str(project)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"seamflow tasks {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result


async def test_the_cli_lists_shows_and_decides_and_the_server_resumes_the_run(site: Site) -> None:
    run_id = await site.request(1200)
    [head] = await site.inbox("zhang.wei")
    project = site.server.project
    table = (await asyncio.to_thread(_cli, project, "list", "--as", "zhang.wei")).stdout.splitlines()
    assert table[0].split() == ["ID", "SUBJECT", "REQUESTER", "LEVEL", "ASSIGNEE", "STATUS", "DECISION", "DUE"]
    assert table[1].startswith(head["id"]) and "采购申请" in table[1] and "pending" in table[1]
    shown = json.loads((await asyncio.to_thread(_cli, project, "show", head["id"], "--json")).stdout)
    assert shown["data"]["body"]["no"] == "PR-2026-0042"
    refused = await asyncio.to_thread(_cli, project, "decide", head["id"], "approve", "--as", "li.na", check=False)
    assert refused.returncode == 2 and "assigned to someone else" in refused.stderr
    decided = await asyncio.to_thread(
        _cli, project, "decide", head["id"], "approve", "--as", "zhang.wei", "--form", '{"budget_code": "IT-07"}'
    )
    assert "the approval is settled; its run resumes" in decided.stdout
    run = await run_in_status(site.admin, run_id, "completed", timeout=30)
    assert _result(run) == {"decision": "approved", "decisions": 1}
    again = await asyncio.to_thread(_cli, project, "decide", head["id"], "reject", "--as", "zhang.wei", check=False)
    assert again.returncode == 2 and "already decided" in again.stderr
