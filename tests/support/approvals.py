"""A company with approvers, for approval tests: a `seamflow serve` with a directory, tokens and a fake clock.

信息技术部 (head 张伟, whose manager is 刘洋), 财务部 (财务总监 陈静), three 法务 reviewers; 李娜
asks. Each person has a personal API token with their role's scopes (everyone is an approver).
Time is the fake clock's file (`SEAMFLOW_FAKE_CLOCK`): the server re-reads it when it changes.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet

from tests.support.server import Server, free_port, make_project
from tests.support.wait import eventually

T0 = "2026-12-07T09:00:00+08:00"
PEOPLE = {  # login -> user, managers first; everyone is an approver, li.na asks
    "liu.yang": {"name": "刘洋", "department": "it", "mobile": "+8613800138000", "email": "liu.yang@example.cn"},
    "zhang.wei": {"name": "张伟", "department": "it", "manager": "liu.yang", "email": "zhang.wei@example.cn"},
    "li.na": {"name": "李娜", "department": "it", "manager": "zhang.wei", "email": "li.na@example.cn"},
    "chen.jing": {"name": "陈静", "department": "finance", "positions": ["finance_director"]},
    "zhao.lei": {"name": "赵磊", "department": "finance"},
    "wang.fang": {"name": "王芳", "department": "legal", "positions": ["legal_reviewer"]},
    "sun.li": {"name": "孙丽", "department": "legal", "positions": ["legal_reviewer"]},
    "zhou.min": {"name": "周敏", "department": "legal", "positions": ["legal_reviewer"]},
}


@dataclass
class Site:
    """The running server, its clock file, an admin client and each person's token."""

    server: Server
    clock_file: Path
    admin: httpx.AsyncClient
    tokens: dict[str, str]

    def set_clock(self, instant: str) -> None:
        """Move the server's time: the file is replaced whole, so no process reads it half-written."""
        staged = self.clock_file.with_name(self.clock_file.name + ".new")
        staged.write_text(instant)
        staged.replace(self.clock_file)

    def client(self, login: str) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.tokens[login]}"}
        return httpx.AsyncClient(base_url=self.server.url, headers=headers, timeout=30)

    async def start(self, flow_id: str, body: Mapping[str, Any]) -> str:
        """Start a run of `flow_id` with `body` as `event.body`; its id."""
        answer = await self.admin.post(f"/api/v1/flows/{flow_id}/runs", json={"input": dict(body)})
        assert answer.status_code == 202, answer.text
        return str(answer.json()["run_id"])

    async def inbox(self, login: str, count: int = 1) -> list[dict[str, Any]]:
        """`login`'s pending tasks, once there are `count` of them."""
        async with self.client(login) as client:

            async def check() -> list[dict[str, Any]]:
                tasks: list[dict[str, Any]] = (await client.get("/api/v1/tasks?assignee=me&status=pending")).json()
                assert len(tasks) == count, tasks
                return tasks

            return await eventually(check, timeout=20)

    async def post(self, login: str, path: str, body: Mapping[str, Any] | None = None) -> httpx.Response:
        async with self.client(login) as client:
            return await client.post(path, json=dict(body or {}))

    async def decide(self, login: str, task_id: str, decision: str, **extra: object) -> httpx.Response:
        return await self.post(login, f"/api/v1/tasks/{task_id}/decision", {"decision": decision, **extra})

    async def events(self, run_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = (await self.admin.get(f"/api/v1/events?run={run_id}")).json()
        return found


def output_of(run: Mapping[str, Any], step: str) -> Any:
    """The output of a run's completed step (an approval step's: the outcome its signal carried)."""
    output = next(s["output"] for s in run["steps"] if s["step"] == step and s["status"] == "completed")
    is_approval = isinstance(output, dict) and output.get("signal") == "approval"
    return output["payload"] if is_approval else output


@contextlib.asynccontextmanager
async def company(
    project_dir: Path,
    tmp_path: Path,
    flows: Mapping[str, str],
    connections: str = "",
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[Site]:
    """Serve `flows` for the company above; the server has a project secret key and a public address (links)."""
    clock_file = tmp_path / "clock"
    clock_file.write_text(T0)
    make_project(project_dir, flows, connections)
    port = free_port()
    variables = {
        "SEAMFLOW_FAKE_CLOCK": str(clock_file),
        "SEAMFLOW_SECRET_KEY": Fernet.generate_key().decode(),
        "SEAMFLOW_PUBLIC_URL": f"http://127.0.0.1:{port}",
        **(env or {}),
    }
    server = Server(project_dir, env=variables, port=port)
    await server.start()
    try:
        async with server.client() as admin:
            yield Site(server, clock_file, admin, await load_directory(admin))
    finally:
        server.kill()


async def load_directory(admin: httpx.AsyncClient) -> dict[str, str]:
    for path, body in [
        ("departments/it", {"name": "信息技术部"}),
        ("departments/finance", {"name": "财务部"}),
        ("departments/legal", {"name": "法务部"}),
        ("positions/finance_director", {"name": "财务总监"}),
        ("positions/legal_reviewer", {"name": "法务审核"}),
    ]:
        assert (await admin.put(f"/api/v1/directory/{path}", json=body)).status_code == 200
    tokens = {}
    for login, user in PEOPLE.items():
        answer = await admin.put(f"/api/v1/directory/users/{login}", json={**user, "roles": ["approver"]})
        assert answer.status_code == 200, answer.text
        made = await admin.post(f"/api/v1/directory/users/{login}/tokens", json={"name": "inbox"})
        tokens[login] = made.json()["token"]
    answer = await admin.put("/api/v1/directory/departments/it", json={"name": "信息技术部", "head": "zhang.wei"})
    assert answer.status_code == 200, answer.text
    return tokens
