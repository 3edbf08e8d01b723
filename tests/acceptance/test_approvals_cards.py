"""Deciding from a Feishu interactive card: the callback is checked by Feishu's documented signature,
its timestamp, the person who clicked and the task's single-use token.

The test plays Feishu: it signs the card-action body with the app's Encrypt Key as Feishu's
documentation says (`X-Lark-Signature` = hex SHA-256 of timestamp + nonce + Encrypt Key + body).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tests.support.approvals import PEOPLE, T0, Site, company, output_of
from tests.support.oa_platforms import WeComSender, aes_key
from tests.support.platforms import Feishu, WeCom, feishu, wecom
from tests.support.runs import run_in_status
from tests.support.wait import eventually

ENCRYPT_KEY = "fs-encrypt-key-7d1c0e9a"
PROCURE = """
id: procure
trigger: {manual: {}}
steps:
  - id: approve
    approval:
      requester: "{{ event.body.requester }}"
      subject: "采购申请 {{ event.body.no }}"
      levels:
        - assignees: [{department_head: it}]
"""


@pytest.fixture
async def site(project_dir: Path, tmp_path: Path) -> AsyncIterator[Site]:
    env = {"SEAMFLOW_SECRET_FEISHU_CARD_KEY": ENCRYPT_KEY}
    async with company(project_dir, tmp_path, {"procure": PROCURE}, env=env) as found:
        yield found


def _signed(body: dict[str, Any], *, key: str = ENCRYPT_KEY, timestamp: int | None = None) -> dict[str, Any]:
    raw = json.dumps(body, ensure_ascii=False).encode()
    ts = str(timestamp if timestamp is not None else int(datetime.fromisoformat(T0).timestamp()) + 30)
    nonce = "n-4f1a9c"
    signature = hashlib.sha256(f"{ts}{nonce}{key}".encode() + raw).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Lark-Request-Timestamp": ts,
        "X-Lark-Request-Nonce": nonce,
        "X-Lark-Signature": signature,
    }
    return {"content": raw, "headers": headers}


def _encrypted(body: dict[str, Any]) -> dict[str, Any]:
    """The body as Feishu sends it with an Encrypt Key: AES-256-CBC, key SHA-256(Encrypt Key), IV first."""
    iv = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    plain = padder.update(json.dumps(body, ensure_ascii=False).encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(hashlib.sha256(ENCRYPT_KEY.encode()).digest()), modes.CBC(iv)).encryptor()
    return {"encrypt": base64.b64encode(iv + encryptor.update(plain) + encryptor.finalize()).decode()}


def _card_action_v2(token: str, user_id: str, decision: str) -> dict[str, Any]:
    """A `card.action.trigger` callback of schema 2.0."""
    return {
        "schema": "2.0",
        "header": {"event_type": "card.action.trigger", "event_id": "f7984f25108f8137722bb63cee927e66"},
        "event": {
            "operator": {"open_id": "ou_7d8a6e6df7621556ce0d21922b676706", "user_id": user_id},
            "action": {"value": {"token": token, "decision": decision}, "tag": "button"},
        },
    }


def _click(token: str, user_id: str, decision: str = "approve") -> dict[str, Any]:
    return {
        "open_id": "ou_7d8a6e6df7621556ce0d21922b676706",
        "user_id": user_id,
        "open_message_id": "om_dc13264520392913993dd051dba21dcf",
        "tenant_key": "736588c9260f175d",
        "action": {"value": {"token": token, "decision": decision}, "tag": "button"},
    }


async def test_a_signed_card_click_by_the_assignee_decides_once_and_forged_or_replayed_ones_are_refused(
    site: Site,
) -> None:
    run_id = await site.start("procure", {"no": "PR-2026-0601", "requester": "li.na"})
    [task] = await site.inbox("zhang.wei")
    link = (await site.post("zhang.wei", f"/api/v1/tasks/{task['id']}/link")).json()["url"]
    token = link.rsplit("/", 1)[1]
    async with httpx.AsyncClient(base_url=site.server.url, timeout=30) as feishu:
        handshake = await feishu.post(
            "/approve/card/feishu", **_signed({"type": "url_verification", "challenge": "c-1"})
        )
        assert handshake.status_code == 200 and handshake.json() == {"challenge": "c-1"}
        forged = await feishu.post("/approve/card/feishu", **_signed(_click(token, "zhang.wei"), key="guessed"))
        assert (forged.status_code, forged.json()["code"]) == (401, "approval.card_forged")
        stale = await feishu.post(
            "/approve/card/feishu", **_signed(_click(token, "zhang.wei"), timestamp=1_700_000_000)
        )
        assert (stale.status_code, stale.json()["code"]) == (401, "approval.card_forged")
        someone_else = await feishu.post("/approve/card/feishu", **_signed(_click(token, "chen.jing")))
        assert (someone_else.status_code, someone_else.json()["code"]) == (403, "approval.not_assignee")
        clicked = await feishu.post("/approve/card/feishu", **_signed(_click(token, "zhang.wei")))
        assert clicked.status_code == 200 and clicked.json()["toast"]["content"] == "已同意：采购申请 PR-2026-0601"
        replayed = await feishu.post("/approve/card/feishu", **_signed(_click(token, "zhang.wei", "reject")))
        assert (replayed.status_code, replayed.json()["code"]) == (409, "approval.already_decided")
    run = await run_in_status(site.admin, run_id, "completed")
    [level] = output_of(run, "approve")["levels"]
    assert (level["who"], level["decision"]) == ("zhang.wei", "approve")


async def test_an_encrypted_schema_2_card_action_decides_too(site: Site) -> None:
    run_id = await site.start("procure", {"no": "PR-2026-0602", "requester": "li.na"})
    [task] = await site.inbox("zhang.wei")
    token = (await site.post("zhang.wei", f"/api/v1/tasks/{task['id']}/link")).json()["url"].rsplit("/", 1)[1]
    async with httpx.AsyncClient(base_url=site.server.url, timeout=30) as feishu:
        clicked = await feishu.post(
            "/approve/card/feishu", **_signed(_encrypted(_card_action_v2(token, "zhang.wei", "reject")))
        )
    assert clicked.status_code == 200 and clicked.json()["toast"]["content"] == "已驳回：采购申请 PR-2026-0602"
    run = await run_in_status(site.admin, run_id, "completed")
    assert output_of(run, "approve")["decision"] == "rejected"


CARD_TOKEN, CORP = "wx-card-token-5Hk2", wecom.CORPID
CARD_KEY = aes_key()
WECOM_PROCURE = PROCURE.replace("levels:", "notify: {connection: wx}\n      levels:")


@pytest.fixture
async def wecom_site(project_dir: Path, tmp_path: Path) -> AsyncIterator[tuple[Site, WeCom]]:
    env = {
        "SEAMFLOW_SECRET_WECOM_CARD_TOKEN": CARD_TOKEN,
        "SEAMFLOW_SECRET_WECOM_CARD_AES_KEY": CARD_KEY,
        "SEAMFLOW_SECRET_WECOM_CORP_ID": CORP,
        "SEAMFLOW_SECRET_WECOM_CORPSECRET": wecom.CORPSECRET,
    }
    async with WeCom.start() as platform:
        connections = (
            f"wx:\n  connector: wecom_app\n  corpid: {CORP}\n  corpsecret: '{{{{ secrets.wecom_corpsecret }}}}'\n"
            f"  agent_id: 1000002\n  base_url: {platform.base_url}\n"
        )
        async with company(project_dir, tmp_path, {"procure": WECOM_PROCURE}, connections, env=env) as found:
            zhang = {**PEOPLE["zhang.wei"], "roles": ["approver"], "im_ids": {"wecom": "ZhangWei"}}
            answer = await found.admin.put("/api/v1/directory/users/zhang.wei", json=zhang)
            assert answer.status_code == 200 and answer.json()["im_ids"] == {"wecom": "ZhangWei"}, answer.text
            yield found, platform


def _card_event(key: str, user_id: str, task_id: str) -> str:
    """A `template_card_event` as WeCom documents it (document/path/90240), before encryption."""
    return (
        f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[{user_id}]]></FromUserName>"
        "<CreateTime>1796605230</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[template_card_event]]></Event><EventKey><![CDATA[{key}]]></EventKey>"
        f"<TaskId><![CDATA[{task_id}]]></TaskId><CardType><![CDATA[button_interaction]]></CardType>"
        "<ResponseCode><![CDATA[hx7wBqlk5m0rLr-n1H3n7Dv2LH2Hq4Jq]]></ResponseCode><AgentID>1000002</AgentID></xml>"
    )


async def test_a_wecom_template_card_click_decides_once_and_forged_stale_or_foreign_clicks_are_refused(
    wecom_site: tuple[Site, WeCom],
) -> None:
    site, platform = wecom_site
    run_id = await site.start("procure", {"no": "PR-2026-0603", "requester": "li.na"})

    async def card_sent() -> dict[str, Any]:
        assert len(platform.sent) == 1, platform.sent
        card: dict[str, Any] = platform.sent[0]["template_card"]
        return card

    card = await eventually(card_sent, timeout=30)
    assert platform.sent[0]["touser"] == "ZhangWei"  # the directory's im_ids.wecom
    keys = {b["key"].split(":", 1)[0]: b["key"] for b in card["button_list"]}
    now = int(datetime.fromisoformat(T0).timestamp()) + 30
    wecom_app = WeComSender(CARD_TOKEN, CARD_KEY, CORP)

    def click(user_id: str, decision: str = "approve", **kw: Any) -> tuple[str, bytes]:
        sender = kw.pop("sender", wecom_app)
        return sender.request(_card_event(keys[decision], user_id, card["task_id"]), timestamp=kw.get("ts", now))

    async with httpx.AsyncClient(base_url=site.server.url, timeout=30) as wecom_server:
        echo = await wecom_server.get(f"/approve/card/wecom?{wecom_app.verification('echo-3f9a1c', timestamp=now)}")
        assert echo.status_code == 200 and echo.text == "echo-3f9a1c"
        answers = {}
        for name, (query, body) in {
            "forged": click("ZhangWei", sender=WeComSender("guessed-token", CARD_KEY, CORP)),
            "other_key": click("ZhangWei", sender=WeComSender(CARD_TOKEN, aes_key(), CORP)),
            "stale": click("ZhangWei", ts=1_700_000_000),
            "foreign": click("ChenJing"),
            "by_login": click("zhang.wei"),  # not his WeCom id: the platform never sends it for him
            "clicked": click("ZhangWei"),
            "replayed": click("ZhangWei", "reject"),
        }.items():
            answers[name] = await wecom_server.post(f"/approve/card/wecom?{query}", content=body)
    codes = {name: (a.status_code, a.json()["code"] if a.content else "") for name, a in answers.items()}
    assert codes == {
        "forged": (401, "approval.card_forged"),
        "other_key": (401, "oa.decrypt_failed"),
        "stale": (401, "approval.card_forged"),
        "foreign": (403, "approval.not_assignee"),
        "by_login": (403, "approval.not_assignee"),
        "clicked": (200, ""),
        "replayed": (409, "approval.already_decided"),
    }
    run = await run_in_status(site.admin, run_id, "completed")
    [level] = output_of(run, "approve")["levels"]
    assert (level["who"], level["decision"]) == ("zhang.wei", "approve")


async def test_the_card_a_feishu_app_sends_to_the_approvers_feishu_id_decides_from_its_button(
    project_dir: Path, tmp_path: Path
) -> None:
    env = {"SEAMFLOW_SECRET_FEISHU_CARD_KEY": ENCRYPT_KEY, "SEAMFLOW_SECRET_FEISHU_APPSECRET": feishu.APP_SECRET}
    flow = PROCURE.replace("levels:", "notify: {connection: fs}\n      levels:")
    async with Feishu.start() as platform:
        connections = (
            f"fs:\n  connector: feishu_app\n  app_id: {feishu.APP_ID}\n"
            f"  app_secret: '{{{{ secrets.feishu_appsecret }}}}'\n  base_url: {platform.base_url}/open-apis\n"
        )
        async with company(project_dir, tmp_path, {"procure": flow}, connections, env=env) as site:
            zhang = {**PEOPLE["zhang.wei"], "roles": ["approver"], "im_ids": {"feishu": "5d9bd7c1"}}
            assert (await site.admin.put("/api/v1/directory/users/zhang.wei", json=zhang)).status_code == 200
            run_id = await site.start("procure", {"no": "PR-2026-0604", "requester": "li.na"})

            async def card_sent() -> dict[str, Any]:
                assert len(platform.sent) == 1, platform.sent
                return platform.sent[0]

            sent = await eventually(card_sent, timeout=30)
            assert (sent["receive_id"], sent["msg_type"]) == ("5d9bd7c1", "interactive")
            buttons = json.loads(sent["content"])["elements"][1]["actions"]
            approve = next(b["value"] for b in buttons if b.get("value", {}).get("decision") == "approve")
            async with httpx.AsyncClient(base_url=site.server.url, timeout=30) as feishu_server:
                by_login = await feishu_server.post(
                    "/approve/card/feishu", **_signed(_click(approve["token"], "zhang.wei"))
                )
                clicked = await feishu_server.post(
                    "/approve/card/feishu", **_signed(_card_action_v2(approve["token"], "5d9bd7c1", "approve"))
                )
            assert (by_login.status_code, by_login.json()["code"]) == (403, "approval.not_assignee")
            assert clicked.status_code == 200 and clicked.json()["toast"]["content"] == "已同意：采购申请 PR-2026-0604"
            run = await run_in_status(site.admin, run_id, "completed")
            assert output_of(run, "approve")["levels"][0]["who"] == "zhang.wei"
