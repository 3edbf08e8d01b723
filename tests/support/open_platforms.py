"""A local stand-in for the token endpoints and a few server APIs of DingTalk, WeCom and Feishu.

Each platform's documented sign-in is served: DingTalk `GET /gettoken?appkey=&appsecret=`
and WeCom `GET /cgi-bin/gettoken?corpid=&corpsecret=` answer `{"errcode": 0, "access_token",
"expires_in": 7200}`; Feishu `POST /open-apis/auth/v3/tenant_access_token/internal` with JSON
`{"app_id", "app_secret"}` answers `{"code": 0, "tenant_access_token", "expire": 7200}`. A wrong
secret gets the platform's error body. The APIs check the token: DingTalk and WeCom take it as
the `access_token` query parameter and refuse a bad one with HTTP 200 and errcode 40014 (or
42001 once expired); Feishu takes `Authorization: Bearer` and here refuses with HTTP 401.

`revoke()` invalidates every token issued so far (as when the app secret is reset, or another
client asked for a new token); `token_requests` counts sign-ins, `calls` the API calls.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

__all__ = ["APPS", "OpenPlatforms"]

APPS = {
    "dingtalk": ("dingxk7q2mzeoq3wuvz1", "ZkX1-dt-appsecret-9Jf0qWn3rT7yL2vB5cH8"),
    "wecom": ("ww6a3c9d0e5f7b21c4", "wecom-corpsecret-Q8nV4kT1xR6mZ3pL0sD7"),
    "feishu": ("cli_a4f0c2b7e9d81013", "feishu-appsecret-W2eR5tY8uI1oP4aS7dF0"),
}

_SURNAMES, _GIVEN = "王李张刘陈杨赵黄周吴", "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚"
_DEPARTMENT_10086 = {f"manager{n:04d}": _SURNAMES[n % 10] + _GIVEN[n % 20] for n in range(1, 251)}
"""DingTalk department 10086 (华东区销售部): 250 users, listed in three pages of 100."""


@dataclass
class OpenPlatforms:
    """The stand-in's state; see the module docstring."""

    base_url: str = ""
    valid: dict[str, str] = field(default_factory=dict)
    """Token → platform, for tokens not revoked."""
    token_requests: Counter[str] = field(default_factory=Counter)
    calls: list[tuple[str, str]] = field(default_factory=list)
    """(platform, the token the call carried) for every API call, accepted or not."""
    issued: list[str] = field(default_factory=list)
    """Every token handed out, revoked or not."""
    sent: list[dict[str, object]] = field(default_factory=list)
    """The bodies of the work notifications accepted."""
    token_delay_s: float = 0.0
    """How long DingTalk's token endpoint takes to answer: a slow one widens the window of a race."""

    def revoke(self) -> None:
        self.valid.clear()

    def reset(self) -> None:
        self.revoke()
        self.token_requests.clear()
        self.calls.clear()
        self.token_delay_s = 0.0
        self.issued.clear()
        self.sent.clear()

    def _issue(self, platform: str) -> str:
        self.token_requests[platform] += 1
        token = f"{platform[:2]}tok_{secrets.token_hex(12)}"
        self.valid[token] = platform
        self.issued.append(token)
        return token

    async def _dingtalk_token(self, request: web.Request) -> web.Response:
        key, secret = APPS["dingtalk"]
        if request.query.get("appkey") != key or request.query.get("appsecret") != secret:
            return web.json_response({"errcode": 40089, "errmsg": "不合法的corpid或corpsecret"})
        token = self._issue("dingtalk")
        if self.token_delay_s:
            await asyncio.sleep(self.token_delay_s)
        return web.json_response({"errcode": 0, "access_token": token, "errmsg": "ok", "expires_in": 7200})

    async def _wecom_token(self, request: web.Request) -> web.Response:
        corp, secret = APPS["wecom"]
        if request.query.get("corpid") != corp or request.query.get("corpsecret") != secret:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        token = self._issue("wecom")
        return web.json_response({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200})

    async def _feishu_token(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        if (body.get("app_id"), body.get("app_secret")) != APPS["feishu"]:
            return web.json_response({"code": 10014, "msg": "app secret invalid"})
        token = self._issue("feishu")
        return web.json_response({"code": 0, "msg": "ok", "tenant_access_token": token, "expire": 7200})

    async def _dingtalk_user(self, request: web.Request) -> web.Response:
        token = request.query.get("access_token", "")
        self.calls.append(("dingtalk", token))
        if self.valid.get(token) != "dingtalk":
            return web.json_response({"errcode": 40014, "errmsg": "不合法的access_token"})
        body = json.loads(await request.read())
        user = {"userid": body.get("userid"), "name": "王晓明", "title": "华东区销售经理", "dept_id_list": [10086]}
        return web.json_response({"errcode": 0, "errmsg": "ok", "result": user, "request_id": "5um7ykyaalsj"})

    async def _dingtalk_echo(self, request: web.Request) -> web.Response:
        """A careless API: answers with the URL it was called at, token included (200, or 400 on `refuse`)."""
        token = request.query.get("access_token", "")
        self.calls.append(("dingtalk", token))
        if self.valid.get(token) != "dingtalk":
            return web.json_response({"errcode": 40014, "errmsg": "不合法的access_token"})
        if request.match_info["what"] == "refuse":
            return web.json_response({"errcode": 400002, "errmsg": f"参数错误 {request.url}"}, status=400)
        return web.json_response({"errcode": 0, "errmsg": "ok", "seen_url": str(request.url), "token": token})

    async def _dingtalk_asyncsend(self, request: web.Request) -> web.Response:
        """`topapi/message/corpconversation/asyncsend_v2`: 33012 for an unknown user, -1 (busy) for `busy`."""
        token = request.query.get("access_token", "")
        self.calls.append(("dingtalk", token))
        if self.valid.get(token) != "dingtalk":
            return web.json_response({"errcode": 40014, "errmsg": "不合法的access_token"})
        body = json.loads(await request.read())
        users = str(body.get("userid_list", "")).split(",")
        if "busy" in users:
            return web.json_response({"errcode": -1, "errmsg": "系统繁忙"})
        if not all(user in _DEPARTMENT_10086 for user in users):
            return web.json_response({"errcode": 33012, "errmsg": "无效的USERID", "request_id": "r3nq9dc9w0ii"})
        self.sent.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok", "task_id": 256271667526, "request_id": "4jzllmte0wau"})

    async def _dingtalk_user_list(self, request: web.Request) -> web.Response:
        """`topapi/v2/user/list` with `cursor` and `size` (at most 100) in the body."""
        token = request.query.get("access_token", "")
        self.calls.append(("dingtalk", token))
        if self.valid.get(token) != "dingtalk":
            return web.json_response({"errcode": 40014, "errmsg": "不合法的access_token"})
        body = json.loads(await request.read())
        if body.get("dept_id") != 10086 or not 1 <= int(body.get("size", 0)) <= 100:
            return web.json_response({"errcode": 40009, "errmsg": "不合法的部门id或size"})
        cursor, size = int(body.get("cursor", 0)), int(body["size"])
        page = [
            {"userid": u, "name": n, "dept_id_list": [10086]}
            for u, n in list(_DEPARTMENT_10086.items())[cursor:][:size]
        ]
        result: dict[str, object] = {"has_more": cursor + size < len(_DEPARTMENT_10086), "list": page}
        if result["has_more"]:
            result["next_cursor"] = cursor + size
        return web.json_response({"errcode": 0, "errmsg": "ok", "result": result, "request_id": "1xk0v5v1y9cq"})

    async def _wecom_send(self, request: web.Request) -> web.Response:
        token = request.query.get("access_token", "")
        self.calls.append(("wecom", token))
        if self.valid.get(token) != "wecom":
            return web.json_response({"errcode": 42001, "errmsg": "access_token expired"})
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": "xPmJ3kWc7Fv9qNZb1tHQ"})

    async def _feishu_message(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.calls.append(("feishu", token))
        if self.valid.get(token) != "feishu":
            return web.json_response({"code": 99991663, "msg": "Invalid access token for authorization."}, status=401)
        return web.json_response(
            {"code": 0, "msg": "success", "data": {"message_id": "om_dc13264520392913993dd051dba21dcf"}}
        )

    @classmethod
    @asynccontextmanager
    async def start(cls) -> AsyncIterator[OpenPlatforms]:
        platforms = cls()
        app = web.Application()
        app.router.add_get("/dingtalk/gettoken", platforms._dingtalk_token)
        app.router.add_post("/dingtalk/topapi/v2/user/get", platforms._dingtalk_user)
        app.router.add_post("/dingtalk/topapi/{what:echo|refuse}", platforms._dingtalk_echo)
        app.router.add_post("/dingtalk/topapi/message/corpconversation/asyncsend_v2", platforms._dingtalk_asyncsend)
        app.router.add_post("/dingtalk/topapi/v2/user/list", platforms._dingtalk_user_list)
        app.router.add_get("/wecom/cgi-bin/gettoken", platforms._wecom_token)
        app.router.add_post("/wecom/cgi-bin/message/send", platforms._wecom_send)
        app.router.add_post("/feishu/open-apis/auth/v3/tenant_access_token/internal", platforms._feishu_token)
        app.router.add_post("/feishu/open-apis/im/v1/messages", platforms._feishu_message)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # bound by start()
        platforms.base_url = f"http://127.0.0.1:{port}"
        try:
            yield platforms
        finally:
            await runner.cleanup()
