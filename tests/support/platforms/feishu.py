"""Feishu's (飞书) open API (open.feishu.cn/open-apis) for a self-built app, as its documents describe it.

- `POST /open-apis/auth/v3/tenant_access_token/internal` `{app_id, app_secret}` →
  `{"code": 0, "tenant_access_token", "expire": 7200}`
  (https://open.feishu.cn/document/server-docs/authentication-management/access-token/tenant_access_token_internal);
  a wrong secret: code 10014.
- Every API takes `Authorization: Bearer <tenant_access_token>`; a missing token is HTTP 400 code
  99991661, an invalid or expired one HTTP 400 code 99991663; too many calls HTTP 429 code 99991400
  (https://open.feishu.cn/document/server-docs/api-call-guide/generic-error-code).
- `POST /open-apis/im/v1/messages?receive_id_type=open_id|user_id|union_id|email|chat_id`
  `{receive_id, msg_type, content (a JSON text), uuid}` → `{data: {message_id, …}}`; the same
  `uuid` within an hour sends nothing new (https://open.feishu.cn/document/server-docs/im-v1/message/create).
- `GET /open-apis/approval/v4/instances/{instance_id}` → `{data: {approval_name, status, form (a JSON
  text), task_list, timeline, …}}`; status PENDING, APPROVED, REJECTED, CANCELED, DELETED
  (https://open.feishu.cn/document/server-docs/approval-v4/instance/get).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web

from tests.support.platforms.base import Platform

__all__ = ["APP_ID", "APP_SECRET", "OPEN_IDS", "Feishu"]

APP_ID = "cli_a4f0c2b7e9d81013"
APP_SECRET = "feishu-appsecret-W2eR5tY8uI1oP4aS7dF0"
OPEN_IDS = {"ou_7d8a6e6df7621556ce0d21922b676706": "陈静", "ou_3cda9c969f737aaa05e6915dce306cb9": "刘洋"}


def _instance() -> dict[str, Any]:
    form = [
        {"id": "widget1", "name": "采购物品", "type": "input", "value": "ThinkPad X1 笔记本电脑 ×5"},
        {"id": "widget2", "name": "金额", "type": "amount", "value": "64500.00"},
    ]
    return {
        "approval_name": "采购申请",
        "approval_code": "7C468A54-8745-2245-9675-08B7C63E7A85",
        "instance_code": "81D31358-93AF-92D6-7425-01A5D67C4E71",
        "serial_number": "202612070007",
        "start_time": "1796607012000",
        "end_time": "1796614365000",
        "open_id": "ou_3cda9c969f737aaa05e6915dce306cb9",
        "user_id": "f7cb567e",
        "department_id": "od-8ec33ffec336c3a39a278bc25e931676",
        "status": "APPROVED",
        "uuid": "1a2b3c4d",
        "form": json.dumps(form, ensure_ascii=False),
        "task_list": [
            {
                "id": "7167411384727486468",
                "open_id": "ou_7d8a6e6df7621556ce0d21922b676706",
                "status": "APPROVED",
                "node_name": "直属上级",
                "start_time": "1796607012000",
                "end_time": "1796614365000",
            }
        ],
        "comment_list": [],
        "timeline": [
            {"type": "START", "create_time": "1796607012000", "open_id": "ou_3cda9c969f737aaa05e6915dce306cb9"},
            {
                "type": "PASS",
                "create_time": "1796614365000",
                "open_id": "ou_7d8a6e6df7621556ce0d21922b676706",
                "task_id": "7167411384727486468",
            },
        ],
    }


@dataclass
class Feishu(Platform):
    name: ClassVar[str] = "feishu"
    instances: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {"81D31358-93AF-92D6-7425-01A5D67C4E71": _instance()}
    )
    """Approval instances by instance code (the approvals helper adds its own)."""
    sent: list[dict[str, Any]] = field(default_factory=list)
    _uuids: dict[str, str] = field(default_factory=dict)

    def is_sign_in(self, path: str) -> bool:
        return path.endswith("/tenant_access_token/internal")

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/open-apis/auth/v3/tenant_access_token/internal", self._token)
        app.router.add_post("/open-apis/im/v1/messages", self._message)
        app.router.add_get("/open-apis/approval/v4/instances/{instance_id}", self._instance)

    async def _token(self, request: web.Request) -> web.Response:
        body = await request.json()
        if (body.get("app_id"), body.get("app_secret")) != (APP_ID, APP_SECRET):
            return web.json_response({"code": 10014, "msg": "app secret invalid"})
        token = self.issue_token()
        return web.json_response(
            {"code": 0, "msg": "ok", "tenant_access_token": token, "expire": self.token_lifetime_s}
        )

    def _refused(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return web.json_response({"code": 99991661, "msg": "Missing access token for authorization."}, status=400)
        if not self.is_valid(header.removeprefix("Bearer ")):
            return web.json_response(
                {
                    "code": 99991663,
                    "msg": "Invalid access token for authorization. Please make a request with token attached.",
                },
                status=400,
            )
        if self.is_too_frequent():
            return web.json_response(
                {"code": 99991400, "msg": "request trigger frequency limit"},
                status=429,
                headers={"x-ogw-ratelimit-limit": str(self.per_second), "x-ogw-ratelimit-reset": "3"},
            )
        failure = self.take_failure(request.path)
        if failure is not None:
            return web.json_response({"code": failure[0], "msg": failure[1]}, status=400)
        return None

    async def _message(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        body = await request.json()
        kind = request.query.get("receive_id_type")
        try:
            content = json.loads(body.get("content", ""))
        except (TypeError, ValueError):
            content = None
        if kind not in ("open_id", "user_id", "union_id", "email", "chat_id") or not isinstance(content, dict):
            return web.json_response(
                {"code": 230001, "msg": "Your request contains an invalid request parameter."}, status=400
            )
        if kind == "open_id" and body.get("receive_id") not in OPEN_IDS:
            return web.json_response({"code": 230013, "msg": "Bot has NO availability to this user."}, status=400)
        uuid = body.get("uuid")
        if uuid is None or uuid not in self._uuids:
            self.sent.append(body)
        message_id = self._uuids.setdefault(uuid, f"om_{len(self.sent):032d}") if uuid else f"om_{len(self.sent):032d}"
        return web.json_response(
            {
                "code": 0,
                "msg": "success",
                "data": {"message_id": message_id, "msg_type": body.get("msg_type"), "create_time": "1796614365000"},
            }
        )

    async def _instance(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        found = self.instances.get(request.match_info["instance_id"])
        if found is None:
            return web.json_response({"code": 1390003, "msg": "instance code not found"}, status=400)
        return web.json_response({"code": 0, "msg": "success", "data": found})
