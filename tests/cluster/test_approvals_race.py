"""Two approvers of an any-of level decide at the same moment through two different processes on PostgreSQL.

Two `seamflow api` processes and a `seamflow worker` share one database. For each of several
requests, 陈静 decides through one process and 赵磊 through the other, at once: exactly one
decision counts (200), the other is told `409 approval.already_decided`, and every run resumes
and completes exactly once.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.support import db
from tests.support.approvals import load_directory, output_of
from tests.support.runs import run_in_status
from tests.support.server import Server, make_project
from tests.support.wait import eventually

FLOW = """
id: expense
trigger: {manual: {}}
steps:
  - id: approve
    approval:
      requester: "{{ event.body.requester }}"
      subject: "费用报销 {{ event.body.no }}"
      levels:
        - name: 财务
          assignees: [{position: finance_director}, {user: zhao.lei}]
"""
REQUESTS = 12


async def test_two_processes_deciding_one_any_of_level_at_once_give_one_outcome_and_one_409(
    project_dir: Path, database: db.Database
) -> None:
    make_project(project_dir, {"expense": FLOW})
    env = {"SEAMFLOW_LEASE": "3s"}
    first, second = (Server(project_dir, database=database, role="api", env=env) for _ in range(2))
    worker = Server(project_dir, database=database, role="worker", env=env)
    try:
        await asyncio.gather(first.start(), second.start(), worker.start())
        async with first.client() as admin:
            tokens = await load_directory(admin)
            runs = []
            for n in range(REQUESTS):
                body = {"input": {"no": f"BX-2026-{n:04d}", "requester": "li.na"}}
                answer = await admin.post("/api/v1/flows/expense/runs", json=body)
                assert answer.status_code == 202, answer.text
                runs.append(answer.json()["run_id"])
            chen = httpx.AsyncClient(base_url=first.url, headers={"Authorization": f"Bearer {tokens['chen.jing']}"})
            zhao = httpx.AsyncClient(base_url=second.url, headers={"Authorization": f"Bearer {tokens['zhao.lei']}"})
            async with chen, zhao:

                async def all_asked() -> list[tuple[str, str]]:
                    mine = (await chen.get("/api/v1/tasks?assignee=me&status=pending&limit=1000")).json()
                    his = (await zhao.get("/api/v1/tasks?assignee=me&status=pending&limit=1000")).json()
                    assert len(mine) == len(his) == REQUESTS, (len(mine), len(his))
                    by_approval = {t["approval_id"]: t["id"] for t in his}
                    return [(t["id"], by_approval[t["approval_id"]]) for t in mine]

                pairs = await eventually(all_asked, timeout=60)
                for chen_task, zhao_task in pairs:
                    race = await asyncio.gather(
                        chen.post(f"/api/v1/tasks/{chen_task}/decision", json={"decision": "approve"}),
                        zhao.post(f"/api/v1/tasks/{zhao_task}/decision", json={"decision": "reject"}),
                    )
                    assert sorted(r.status_code for r in race) == [200, 409], [r.text for r in race]
                    lost = next(r for r in race if r.status_code == 409)
                    assert lost.json()["code"] == "approval.already_decided"
            for run_id in runs:
                run = await run_in_status(admin, run_id, "completed", timeout=60)
                outcome = output_of(run, "approve")
                assert len(outcome["levels"]) == 1 and outcome["decision"] in ("approved", "rejected"), outcome
                assert [s["step"] for s in run["steps"] if s["status"] == "completed"] == ["approve"]
    finally:
        for process in (first, second, worker):
            process.kill()
