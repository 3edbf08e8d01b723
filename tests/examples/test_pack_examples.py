"""The pack's example projects through a real `seamflow serve`, against the platform stand-ins.

Each example is copied as a user would run it; only the platform's address changes (the
stand-in's instead of oapi.dingtalk.com, qyapi.weixin.qq.com, open.feishu.cn or the ERP's), and
the secrets come from the environment. A webhook starts a run; the test waits for it to complete
and reads what the platform received.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from tests.support.platforms import DingTalk, Feishu, Kingdee, WeCom, dingtalk, feishu, kingdee, wecom
from tests.support.server import Server
from tests.support.wait import eventually

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

pytestmark = pytest.mark.timeout(90)


@asynccontextmanager
async def serving(example: str, tmp_path: Path, env: Mapping[str, str], base_url: str | None) -> AsyncIterator[Server]:
    project = tmp_path / example
    shutil.copytree(EXAMPLES / example, project)
    if base_url is not None:  # the one change: the stand-in's address instead of the platform's default
        with (project / "connections.yaml").open("a", encoding="utf-8") as connections:
            connections.write(f"  base_url: {base_url}\n")
    key = Fernet.generate_key().decode()  # signed-in tokens are kept encrypted in the store, as in production
    server = Server(project, env={**env, "SEAMFLOW_SECRET_KEY": key})
    server.env.pop("SEAMFLOW_DATABASE_URL", None)
    await server.start()
    try:
        yield server
    finally:
        server.kill()


async def run_hook(server: Server, path: str, body: Any) -> dict[str, Any]:
    """Post to a webhook; return the run once it has ended, asserting it completed."""
    async with server.client() as client:
        accepted = await client.post(f"/hooks/{path}", json=body)
        assert accepted.status_code == 202, accepted.text

        async def ended() -> dict[str, Any]:
            run: dict[str, Any] = (await client.get(f"/api/v1/runs/{accepted.json()['run_id']}")).json()
            assert run["status"] in ("completed", "dead_letter", "failed"), run["status"]
            return run

        run = await eventually(ended, timeout=30)
    assert run["status"] == "completed", run.get("error")
    return run


async def assert_nothing_secret(server: Server, secrets: list[str]) -> None:
    """No app secret, password, token or session id in the runs (the journal, through the API) or the log."""
    async with server.client() as client:
        runs = (await client.get("/api/v1/runs", params={"limit": 500})).json()
        items = runs["items"] if isinstance(runs, dict) else runs
        texts = [(await client.get(f"/api/v1/runs/{run['run_id']}")).text for run in items[:20]]
    texts.append(server.log_path.read_text("utf-8"))
    assert texts[:-1], "runs were read"
    leaked = [secret for secret in secrets for text in texts if secret in text]
    assert leaked == []


async def test_dingtalk_examples_notify_the_sales_team_and_an_approved_purchase(tmp_path: Path) -> None:
    env = {"SEAMFLOW_SECRET_DINGTALK_APPKEY": dingtalk.APPKEY, "SEAMFLOW_SECRET_DINGTALK_APPSECRET": dingtalk.APPSECRET}
    with DingTalk.in_thread() as platform:
        async with serving("dingtalk-app", tmp_path, env, platform.base_url) as server:
            await run_hook(
                server,
                "key-account-signed",
                {"customer": "上海申通物流有限公司", "amount": "1280000.00", "owner": "王伟"},
            )
            platform.fail_next(90018, "当前企业所有应用调用该接口频率超限", "processinstance/get")
            approval = await run_hook(
                server, "dingtalk/approval-finished", {"processInstanceId": "b2c3d4e5-0a1b-4c2d-8e3f-4a5b6c7d8e9f"}
            )
            tries = [s for s in approval["steps"] if s["step"] == "instance"]
            assert [(s["attempt"], s["status"]) for s in tries] == [(1, "retrying"), (2, "completed")]
            assert tries[0]["error"]["code"] == "connector.rate_limited"
            waited = datetime.fromisoformat(tries[1]["started"]) - datetime.fromisoformat(tries[0]["finished"])
            assert waited >= timedelta(seconds=1), "retried after the declared wait_s (a durable timer)"

            async def everyone_welcomed() -> None:  # the poll's first reading: every member is new
                welcomed = [n["userid_list"] for n in platform.sent if "欢迎加入" in n["msg"]["text"]["content"]]
                assert sorted(welcomed) == sorted(dingtalk.DEPARTMENT_USERS), len(welcomed)

            await eventually(everyone_welcomed, timeout=60)
            await assert_nothing_secret(server, [dingtalk.APPSECRET, *platform.issued])
    team = [n for n in platform.sent if n["msg"]["text"]["content"].startswith("新签大客户")]
    approved = [n for n in platform.sent if "已审批通过" in n["msg"]["text"]["content"]]
    assert [len(notice["userid_list"].split(",")) for notice in team] == [100, 100, 50], "at most 100 users each"
    assert ",".join(notice["userid_list"] for notice in team) == ",".join(dingtalk.DEPARTMENT_USERS)
    assert {notice["msg"]["text"]["content"] for notice in team} == {
        "新签大客户：上海申通物流有限公司，合同金额 ¥1280000.00，负责人 王伟"
    }
    [originator] = approved
    assert originator["userid_list"] == "manager0001"
    assert originator["msg"]["text"]["content"] == (
        "您的采购申请已审批通过：金额 ¥12800.00，供应商 上海申通印务有限公司。请联系采购部下单。"
    )
    assert platform.token_requests == 1, "one token for every call of the runs and the poll"


async def test_wecom_example_tells_the_applicant_that_the_expense_claim_was_approved(tmp_path: Path) -> None:
    env = {"SEAMFLOW_SECRET_WECOM_CORPSECRET": wecom.CORPSECRET}
    with WeCom.in_thread() as platform:
        async with serving("wecom-app", tmp_path, env, platform.base_url) as server:
            await run_hook(server, "wecom/approval-changed", {"sp_no": "202612070001", "sp_status": 2})
    assert platform.sent == [
        {
            "touser": "ZhangWei",
            "msgtype": "text",
            "agentid": 1000002,
            "text": {
                "content": "您的费用报销（杭州客户拜访差旅费）已审批通过，金额 ¥3580.50，财务将在3个工作日内付款。"
            },
        }
    ]


async def test_feishu_example_tells_the_applicant_once(tmp_path: Path) -> None:
    env = {"SEAMFLOW_SECRET_FEISHU_APP_SECRET": feishu.APP_SECRET}
    code = "81D31358-93AF-92D6-7425-01A5D67C4E71"
    with Feishu.in_thread() as platform:
        async with serving("feishu-app", tmp_path, env, f"{platform.base_url}/open-apis") as s:
            await run_hook(s, "feishu/approval-instance", {"instance_code": code, "status": "APPROVED"})
    [message] = platform.sent
    assert message["receive_id"] == "ou_3cda9c969f737aaa05e6915dce306cb9" and message["uuid"] == f"approved-{code}"
    assert json.loads(message["content"]) == {
        "text": "您的采购申请 202612070007 已由直属上级审批通过，请联系采购部下单。"
    }


async def test_kingdee_example_saves_the_contract_as_a_sales_order_and_checks_its_total(tmp_path: Path) -> None:
    with Kingdee.in_thread() as platform:
        env = {
            "SEAMFLOW_VAR_K3CLOUD_URL": f"{platform.base_url}/k3cloud",
            "SEAMFLOW_SECRET_KINGDEE_PASSWORD": kingdee.PASSWORD,
        }
        async with serving("kingdee-sales-orders", tmp_path, env, None) as server:
            contract = {
                "contract_no": "HT-2026-1207-001",
                "signed_on": "2026-12-07",
                "customer_no": "CUST0001",
                "owner": "王伟",
                "amount": "76495.00",
                "lines": [
                    {"material_no": "1.01.001", "qty": 5, "unit_price": "12900.00"},
                    {"material_no": "1.02.004", "qty": 5, "unit_price": "2399.00"},
                ],
            }
            run = await run_hook(server, "crm/contract-signed", contract)
            await assert_nothing_secret(server, [kingdee.PASSWORD, *platform.issued])
    [order] = platform.orders
    assert (order["FBillNo"], order["FCustId.FName"], Decimal(str(order["FBillAllAmount"]))) == (
        "XSDD000235",
        "上海申通物流有限公司",
        Decimal("76495.00"),
    )
    save = platform.api_calls("Save.common.kdsvc")[0].body["data"]["Model"]
    assert save["FSaleOrderEntry"][0] == {
        "FMaterialId": {"FNumber": "1.01.001"},
        "FQty": 5,
        "FTaxPrice": "12900.00",
        "FEntryNote": "CRM 合同 HT-2026-1207-001",
    }
    assert platform.token_requests == 1
    assert run["status"] == "completed"
