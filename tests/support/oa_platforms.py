"""What DingTalk, WeCom and Feishu send to an `oa` trigger, built the way their documents say.

`DingTalkSender`, `WeComSender` and `FeishuSender` encrypt and sign a callback as the platform
would (fresh timestamp and nonce each time, like a platform's retry); `LocalDingTalk` is a small
local DingTalk server: `gettoken`, approval instances (`topapi/processinstance/create|get`), work
notifications, and approvers who decide an instance, which posts the encrypted
`bpms_instance_change` callback to the subscribed URL; `LocalWeCom` and `LocalFeishu` do the same
for WeCom's `oa/applyevent` and Feishu's `approval/v4/instances`.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from aiohttp import web

from seamflow import oa

__all__ = ["DingTalkSender", "FeishuSender", "LocalDingTalk", "LocalFeishu", "LocalWeCom", "WeComSender", "aes_key"]


def aes_key() -> str:
    """A fresh 43-character EncodingAESKey, as a platform console generates."""
    import base64

    return base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")


@dataclass
class DingTalkSender:
    token: str
    key: str
    app_key: str

    def request(self, message: dict[str, Any], *, timestamp_ms: int | None = None) -> tuple[str, bytes]:
        """(query string, body) of one delivery of `message`."""
        cipher = oa.MessageCipher(self.key, self.app_key)
        encrypted = cipher.encrypt(json.dumps(message, ensure_ascii=False))
        stamp = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
        nonce = secrets.token_hex(4)
        signature = oa.message_signature(self.token, stamp, nonce, encrypted)
        query = urlencode({"signature": signature, "timestamp": stamp, "nonce": nonce})
        return query, json.dumps({"encrypt": encrypted}).encode()

    def decrypt_answer(self, answer: dict[str, str]) -> str:
        """The text of Seamflow's encrypted answer, after checking its signature."""
        expected = oa.message_signature(self.token, answer["timeStamp"], answer["nonce"], answer["encrypt"])
        assert expected == answer["msg_signature"]
        return oa.MessageCipher(self.key, self.app_key).decrypt(answer["encrypt"])


@dataclass
class WeComSender:
    token: str
    key: str
    corp_id: str

    def _signed(self, encrypted: str, timestamp: int | None) -> dict[str, str]:
        stamp = str(timestamp if timestamp is not None else int(time.time()))
        nonce = str(secrets.randbelow(10**9))
        return {
            "msg_signature": oa.message_signature(self.token, stamp, nonce, encrypted),
            "timestamp": stamp,
            "nonce": nonce,
        }

    def verification(self, echo: str, *, timestamp: int | None = None) -> str:
        """The query of WeCom's GET that verifies the URL."""
        encrypted = oa.MessageCipher(self.key, self.corp_id).encrypt(echo)
        return urlencode({**self._signed(encrypted, timestamp), "echostr": encrypted})

    def request(self, xml: str, *, timestamp: int | None = None) -> tuple[str, bytes]:
        encrypted = oa.MessageCipher(self.key, self.corp_id).encrypt(xml)
        body = (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt>"
            "<AgentID><![CDATA[1000002]]></AgentID></xml>"
        )
        return urlencode(self._signed(encrypted, timestamp)), body.encode()


@dataclass
class FeishuSender:
    verification_token: str
    encrypt_key: str

    def request(self, event: dict[str, Any], *, timestamp: int | None = None) -> tuple[dict[str, str], bytes]:
        """(headers, body) of one delivery of `event`."""
        body = json.dumps({"encrypt": oa.FeishuCipher(self.encrypt_key).encrypt(json.dumps(event, ensure_ascii=False))})
        raw = body.encode()
        stamp = str(timestamp if timestamp is not None else int(time.time()))
        nonce = secrets.token_hex(8)
        headers = {
            "Content-Type": "application/json",
            "X-Lark-Request-Timestamp": stamp,
            "X-Lark-Request-Nonce": nonce,
            "X-Lark-Signature": oa.feishu_signature(stamp, nonce, self.encrypt_key, raw),
        }
        return headers, raw


@dataclass
class _Instance:
    id: str
    process_code: str
    originator: str
    form: list[dict[str, str]]
    approvers: list[str]
    status: str = "RUNNING"
    result: str = ""


@dataclass
class LocalDingTalk:
    """A local DingTalk: the server API an app calls and the callbacks it subscribes to."""

    app_key: str
    app_secret: str
    sender: DingTalkSender
    callback_url: str = ""
    instances: dict[str, _Instance] = field(default_factory=dict)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[int] = field(default_factory=list)
    """HTTP status of each callback delivered."""
    _tokens: set[str] = field(default_factory=set)
    _runner: web.AppRunner | None = None
    url: str = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/gettoken", self._token)
        app.router.add_post("/topapi/processinstance/create", self._create)
        app.router.add_post("/topapi/processinstance/get", self._get)
        app.router.add_post("/topapi/message/corpconversation/asyncsend_v2", self._notify)
        self._runner, self.url = await _serve(app)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _authorized(self, request: web.Request) -> bool:
        return request.query.get("access_token", "") in self._tokens

    async def _token(self, request: web.Request) -> web.Response:
        if request.query.get("appkey") != self.app_key or request.query.get("appsecret") != self.app_secret:
            return web.json_response({"errcode": 40089, "errmsg": "不合法的corpid或corpsecret"})
        token = secrets.token_hex(16)
        self._tokens.add(token)
        return web.json_response({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200})

    async def _create(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"errcode": 40014, "errmsg": "不合法的access_token"})
        body = await request.json()
        instance_id = f"{secrets.token_hex(4)}-{secrets.token_hex(2)}-{secrets.token_hex(2)}-{secrets.token_hex(6)}"
        self.instances[instance_id] = _Instance(
            instance_id,
            body["process_code"],
            body["originator_user_id"],
            list(body["form_component_values"]),
            str(body.get("approvers", "")).split(","),
        )
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "process_instance_id": instance_id, "request_id": secrets.token_hex(6)}
        )

    async def _get(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"errcode": 40014, "errmsg": "不合法的access_token"})
        found = self.instances.get((await request.json()).get("process_instance_id", ""))
        if found is None:
            return web.json_response({"errcode": 1, "errmsg": "审批实例不存在"})
        instance = {
            "title": "报销",
            "status": found.status,
            "result": found.result,
            "originator_userid": found.originator,
            "form_component_values": found.form,
        }
        return web.json_response({"errcode": 0, "errmsg": "ok", "process_instance": instance})

    async def _notify(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"errcode": 40014, "errmsg": "不合法的access_token"})
        self.notifications.append(await request.json())
        return web.json_response({"errcode": 0, "errmsg": "ok", "task_id": len(self.notifications), "request_id": "r"})

    def finish_event(self, instance_id: str) -> dict[str, Any]:
        found = self.instances[instance_id]
        return {
            "EventType": "bpms_instance_change",
            "processInstanceId": found.id,
            "corpId": "ding8a2f5c7e9b1d3f60",
            "createTime": int(time.time() * 1000) - 60_000,
            "finishTime": int(time.time() * 1000),
            "title": f"{found.originator}提交的报销",
            "type": "finish",
            "result": found.result,
            "staffId": found.originator,
            "processCode": found.process_code,
            "bizCategoryId": "",
            "url": f"https://aflow.dingtalk.com/dingtalk/mobile/homepage.htm#/approval?procInstId={found.id}",
        }

    async def decide(self, instance_id: str, result: str) -> httpx.Response:
        """An approver decides (`agree` or `refuse`): the instance completes and the callback is posted."""
        found = self.instances[instance_id]
        found.status, found.result = "COMPLETED", result
        return await self.deliver(self.finish_event(instance_id))

    async def deliver(self, message: dict[str, Any]) -> httpx.Response:
        """Post one delivery of `message` to the subscribed URL (again: a platform's retry)."""
        query, body = self.sender.request(message)
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.post(
                f"{self.callback_url}?{query}", content=body, headers={"Content-Type": "application/json"}
            )
        self.deliveries.append(answer.status_code)
        return answer


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)  # the access log would show access tokens
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


@dataclass
class LocalWeCom:
    """A local WeCom: `gettoken`, approval applications (`oa/applyevent`, `oa/getapprovaldetail`) and
    approvers whose decision posts the encrypted `sys_approval_change` callback."""

    corp_secret: str
    sender: WeComSender
    callback_url: str = ""
    applications: dict[str, dict[str, Any]] = field(default_factory=dict)
    _tokens: set[str] = field(default_factory=set)
    _runner: web.AppRunner | None = None
    url: str = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/cgi-bin/gettoken", self._token)
        app.router.add_post("/cgi-bin/oa/applyevent", self._apply)
        app.router.add_post("/cgi-bin/oa/getapprovaldetail", self._detail)
        self._runner, self.url = await _serve(app)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _token(self, request: web.Request) -> web.Response:
        if request.query.get("corpid") != self.sender.corp_id or request.query.get("corpsecret") != self.corp_secret:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        token = secrets.token_hex(16)
        self._tokens.add(token)
        return web.json_response({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200})

    async def _apply(self, request: web.Request) -> web.Response:
        if request.query.get("access_token", "") not in self._tokens:
            return web.json_response({"errcode": 40014, "errmsg": "invalid access_token"})
        body = await request.json()
        missing = [k for k in ("creator_userid", "template_id", "apply_data") if k not in body]
        if missing or not isinstance(body["apply_data"].get("contents"), list):
            return web.json_response({"errcode": 301025, "errmsg": f"invalid apply_data: {missing}"})
        sp_no = f"20261207{len(self.applications) + 1:06d}"
        self.applications[sp_no] = body | {"sp_status": "1"}
        return web.json_response({"errcode": 0, "errmsg": "ok", "sp_no": sp_no})

    async def _detail(self, request: web.Request) -> web.Response:
        if request.query.get("access_token", "") not in self._tokens:
            return web.json_response({"errcode": 40014, "errmsg": "invalid access_token"})
        sp_no = (await request.json()).get("sp_no", "")
        found = self.applications.get(sp_no)
        if found is None:
            return web.json_response({"errcode": 301055, "errmsg": "no such approval"})
        info = {"sp_no": sp_no, "sp_status": int(found["sp_status"]), "template_id": found["template_id"]}
        return web.json_response({"errcode": 0, "errmsg": "ok", "info": info})

    def change_message(self, sp_no: str) -> str:
        found = self.applications[sp_no]
        status = found["sp_status"]
        return (
            f"<xml><ToUserName><![CDATA[{self.sender.corp_id}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
            f"<CreateTime>{found['changed']}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            "<Event><![CDATA[sys_approval_change]]></Event><AgentID>3010040</AgentID><ApprovalInfo>"
            f"<SpNo>{sp_no}</SpNo><SpName><![CDATA[请假]]></SpName><SpStatus>{status}</SpStatus>"
            f"<TemplateId><![CDATA[{found['template_id']}]]></TemplateId><ApplyTime>1765090000</ApplyTime>"
            f"<Applyer><UserId><![CDATA[{found['creator_userid']}]]></UserId><Party><![CDATA[2]]></Party></Applyer>"
            f"<StatuChangeEvent>{2 if status == '2' else 3}</StatuChangeEvent></ApprovalInfo></xml>"
        )

    async def decide(self, sp_no: str, approve: bool) -> httpx.Response:
        found = self.applications[sp_no]
        found["sp_status"], found["changed"] = ("2" if approve else "3"), int(time.time())
        return await self.deliver(sp_no)

    async def deliver(self, sp_no: str) -> httpx.Response:
        query, body = self.sender.request(self.change_message(sp_no))
        async with httpx.AsyncClient(timeout=10) as client:
            return await client.post(f"{self.callback_url}?{query}", content=body)


@dataclass
class LocalFeishu:
    """A local Feishu: the tenant token, approval instances (`approval/v4/instances`, idempotent by
    `uuid`) and approvers whose decision posts the encrypted, signed `approval_instance` event."""

    app_id: str
    app_secret: str
    sender: FeishuSender
    callback_url: str = ""
    instances: dict[str, dict[str, Any]] = field(default_factory=dict)
    _tokens: set[str] = field(default_factory=set)
    _runner: web.AppRunner | None = None
    url: str = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/open-apis/auth/v3/tenant_access_token/internal", self._token)
        app.router.add_post("/open-apis/approval/v4/instances", self._create)
        app.router.add_get("/open-apis/approval/v4/instances/{code}", self._get)
        self._runner, self.url = await _serve(app)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization", "").removeprefix("Bearer ") in self._tokens

    async def _token(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("app_id") != self.app_id or body.get("app_secret") != self.app_secret:
            return web.json_response({"code": 10014, "msg": "app secret invalid"})
        token = "t-" + secrets.token_hex(16)
        self._tokens.add(token)
        return web.json_response({"code": 0, "msg": "ok", "tenant_access_token": token, "expire": 7200})

    async def _create(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"code": 99991663, "msg": "Invalid access token for authorization."})
        body = await request.json()
        form = json.loads(body["form"])  # a JSON text, as Feishu documents it
        same = [c for c, i in self.instances.items() if body.get("uuid") and i.get("uuid") == body["uuid"]]
        if same:
            return web.json_response({"code": 0, "msg": "success", "data": {"instance_code": same[0]}})
        code = f"{secrets.token_hex(4).upper()}-{secrets.token_hex(2).upper()}-{secrets.token_hex(6).upper()}"
        self.instances[code] = body | {"form": form, "status": "PENDING"}
        return web.json_response({"code": 0, "msg": "success", "data": {"instance_code": code}})

    async def _get(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"code": 99991663, "msg": "Invalid access token for authorization."})
        found = self.instances.get(request.match_info["code"])
        if found is None:
            return web.json_response({"code": 1390003, "msg": "instance code not found"})
        data = {"approval_code": found["approval_code"], "status": found["status"], "form": json.dumps(found["form"])}
        return web.json_response({"code": 0, "msg": "success", "data": data})

    async def decide(self, code: str, status: str) -> httpx.Response:
        found = self.instances[code]
        found["status"], found["event_uuid"] = status, secrets.token_hex(16)
        return await self.deliver(code)

    async def deliver(self, code: str) -> httpx.Response:
        found = self.instances[code]
        event = {
            "uuid": found["event_uuid"],
            "token": self.sender.verification_token,
            "ts": f"{time.time():.3f}",
            "type": "event_callback",
            "event": {
                "app_id": self.app_id,
                "approval_code": found["approval_code"],
                "instance_code": code,
                "status": found["status"],
                "type": "approval_instance",
                "operate_time": str(int(time.time() * 1000)),
            },
        }
        headers, body = self.sender.request(event)
        async with httpx.AsyncClient(timeout=10) as client:
            return await client.post(self.callback_url, content=body, headers=headers)
