"""A local stand-in for the DingTalk, WeCom and Feishu group-robot webhooks that checks their documented formats.

Each platform's path is served as documented (`/robot/send?access_token=`,
`/cgi-bin/webhook/send?key=`, `/open-apis/bot/v2/hook/<token>`). A request must be UTF-8 JSON
in the platform's message format; a robot with a secret checks the signature (recomputed from
the shared secret) and refuses a timestamp more than an hour from now. Refusals use the
platform's documented error body. Accepted messages are kept in `messages`.

`async with ImRobots.start() as robots:`, then `robots.add("dingtalk", token, secret)` gives a
webhook URL. `robots.rate_limit_next = n` answers the next n messages with the platform's
rate-limit error; `fail_status` answers with a bare HTTP status instead; `delay_s` delays answers.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

__all__ = ["ImRobots", "Message"]

_HOUR_S = 3600
_OK = {
    "dingtalk": {"errcode": 0, "errmsg": "ok"},
    "wecom": {"errcode": 0, "errmsg": "ok"},
    "feishu": {"code": 0, "data": {}, "msg": "success"},
}
_RATE_LIMITED = {
    "dingtalk": {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"},
    "wecom": {"errcode": 45009, "errmsg": "api freq out of limit"},
    "feishu": {"code": 9499, "data": {}, "msg": "too many request"},
}
_NO_ROBOT = {
    "dingtalk": {"errcode": 300005, "errmsg": "token is not exist"},
    "wecom": {"errcode": 93000, "errmsg": "invalid webhook url"},
    "feishu": {"code": 19001, "data": {}, "msg": "param invalid: incoming webhook access token invalid"},
}
_BAD_SIGN = {
    "dingtalk": {"errcode": 310000, "errmsg": "sign not match"},
    "feishu": {
        "code": 19021,
        "data": {},
        "msg": "sign match fail or timestamp is not within one hour from current time",
    },
}
_BAD_TIME = {
    "dingtalk": {"errcode": 310000, "errmsg": "invalid timestamp"},
    "feishu": _BAD_SIGN["feishu"],
}


def _bad_format(platform: str, problem: str) -> dict[str, Any]:
    if platform == "feishu":
        return {"code": 19002, "data": {}, "msg": f"params error, {problem}"}
    return {"errcode": 40035 if platform == "dingtalk" else 40058, "errmsg": f"invalid parameter: {problem}"}


@dataclass(frozen=True, slots=True)
class Message:
    """One accepted message: the platform, the robot's token and the JSON body as received."""

    platform: str
    token: str
    body: dict[str, Any]


class _Refused(Exception):
    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__(answer)
        self.answer = answer


@dataclass(slots=True)
class ImRobots:
    """The robots' state; `ImRobots.start()` serves them on 127.0.0.1."""

    url: str = ""
    secrets: dict[tuple[str, str], str | None] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    rate_limit_next: int = 0
    fail_status: int | None = None
    delay_s: float = 0.0

    def add(self, platform: str, token: str, secret: str | None = None) -> str:
        """Create a robot and return its webhook URL."""
        self.secrets[(platform, token)] = secret
        paths = {
            "dingtalk": f"/robot/send?access_token={token}",
            "wecom": f"/cgi-bin/webhook/send?key={token}",
            "feishu": f"/open-apis/bot/v2/hook/{token}",
        }
        return self.url + paths[platform]

    def reset(self) -> None:
        self.secrets.clear()
        self.messages.clear()
        self.rate_limit_next, self.fail_status, self.delay_s = 0, None, 0.0

    @classmethod
    @asynccontextmanager
    async def start(cls) -> AsyncIterator[ImRobots]:
        robots = cls()
        app = web.Application()
        app.router.add_post("/robot/send", robots._handler("dingtalk", lambda r: r.query.get("access_token", "")))
        app.router.add_post("/cgi-bin/webhook/send", robots._handler("wecom", lambda r: r.query.get("key", "")))
        app.router.add_post(
            "/open-apis/bot/v2/hook/{token}", robots._handler("feishu", lambda r: r.match_info["token"])
        )
        runner = web.AppRunner(app, access_log=None)  # the access log would show the tokens
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        robots.url = f"http://127.0.0.1:{port}"
        try:
            yield robots
        finally:
            await runner.cleanup()

    def _handler(self, platform: str, token_of: Callable[[web.Request], str]) -> Any:
        async def handle(request: web.Request) -> web.Response:
            await request.read()  # before any delay: the client may give up and close the socket
            if self.delay_s:
                await asyncio.sleep(self.delay_s)  # a slow robot is what a test asks for here
            if self.fail_status is not None:
                return web.json_response({"error": "failure"}, status=self.fail_status)
            try:
                token = token_of(request)
                if (platform, token) not in self.secrets:
                    raise _Refused(_NO_ROBOT[platform])
                body = await _json_body(request, platform)
                _check_format(platform, body)
                secret = self.secrets[(platform, token)]
                if secret is not None:
                    _check_signature(platform, secret, body, request.query_string)
                if self.rate_limit_next:
                    self.rate_limit_next -= 1
                    raise _Refused(_RATE_LIMITED[platform])
            except _Refused as refusal:
                return _answer(refusal.answer)
            self.messages.append(Message(platform, token, body))
            return _answer(_OK[platform])

        return handle


def _answer(body: dict[str, Any]) -> web.Response:
    return web.Response(body=json.dumps(body, ensure_ascii=False).encode(), content_type="application/json")


async def _json_body(request: web.Request, platform: str) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise _Refused(_bad_format(platform, f"content type {request.content_type}"))
    try:
        body = json.loads((await request.read()).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _Refused(_bad_format(platform, "body is not UTF-8 JSON")) from None
    if not isinstance(body, dict):
        raise _Refused(_bad_format(platform, "body is not an object"))
    return body


def _is_str(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _is_strs(value: Any) -> bool:
    return isinstance(value, list) and all(_is_str(v) for v in value)


def _check_format(platform: str, body: dict[str, Any]) -> None:
    problem = {"dingtalk": _dingtalk_problem, "wecom": _wecom_problem, "feishu": _feishu_problem}[platform](body)
    if problem:
        raise _Refused(_bad_format(platform, problem))


def _dingtalk_problem(body: dict[str, Any]) -> str | None:
    kind = body.get("msgtype")
    if kind not in ("text", "markdown", "actionCard") or set(body) - {"msgtype", kind, "at"}:
        return f"msgtype {kind} with keys {sorted(body)}"
    part = body.get(kind)
    at = body.get("at", {})
    if not isinstance(part, dict) or not isinstance(at, dict):
        return f"{kind} or at is not an object"
    if set(at) - {"atMobiles", "atUserIds", "isAtAll"} or not all(
        _is_strs(at.get(k, [])) for k in ("atMobiles", "atUserIds")
    ):
        return "at"
    if not isinstance(at.get("isAtAll", False), bool):
        return "at.isAtAll"
    if kind == "text":
        return None if _is_str(part.get("content")) else "text.content"
    if not (_is_str(part.get("title")) and _is_str(part.get("text"))):
        return f"{kind}.title/text"
    if kind == "actionCard":
        single = _is_str(part.get("singleTitle")) and _is_str(part.get("singleURL"))
        btns = part.get("btns")
        many = isinstance(btns, list) and all(_is_str(b.get("title")) and _is_str(b.get("actionURL")) for b in btns)
        return None if single or many else "actionCard buttons"
    return None


def _wecom_problem(body: dict[str, Any]) -> str | None:
    kind = body.get("msgtype")
    if kind not in ("text", "markdown", "template_card") or set(body) != {"msgtype", kind}:
        return f"msgtype {kind} with keys {sorted(body)}"
    part = body[kind]
    if kind == "text":
        if set(part) - {"content", "mentioned_list", "mentioned_mobile_list"}:
            return "text keys"
        if not all(_is_strs(part.get(k, [])) for k in ("mentioned_list", "mentioned_mobile_list")):
            return "mentions"
        content = part.get("content")
        return None if _is_str(content) and len(content.encode()) <= 2048 else "text.content"
    if kind == "markdown":
        content = part.get("content")
        return None if set(part) == {"content"} and _is_str(content) and len(content.encode()) <= 4096 else "markdown"
    action = part.get("card_action", {})
    if part.get("card_type") != "text_notice" or not _is_str(part.get("main_title", {}).get("title")):
        return "template_card main_title"
    return None if action.get("type") == 1 and _is_str(action.get("url")) else "template_card card_action"


def _feishu_problem(body: dict[str, Any]) -> str | None:
    kind = body.get("msg_type")
    field_name = {"text": "content", "interactive": "card"}.get(str(kind))
    if field_name is None or set(body) - {"msg_type", field_name, "timestamp", "sign"}:
        return f"msg_type {kind} with keys {sorted(body)}"
    part = body[field_name]
    if kind == "text":
        return None if isinstance(part, dict) and _is_str(part.get("text")) else "content.text"
    elements = part.get("elements") if isinstance(part, dict) else None
    if not isinstance(elements, list) or not all(isinstance(e, dict) and _is_str(e.get("tag")) for e in elements):
        return "card.elements"
    return None


def _check_signature(platform: str, secret: str, body: dict[str, Any], query: str) -> None:
    if platform == "dingtalk":
        params = parse_qs(query)  # decodes the URL-encoded sign
        stamp, sign = params.get("timestamp", [""])[0], params.get("sign", [""])[0]
        if not stamp.isdigit():
            raise _Refused(_BAD_SIGN[platform])
        if abs(int(stamp) / 1000 - time.time()) > _HOUR_S:
            raise _Refused(_BAD_TIME[platform])
        digest = hmac.new(secret.encode(), f"{stamp}\n{secret}".encode(), hashlib.sha256).digest()
    else:
        stamp, sign = str(body.get("timestamp", "")), str(body.get("sign", ""))
        if not isinstance(body.get("timestamp"), str) or not stamp.isdigit() or not isinstance(body.get("sign"), str):
            raise _Refused(_BAD_SIGN[platform])
        if abs(int(stamp) - time.time()) > _HOUR_S:
            raise _Refused(_BAD_TIME[platform])
        digest = hmac.new(f"{stamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
    if not hmac.compare_digest(base64.b64encode(digest).decode(), sign):
        raise _Refused(_BAD_SIGN[platform])
