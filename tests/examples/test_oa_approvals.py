"""examples/oa-approvals end to end against local WeCom and Feishu servers: a flow submits an approval
(WeCom `oa/applyevent`, Feishu `approval/v4/instances`), the approver decides on the platform, and the
platform's encrypted callback starts the decided flow once, however often it is delivered.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from tests.support.oa_platforms import FeishuSender, LocalFeishu, LocalWeCom, WeComSender, aes_key
from tests.support.runs import run_in_status
from tests.support.server import Server, free_port
from tests.support.wait import eventually

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "oa-approvals"
WECOM_SECRET, FEISHU_SECRET = "wecom-approval-secret-2b9d", "feishu-app-secret-7e4a"

pytestmark = pytest.mark.timeout(120)


@dataclass
class _World:
    server: Server
    admin: httpx.AsyncClient
    wecom: LocalWeCom
    feishu: LocalFeishu

    async def runs(self, flow: str, count: int) -> list[dict[str, Any]]:
        async def counted() -> list[dict[str, Any]]:
            runs: list[dict[str, Any]] = (await self.admin.get("/api/v1/runs", params={"flow": flow})).json()
            assert len(runs) == count, runs
            return runs

        return await eventually(counted, timeout=20)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[_World]:
    port = free_port()
    wecom = LocalWeCom(WECOM_SECRET, WeComSender("wecom-cb-token-5f1c", aes_key(), "ww5f2a9c3e71d0b846"))
    feishu = LocalFeishu("cli_a5f2e8c1d3b7900c", FEISHU_SECRET, FeishuSender("fs-verify-0a7d", "fs-encrypt-4c2b"))
    await wecom.start()
    await feishu.start()
    wecom.callback_url = f"http://127.0.0.1:{port}/hooks/oa/wecom"
    feishu.callback_url = f"http://127.0.0.1:{port}/hooks/oa/feishu"
    project = tmp_path / "project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("README.md"))
    env = {
        "SEAMFLOW_VAR_WECOM_URL": wecom.url,
        "SEAMFLOW_VAR_FEISHU_URL": feishu.url,
        "SEAMFLOW_VAR_WECOM_LEAVE_TEMPLATE": "3Tka1eD6v6JfzhDMqPd3aMkFdxqtJMc2ZRioeFXk",
        "SEAMFLOW_VAR_FEISHU_PURCHASE_APPROVAL": "7C468A54-8745-2245-9675-08B7C63E7A85",
        "SEAMFLOW_SECRET_WECOM_APPROVAL_SECRET": WECOM_SECRET,
        "SEAMFLOW_SECRET_FEISHU_APP_SECRET": FEISHU_SECRET,
        "SEAMFLOW_SECRET_WECOM_CALLBACK_TOKEN": wecom.sender.token,
        "SEAMFLOW_SECRET_WECOM_AES_KEY": wecom.sender.key,
        "SEAMFLOW_SECRET_FEISHU_VERIFICATION_TOKEN": feishu.sender.verification_token,
        "SEAMFLOW_SECRET_FEISHU_ENCRYPT_KEY": feishu.sender.encrypt_key,
        "SEAMFLOW_SECRET_KEY": Fernet.generate_key().decode(),
    }
    server = Server(project, env=env, port=port)
    await server.start()
    try:
        async with server.client() as admin:
            yield _World(server, admin, wecom, feishu)
    finally:
        server.kill()
        await wecom.stop()
        await feishu.stop()


async def test_a_leave_request_becomes_a_wecom_application_and_its_approval_comes_back_once(world: _World) -> None:
    leave = {"request_no": "QJ-2026-12-0009", "employee": "LiNa", "manager": "ZhangWei", "reason": "年假", "days": 3}
    answer = await world.admin.post("/hooks/hr/leave-requests", json=leave)
    assert answer.status_code == 202, answer.text
    await run_in_status(world.admin, answer.json()["run_id"], "completed")
    [(sp_no, application)] = world.wecom.applications.items()
    assert application["creator_userid"] == "LiNa"
    assert application["approver"] == [{"attr": 1, "userid": ["ZhangWei"]}]
    assert application["apply_data"]["contents"][0]["value"] == {"text": "QJ-2026-12-0009"}
    assert application["summary_list"] == ["请假单 QJ-2026-12-0009", "3 天"]

    assert (await world.wecom.decide(sp_no, approve=True)).status_code == 200
    assert (await world.wecom.deliver(sp_no)).status_code == 200  # WeCom's retry of the same message
    [run] = await world.runs("leave-decided-wecom", 1)
    done = await run_in_status(world.admin, run["run_id"], "completed")
    assert done["steps"][0]["output"] == {"sp_no": sp_no, "status": "approved", "applicant": "LiNa"}


async def test_a_purchase_becomes_a_feishu_instance_and_its_rejection_comes_back_once(world: _World) -> None:
    request = {
        "request_no": "CG-2026-12-0044",
        "requester_open_id": "ou_7d8a6e6df7621556ce0d21922b676706ccs",
        "item": '显示器 "27 寸" ×4',
        "amount": "6396.00",
    }
    first = await world.admin.post("/hooks/purchasing/feishu-requests", json=request)
    assert first.status_code == 202, first.text
    await run_in_status(world.admin, first.json()["run_id"], "completed")
    [(code, instance)] = world.feishu.instances.items()
    assert instance["uuid"] == "CG-2026-12-0044" and instance["open_id"] == request["requester_open_id"]
    assert instance["form"] == [
        {"id": "item", "type": "input", "value": '显示器 "27 寸" ×4'},
        {"id": "amount", "type": "amount", "value": "6396.00"},
    ]

    assert (await world.feishu.decide(code, "REJECTED")).status_code == 200
    assert (await world.feishu.deliver(code)).status_code == 200  # Feishu retries with the same uuid
    [run] = await world.runs("purchase-decided-feishu", 1)
    done = await run_in_status(world.admin, run["run_id"], "completed")
    decided = next(s["output"] for s in done["steps"] if s["step"] == "decided")
    assert decided["instance"] == code and decided["status"] == "rejected"
    assert "6396.00" in decided["form"]
