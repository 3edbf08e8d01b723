"""The procure-to-pay example end to end: a signed purchase request, the `approval` step through the
inbox API (department head, then the finance director over 5,000 CNY), one purchase order in the
example ERP (a real process) and the buyer @-mentioned in the purchasing group's DingTalk robot
(a local robot server that checks DingTalk's signature and format).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.example_system import start_example_system
from tests.support.im_robots import ImRobots
from tests.support.runs import run_in_status
from tests.support.server import Server, free_port
from tests.support.wait import eventually

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
ERP_TOKEN, HOOK_SECRET, ROBOT_TOKEN, ROBOT_SIGN = "erp-p2p-6a1f", "p2p-hook-93c2", "p2p-robot-4d8e", "SECp2p5b7c"

pytestmark = pytest.mark.timeout(180)


@dataclass
class _World:
    server: Server
    admin: httpx.AsyncClient
    erp: httpx.AsyncClient
    robots: ImRobots
    tokens: dict[str, str]

    async def request(self, body: dict[str, Any]) -> str:
        raw = json.dumps(body, ensure_ascii=False).encode()
        signature = hmac.new(HOOK_SECRET.encode(), raw, hashlib.sha256).hexdigest()
        answer = await self.admin.post(
            "/hooks/purchase-requests",
            content=raw,
            headers={"Content-Type": "application/json", "X-Signature": signature},
        )
        assert answer.status_code in (200, 202), answer.text
        return str(answer.json()["run_id"])

    async def task_of(self, login: str) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.tokens[login]}"}
        async with httpx.AsyncClient(base_url=self.server.url, headers=headers, timeout=30) as client:

            async def one() -> dict[str, Any]:
                tasks: list[dict[str, Any]] = (await client.get("/api/v1/tasks?assignee=me&status=pending")).json()
                assert len(tasks) == 1, tasks
                return tasks[0]

            return await eventually(one, timeout=20)

    async def decide(self, login: str, decision: str, comment: str) -> None:
        task = await self.task_of(login)
        headers = {"Authorization": f"Bearer {self.tokens[login]}"}
        async with httpx.AsyncClient(base_url=self.server.url, headers=headers, timeout=30) as client:
            answer = await client.post(
                f"/api/v1/tasks/{task['id']}/decision", json={"decision": decision, "comment": comment}
            )
        assert answer.status_code == 200, answer.text


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[_World]:
    erp_port = free_port()
    erp = await start_example_system("erp", tmp_path, erp_port, {"ERP_API_TOKEN": ERP_TOKEN})
    project = tmp_path / "project"
    shutil.copytree(EXAMPLES / "procure-to-pay", project, ignore=shutil.ignore_patterns("README.md"))
    async with ImRobots.start() as robots:
        env = {
            "SEAMFLOW_VAR_ERP_URL": f"http://127.0.0.1:{erp_port}",
            "SEAMFLOW_VAR_BUYER_LOGIN": "sunli",
            "SEAMFLOW_VAR_BUYER_MOBILE": "+86 136 2001 7788",
            "SEAMFLOW_SECRET_ERP_TOKEN": ERP_TOKEN,
            "SEAMFLOW_SECRET_PURCHASING_ROBOT": robots.add("dingtalk", ROBOT_TOKEN, ROBOT_SIGN),
            "SEAMFLOW_SECRET_PURCHASING_ROBOT_SIGN": ROBOT_SIGN,
            "SEAMFLOW_SECRET_PURCHASE_WEBHOOK": HOOK_SECRET,
        }
        server = Server(project, env=env)
        imported = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "seamflow", "users", "import", "directory.yaml", "--project", str(project)],
            cwd=project,
            env=server.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert imported.returncode == 0, imported.stderr
        await server.start()
        try:
            async with (
                server.client() as admin,
                httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{erp_port}", headers={"Authorization": f"Bearer {ERP_TOKEN}"}
                ) as erp_client,
            ):
                tokens = {}
                for login in ("zhaolei", "zhangwei"):
                    made = await admin.post(f"/api/v1/directory/users/{login}/tokens", json={"name": "inbox"})
                    assert made.status_code in (200, 201), made.text
                    tokens[login] = made.json()["token"]
                yield _World(server, admin, erp_client, robots, tokens)
        finally:
            server.kill()
            erp.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(erp.wait, 10)
            if erp.poll() is None:
                erp.kill()


LAPTOPS = {
    "request_no": "PR-2026-12-0107",
    "requester": "zhoumin",
    "department": "it",
    "item": "ThinkPad X1 Carbon ×2",
    "supplier": "联想（北京）有限公司",
    "amount": "8600.00",
}
TONER = {
    "request_no": "PR-2026-12-0108",
    "requester": "zhoumin",
    "department": "it",
    "item": "HP 打印机硒鼓 ×6",
    "supplier": "北京晨光办公用品有限公司",
    "amount": "1260.00",
}


async def test_a_large_request_goes_to_the_head_then_finance_and_makes_one_purchase_order(world: _World) -> None:
    run_id = await world.request(LAPTOPS)
    assert await world.request(LAPTOPS) == run_id  # the form resends: one request number, one run
    head_task = await world.task_of("zhaolei")
    assert "PR-2026-12-0107" in head_task["subject"] and head_task["requester"] == "zhoumin"
    await world.decide("zhaolei", "approve", "同意，项目组急需")
    await world.server.restart()  # the run waits for finance in the store, not in a worker
    await world.decide("zhangwei", "approve", "预算内")
    run = await run_in_status(world.admin, run_id, "completed")

    orders = (await world.erp.get("/purchase-orders")).json()
    assert len(orders) == 1
    [order] = orders
    assert (order["request_no"], order["amount"], order["buyer"]) == ("PR-2026-12-0107", "8600.00", "sunli")
    assert order["approved_by"] == "zhaolei,zhangwei"
    [message] = world.robots.messages
    assert message.body["at"]["atMobiles"] == ["13620017788"]
    content = message.body["text"]["content"]
    assert order["po_no"] in content and "PR-2026-12-0107" in content and "8600.00" in content
    assert [s["status"] for s in run["steps"] if s["step"].endswith("order")] == ["completed"], run["steps"]


async def test_a_small_request_skips_finance_and_a_rejection_orders_nothing(world: _World) -> None:
    small = await world.request(TONER)
    await world.decide("zhaolei", "approve", "同意")
    await run_in_status(world.admin, small, "completed")
    assert [o["request_no"] for o in (await world.erp.get("/purchase-orders")).json()] == ["PR-2026-12-0108"]
    async with httpx.AsyncClient(
        base_url=world.server.url, headers={"Authorization": f"Bearer {world.tokens['zhangwei']}"}
    ) as finance:
        assert (await finance.get("/api/v1/tasks?assignee=me")).json() == []  # never asked

    rejected = await world.request({**TONER, "request_no": "PR-2026-12-0109", "item": "人体工学椅 ×1"})
    await world.decide("zhaolei", "reject", "本季度预算已用完")
    await run_in_status(world.admin, rejected, "completed")
    assert len((await world.erp.get("/purchase-orders")).json()) == 1

    async def told() -> str:
        assert len(world.robots.messages) == 2, world.robots.messages
        return str(world.robots.messages[1].body["text"]["content"])

    assert "PR-2026-12-0109" in await eventually(told) and "未通过" in await eventually(told)
