"""kill -9 of the server while 500 approval tasks are pending, and again while they are being decided.

After each restart every task is still there; each decision resumes its run exactly once: the
payment after the approval reaches the target once per run (its idempotency key is the run's),
and no step is journaled as completed twice.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import httpx

from tests.acceptance.flows import sink_connection
from tests.support.approvals import Site, company
from tests.support.sink import Sink
from tests.support.wait import eventually

TASKS = 500
APPROVERS = ("wang.fang", "sun.li", "zhou.min", "chen.jing", "zhao.lei")
PAY = """
id: pay
trigger: {manual: {}}
steps:
  - id: approve
    approval:
      requester: "{{ event.body.requester }}"
      subject: "付款申请 {{ event.body.no }}"
      levels:
        - assignees: [{expression: "{{ event.body.approver }}"}]
  - id: pay
    action: sink.post
    with:
      path: /payments
      json: {no: "{{ event.body.no }}", decision: "{{ steps.approve.decision }}", amount: "{{ event.body.amount }}"}
    retry: {attempts: 20, backoff: exponential, initial_delay: 100ms, max_delay: 1s}
"""


async def _pending_ids(site: Site) -> set[str]:
    found: set[str] = set()
    for login in APPROVERS:
        async with site.client(login) as client:
            tasks = (await client.get("/api/v1/tasks?assignee=me&status=pending&limit=1000")).json()
        found |= {t["id"] for t in tasks}
    return found


async def _decide_all(site: Site, tasks: list[tuple[str, str]], answers: dict[str, int]) -> None:
    """Approve each task as its assignee; a request cut by a kill is sent again after the restart."""
    for task_id, login in tasks:
        while task_id not in answers:
            try:
                answer = await site.decide(login, task_id, "approve")
            except httpx.HTTPError:
                await asyncio.sleep(0.1)  # the server is down: a real client retries later
                continue
            answers[task_id] = answer.status_code


async def test_kill_9_with_500_pending_tasks_keeps_every_task_and_resumes_each_run_once(
    project_dir: Path, tmp_path: Path, sink: Sink
) -> None:
    async with company(project_dir, tmp_path, {"pay": PAY}, sink_connection(sink.url)) as site:
        gate = asyncio.Semaphore(8)

        async def request(n: int) -> str:
            body = {"no": f"FK-2026-{n:04d}", "requester": "li.na", "approver": APPROVERS[n % 5], "amount": "3600.00"}
            async with gate:
                return await site.start("pay", body)

        runs = await asyncio.gather(*(request(n) for n in range(TASKS)))

        async def all_parked() -> None:
            [(pending,)] = site.server.database.query("SELECT COUNT(*) FROM tasks WHERE status = 'pending'")
            assert pending == TASKS, pending

        await eventually(all_parked, timeout=120)
        before = await _pending_ids(site)
        site.server.kill()
        await site.server.start()
        assert await _pending_ids(site) == before and len(before) == TASKS

        rows = site.server.database.query("SELECT id, assignee FROM tasks WHERE status = 'pending' ORDER BY id")
        tasks = [(str(task_id), str(login)) for task_id, login in rows]
        answers: dict[str, int] = {}
        deciding = asyncio.gather(*(_decide_all(site, tasks[i::8], answers) for i in range(8)))
        # Not synchronisation: the kill comes at a random moment of the decisions; what is asserted
        # below holds for any timing.
        await asyncio.sleep(random.Random(14).uniform(0.5, 1.5))
        site.server.kill()
        await asyncio.sleep(0.2)
        await site.server.start()
        await deciding
        assert set(answers.values()) <= {200, 409}, answers  # 409: decided just before the kill

        async def all_paid() -> None:
            status = dict(site.server.database.query("SELECT status, COUNT(*) FROM runs GROUP BY status"))
            assert status == {"completed": TASKS}, status

        await eventually(all_paid, timeout=180)
    effects = [r for r in sink.requests if r.path == "/payments"]
    assert {r.idempotency_key for r in effects} == {f"{run_id}:pay" for run_id in runs}
    assert sink.stats()["effects"] == TASKS
    doubled = site.server.database.query(
        "SELECT run_id, path, COUNT(*) FROM journal WHERE status = 'completed'"
        " GROUP BY run_id, path HAVING COUNT(*) > 1"
    )
    assert doubled == [], "no step was journaled as completed twice"
    [(decided,)] = site.server.database.query("SELECT COUNT(*) FROM tasks WHERE status = 'decided'")
    assert decided == TASKS
