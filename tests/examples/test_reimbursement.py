"""The reimbursement example end to end: an expense request starts a DingTalk approval (a local DingTalk
server), the approver's decision comes back as DingTalk's encrypted callback, and the example finance
system (`examples/finance`, a real process) records the payment exactly once — the callback delivered
twice with a Seamflow restart between; a rejection sends the requester a work notification.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from tests.support.example_system import start_example_system
from tests.support.oa_platforms import DingTalkSender, LocalDingTalk, aes_key
from tests.support.server import Server, free_port
from tests.support.wait import eventually

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
FINANCE_TOKEN, APP_KEY, APP_SECRET = "fin-3b8e1c5a9d", "dingoa7r4t1x8q", "dt-app-secret-5c2e9a"
EXPENSE_SECRET, PROCESS_CODE = "expense-hook-secret-71f0", "PROC-4F7A1C2E-REIMB"
CALLBACK_TOKEN, CALLBACK_KEY = "dt-callback-7d21", aes_key()


pytestmark = pytest.mark.timeout(180)


@dataclass
class _World:
    server: Server
    dingtalk: LocalDingTalk
    finance: httpx.AsyncClient


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[_World]:
    finance_port, port = free_port(), free_port()
    finance = await start_example_system("finance", tmp_path, finance_port, {"FINANCE_API_TOKEN": FINANCE_TOKEN})
    dingtalk = LocalDingTalk(APP_KEY, APP_SECRET, DingTalkSender(CALLBACK_TOKEN, CALLBACK_KEY, APP_KEY))
    await dingtalk.start()
    dingtalk.callback_url = f"http://127.0.0.1:{port}/hooks/oa/dingtalk"
    project = tmp_path / "project"
    shutil.copytree(EXAMPLES / "reimbursement", project, ignore=shutil.ignore_patterns("README.md"))
    env = {
        "SEAMFLOW_VAR_DINGTALK_URL": dingtalk.url,
        "SEAMFLOW_VAR_DINGTALK_APP_KEY": APP_KEY,
        "SEAMFLOW_VAR_FINANCE_URL": f"http://127.0.0.1:{finance_port}",
        "SEAMFLOW_VAR_REIMBURSEMENT_PROCESS_CODE": PROCESS_CODE,
        "SEAMFLOW_SECRET_DINGTALK_APPSECRET": APP_SECRET,
        "SEAMFLOW_SECRET_DINGTALK_CALLBACK_TOKEN": CALLBACK_TOKEN,
        "SEAMFLOW_SECRET_DINGTALK_AES_KEY": CALLBACK_KEY,
        "SEAMFLOW_SECRET_FINANCE_TOKEN": FINANCE_TOKEN,
        "SEAMFLOW_SECRET_EXPENSE_WEBHOOK": EXPENSE_SECRET,
        "SEAMFLOW_SECRET_KEY": Fernet.generate_key().decode(),  # the DingTalk token is cached encrypted
    }
    server = Server(project, env=env, port=port)
    await server.start()
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{finance_port}", headers={"Authorization": f"Bearer {FINANCE_TOKEN}"}
        ) as finance_client:
            yield _World(server, dingtalk, finance_client)
    finally:
        server.kill()
        await dingtalk.stop()
        finance.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(finance.wait, 10)
        if finance.poll() is None:
            finance.kill()


async def submit(server: Server, request: dict[str, Any]) -> httpx.Response:
    body = json.dumps(request, ensure_ascii=False).encode()
    signature = hmac.new(EXPENSE_SECRET.encode(), body, hashlib.sha256).hexdigest()
    async with server.client() as client:
        return await client.post(
            "/hooks/expense/reimbursements",
            content=body,
            headers={"Content-Type": "application/json", "X-Signature": signature},
        )


ZHANG_WEI = {
    "request_no": "BX-2026-12-0031",
    "requester": {"userid": "zhangwei01", "name": "张伟", "mobile": "+86 138 1234 5678"},
    "amount": "1280.50",
    "reason": "上海客户拜访差旅费（高铁、酒店）",
    "approvers": ["liuyang03", "chenjing05"],
}
LI_NA = {
    "request_no": "BX-2026-12-0032",
    "requester": {"userid": "lina02", "name": "李娜", "mobile": "+86 139 8765 4321"},
    "amount": "356.00",
    "reason": "团队午餐",
    "approvers": ["liuyang03"],
}


async def _instance_of(dingtalk: LocalDingTalk, request_no: str) -> str:
    async def created() -> str:
        found = [i.id for i in dingtalk.instances.values() if {"name": "报销单号", "value": request_no} in i.form]
        assert len(found) == 1, dingtalk.instances
        return found[0]

    return await eventually(created, timeout=20)


async def test_an_approved_reimbursement_is_paid_once_even_when_the_callback_comes_twice_across_a_restart(
    world: _World,
) -> None:
    for _ in range(2):  # the expense app retries: one request number, one approval instance
        answer = await submit(world.server, ZHANG_WEI)
        assert answer.status_code in (200, 202), answer.text
    instance = await _instance_of(world.dingtalk, "BX-2026-12-0031")
    assert world.dingtalk.instances[instance].process_code == PROCESS_CODE
    assert world.dingtalk.instances[instance].approvers == ["liuyang03", "chenjing05"]

    delivered = await world.dingtalk.decide(instance, "agree")
    assert delivered.status_code == 200, delivered.text
    assert world.dingtalk.sender.decrypt_answer(delivered.json()) == "success"

    async def paid() -> list[dict[str, Any]]:
        payments: list[dict[str, Any]] = (await world.finance.get("/payments")).json()
        assert len(payments) == 1, payments
        return payments

    payment = (await eventually(paid, timeout=30))[0]
    assert payment["reference"] == instance
    assert (payment["payee"], payment["payee_name"], payment["amount"]) == ("zhangwei01", "张伟", "1280.50")
    assert "BX-2026-12-0031" in payment["purpose"]

    await world.server.restart()
    again = await world.dingtalk.deliver(world.dingtalk.finish_event(instance))  # DingTalk's retry
    assert again.status_code == 200, again.text
    async with world.server.client() as client:
        runs = (await client.get("/api/v1/runs", params={"flow": "reimbursement-decided"})).json()
    assert len(runs) == 1
    assert len((await world.finance.get("/payments")).json()) == 1
    assert world.dingtalk.notifications == []
    log = (world.server.project / "serve.log").read_text()
    for secret in (APP_SECRET, CALLBACK_KEY, CALLBACK_TOKEN, FINANCE_TOKEN):
        assert secret not in log


async def test_a_rejected_reimbursement_pays_nothing_and_tells_the_requester_in_dingtalk(world: _World) -> None:
    assert (await submit(world.server, LI_NA)).status_code == 202
    instance = await _instance_of(world.dingtalk, "BX-2026-12-0032")
    assert (await world.dingtalk.decide(instance, "refuse")).status_code == 200

    async def told() -> dict[str, Any]:
        assert len(world.dingtalk.notifications) == 1, world.dingtalk.notifications
        return world.dingtalk.notifications[0]

    notification = await eventually(told, timeout=30)
    assert notification["userid_list"] == "lina02"
    assert notification["agent_id"] == "2876554321"
    content = notification["msg"]["text"]["content"]
    assert "BX-2026-12-0032" in content and "356.00" in content and "未通过" in content
    assert (await world.finance.get("/payments")).json() == []
