"""`oa` triggers under `seamflow serve`: DingTalk, WeCom and Feishu approval callbacks verified, answered
in each platform's format, started once per platform event, and refused (nothing started) when forged,
encrypted under another key, stale or replayed. Secrets come from the project's secrets and reach no log.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.support.oa_platforms import DingTalkSender, FeishuSender, WeComSender, aes_key
from tests.support.runs import run_in_status
from tests.support.server import make_project, serve
from tests.support.wait import eventually

DING = DingTalkSender("dt-callback-token-4e7a", aes_key(), "dingoa5x7r2k9m")
WECOM = WeComSender("wc-callback-token-81b2", aes_key(), "ww5f2a9c3e71d0b846")
FEISHU = FeishuSender("fs-verification-6d0c", "fs-encrypt-key-2f9e71")

FLOWS = {
    "dingtalk": """
id: dingtalk-approvals
trigger:
  oa:
    platform: dingtalk
    path: oa/dingtalk
    token: "{{ secrets.dingtalk_token }}"
    aes_key: "{{ secrets.dingtalk_aes_key }}"
    receiver_id: "{{ env.DINGTALK_APP_KEY }}"
when: "{{ event.body.type == 'bpms_instance_change' }}"
steps:
  - id: seen
    transform: {status: "{{ event.body.status }}", instance: "{{ event.body.instance_id }}"}
""",
    "wecom": """
id: wecom-approvals
trigger:
  oa:
    platform: wecom
    path: oa/wecom
    token: "{{ secrets.wecom_token }}"
    aes_key: "{{ secrets.wecom_aes_key }}"
    receiver_id: ww5f2a9c3e71d0b846
steps:
  - id: seen
    transform: {status: "{{ event.body.status }}", applicant: "{{ event.body.raw.ApprovalInfo.Applyer.UserId }}"}
""",
    "feishu": """
id: feishu-approvals
trigger:
  oa:
    platform: feishu
    path: oa/feishu
    token: "{{ secrets.feishu_verification_token }}"
    aes_key: "{{ secrets.feishu_encrypt_key }}"
    dedupe_key: "{{ event.body.instance_id }}:{{ event.body.status }}"   # one run per instance and outcome
steps:
  - id: seen
    transform: {status: "{{ event.body.status }}", instance: "{{ event.body.instance_id }}"}
""",
}
ENV = {
    "SEAMFLOW_SECRET_DINGTALK_TOKEN": DING.token,
    "SEAMFLOW_SECRET_DINGTALK_AES_KEY": DING.key,
    "SEAMFLOW_VAR_DINGTALK_APP_KEY": DING.app_key,
    "SEAMFLOW_SECRET_WECOM_TOKEN": WECOM.token,
    "SEAMFLOW_SECRET_WECOM_AES_KEY": WECOM.key,
    "SEAMFLOW_SECRET_FEISHU_VERIFICATION_TOKEN": FEISHU.verification_token,
    "SEAMFLOW_SECRET_FEISHU_ENCRYPT_KEY": FEISHU.encrypt_key,
}
APPROVED = {
    "EventType": "bpms_instance_change",
    "processInstanceId": "5d8f1a3c-7e92-4b60-a1d4-9c3e5f7a2b81",
    "type": "finish",
    "result": "agree",
    "processCode": "PROC-9A2C4E6F-REIMB",
    "staffId": "wangfang02",
    "title": "王芳提交的报销",
}
WECOM_APPROVAL = (
    "<xml><ToUserName>ww5f2a9c3e71d0b846</ToUserName><FromUserName>sys</FromUserName><CreateTime>1765101600</CreateTime>"
    "<MsgType>event</MsgType><Event>sys_approval_change</Event><AgentID>3010040</AgentID><ApprovalInfo>"
    "<SpNo>202612070017</SpNo><SpName>采购申请</SpName><SpStatus>2</SpStatus><TemplateId>3Tka1eD6v6JfzhDMqPd3aMkFdxqtJMc2ZRioeFXk</TemplateId>"
    "<Applyer><UserId>LiuYang</UserId><Party>3</Party></Applyer><StatuChangeEvent>2</StatuChangeEvent></ApprovalInfo></xml>"
)


def _project(project_dir: Path) -> Path:
    return make_project(project_dir, FLOWS)


async def _runs(client: httpx.AsyncClient, flow: str) -> list[dict[str, Any]]:
    answer = await client.get("/api/v1/runs", params={"flow": flow})
    assert answer.status_code == 200, answer.text
    runs: list[dict[str, Any]] = answer.json()
    return runs


async def _dingtalk(
    client: httpx.AsyncClient, message: dict[str, Any], sender: DingTalkSender = DING
) -> httpx.Response:
    query, body = sender.request(message)
    return await client.post(f"/hooks/oa/dingtalk?{query}", content=body, headers={"Content-Type": "application/json"})


async def test_dingtalk_check_url_is_answered_and_a_delivered_twice_approval_starts_one_run(project_dir: Path) -> None:
    async with serve(_project(project_dir), env=ENV) as server, server.client() as client:
        handshake = await _dingtalk(client, {"EventType": "check_url"})
        assert handshake.status_code == 200, handshake.text
        assert DING.decrypt_answer(handshake.json()) == "success"

        first = await _dingtalk(client, APPROVED)
        again = await _dingtalk(client, APPROVED)  # DingTalk's retry: a new timestamp and nonce, the same event
        for answer in (first, again):
            assert answer.status_code == 200, answer.text
            assert DING.decrypt_answer(answer.json()) == "success"
        runs = await _runs(client, "dingtalk-approvals")
        assert len(runs) == 1
        run = await run_in_status(client, runs[0]["run_id"], "completed")
        assert run["steps"][0]["output"] == {"status": "approved", "instance": APPROVED["processInstanceId"]}

        await server.restart()  # the dedupe key is in the store, not in memory
        assert (await _dingtalk(client, APPROVED)).status_code == 200
        assert len(await _runs(client, "dingtalk-approvals")) == 1
    log = (project_dir / "serve.log").read_text()
    assert DING.token not in log and DING.key not in log


async def test_forged_wrong_key_stale_and_replayed_callbacks_are_refused_and_start_nothing(project_dir: Path) -> None:
    async with serve(_project(project_dir), env=ENV) as server, server.client() as client:
        query, body = DING.request(APPROVED)
        headers = {"Content-Type": "application/json"}
        forged = await client.post(
            f"/hooks/oa/dingtalk?{query.replace('signature=', 'signature=f')}", content=body, headers=headers
        )
        assert forged.status_code == 401 and forged.json()["code"] == "oa.signature_invalid"

        stranger = DingTalkSender(DING.token, aes_key(), DING.app_key)  # signs right, encrypts under another key
        wrong_key = await _dingtalk(client, APPROVED, stranger)
        assert wrong_key.status_code == 401 and wrong_key.json()["code"] == "oa.decrypt_failed"

        old_query, old_body = DING.request(APPROVED, timestamp_ms=1_445_827_045_067)
        stale = await client.post(f"/hooks/oa/dingtalk?{old_query}", content=old_body, headers=headers)
        assert stale.status_code == 400 and stale.json()["code"] == "oa.stale"

        assert (await _runs(client, "dingtalk-approvals")) == []
        accepted = await client.post(f"/hooks/oa/dingtalk?{query}", content=body, headers=headers)
        assert accepted.status_code == 200
        replayed = await client.post(f"/hooks/oa/dingtalk?{query}", content=body, headers=headers)
        assert replayed.status_code == 409 and replayed.json()["code"] == "oa.replayed"
        await server.restart()  # no process remembers it now: the store's claim refuses it
        again = await client.post(f"/hooks/oa/dingtalk?{query}", content=body, headers=headers)
        assert again.status_code == 409 and again.json()["code"] == "oa.replayed", again.text
        assert len(await _runs(client, "dingtalk-approvals")) == 1
        for answer in (forged, wrong_key, stale, replayed):
            assert DING.token not in answer.text and DING.key not in answer.text


async def test_wecom_verifies_its_url_with_get_and_its_approval_change_starts_a_run(project_dir: Path) -> None:
    async with serve(_project(project_dir), env=ENV) as server, server.client() as client:
        verify = await client.get(f"/hooks/oa/wecom?{WECOM.verification('6483017512648')}")
        assert verify.status_code == 200 and verify.text == "6483017512648"
        not_wecom = await client.get("/hooks/oa/dingtalk")
        assert not_wecom.status_code == 405

        query, body = WECOM.request(WECOM_APPROVAL)
        answer = await client.post(f"/hooks/oa/wecom?{query}", content=body, headers={"Content-Type": "text/xml"})
        assert answer.status_code == 200 and answer.text == ""
        query, body = WECOM.request(WECOM_APPROVAL)  # WeCom's retry of the same message
        assert (await client.post(f"/hooks/oa/wecom?{query}", content=body)).status_code == 200

        runs = await _runs(client, "wecom-approvals")
        assert len(runs) == 1
        run = await run_in_status(client, runs[0]["run_id"], "completed")
        assert run["steps"][0]["output"] == {"status": "approved", "applicant": "LiuYang"}


async def test_feishu_challenge_and_an_approval_instance_event_once_by_the_flows_dedupe_key(project_dir: Path) -> None:
    async with serve(_project(project_dir), env=ENV) as server, server.client() as client:
        headers, body = FEISHU.request(
            {"challenge": "c7d1e2f3-5a6b", "token": FEISHU.verification_token, "type": "url_verification"}
        )
        challenge = await client.post("/hooks/oa/feishu", content=body, headers=headers)
        assert challenge.status_code == 200 and challenge.json() == {"challenge": "c7d1e2f3-5a6b"}

        event = {
            "uuid": "8b7e4cf2a1d93e5f60c1b2a3d4e5f607",
            "token": FEISHU.verification_token,
            "ts": "1765101600.431",
            "type": "event_callback",
            "event": {
                "type": "approval_instance",
                "app_id": "cli_a1b2c3d4e5f6",
                "approval_code": "7C468A54-8745-2245-9675-08B7C63E7A85",
                "instance_code": "81D31358-93AF-92D6-7425-01A5D67C4E71",
                "status": "REJECTED",
            },
        }
        resent = {**event, "uuid": "0c9e2b7d4f1a8e3c5b6d7a8f9e0d1c2b"}  # another event id, the same outcome
        for delivered in (event, event, resent):
            headers, body = FEISHU.request(delivered)
            answer = await client.post("/hooks/oa/feishu", content=body, headers=headers)
            assert answer.status_code == 200, answer.text
        headers, body = FEISHU.request(event)
        headers["X-Lark-Signature"] = "0" * 64
        forged = await client.post("/hooks/oa/feishu", content=body, headers=headers)
        assert forged.status_code == 401

        runs = await eventually(lambda: _one(client, "feishu-approvals"))
        run = await run_in_status(client, runs[0]["run_id"], "completed")
        assert run["steps"][0]["output"] == {"status": "rejected", "instance": "81D31358-93AF-92D6-7425-01A5D67C4E71"}
    assert FEISHU.encrypt_key not in (project_dir / "serve.log").read_text()
    json.dumps(run)  # the run is plain JSON


async def _one(client: httpx.AsyncClient, flow: str) -> list[dict[str, Any]]:
    runs = await _runs(client, flow)
    assert len(runs) == 1, runs
    return runs
