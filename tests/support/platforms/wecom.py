"""WeCom's (企业微信) server API (qyapi.weixin.qq.com) for a self-built app, as its documents describe it.

- `GET /cgi-bin/gettoken?corpid=&corpsecret=` → `{"errcode": 0, "access_token", "expires_in": 7200}`
  (https://developer.work.weixin.qq.com/document/path/91039); a wrong secret: errcode 40001.
- Every API takes `?access_token=`; an invalid token: errcode 40014, an expired one 42001, with
  HTTP 200; calling too often: 45009 (https://developer.work.weixin.qq.com/document/path/90313).
- `POST /cgi-bin/message/send` `{touser, msgtype, agentid, text: {content}}` → `{msgid, invaliduser}`
  (a `template_card` needs a `task_id`);
  no valid receiver at all: errcode 81013 (https://developer.work.weixin.qq.com/document/path/90236).
- `POST /cgi-bin/oa/getapprovaldetail` `{sp_no}` → `{info: {sp_no, sp_name, sp_status, applyer,
  sp_record, apply_data, …}}`; sp_status 1 审批中, 2 已通过, 3 已驳回, 4 已撤销
  (https://developer.work.weixin.qq.com/document/path/91983).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web

from tests.support.platforms.base import Platform

__all__ = ["CORPID", "CORPSECRET", "USERS", "WeCom"]

CORPID = "ww6a3c9d0e5f7b21c4"
CORPSECRET = "wecom-corpsecret-Q8nV4kT1xR6mZ3pL0sD7"
USERS = {"ZhangWei": "张伟", "LiNa": "李娜", "WangFang": "王芳", "ChenJing": "陈静"}


_MSGTYPES = ("text", "markdown", "textcard", "template_card")


def _approval() -> dict[str, Any]:
    return {
        "sp_no": "202612070001",
        "sp_name": "费用报销",
        "sp_status": 2,
        "template_id": "3TkZjxugodbqpEMk9t8TuZUkH6A8P6Lu1hHPGh8Y",
        "apply_time": 1796607012,
        "applyer": {"userid": "ZhangWei", "partyid": "2"},
        "sp_record": [
            {
                "sp_status": 2,
                "approverattr": 1,
                "details": [
                    {
                        "approver": {"userid": "LiNa"},
                        "speech": "同意，请财务付款",
                        "sp_status": 2,
                        "sptime": 1796614365,
                        "media_id": [],
                    }
                ],
            }
        ],
        "notifyer": [{"userid": "WangFang"}],
        "apply_data": {
            "contents": [
                {
                    "control": "Text",
                    "id": "Text-1",
                    "title": [{"text": "报销事由", "lang": "zh_CN"}],
                    "value": {"text": "杭州客户拜访差旅费"},
                },
                {
                    "control": "Money",
                    "id": "Money-1",
                    "title": [{"text": "报销金额", "lang": "zh_CN"}],
                    "value": {"new_money": "3580.50"},
                },
            ]
        },
        "comments": [],
    }


@dataclass
class WeCom(Platform):
    name: ClassVar[str] = "wecom"
    approvals: dict[str, dict[str, Any]] = field(default_factory=lambda: {"202612070001": _approval()})
    """Approvals by sp_no (the approvals helper adds its own)."""
    sent: list[dict[str, Any]] = field(default_factory=list)
    users: dict[str, str] = field(default_factory=lambda: dict(USERS))
    """The corp's members by userid (a test adds its own)."""

    def is_sign_in(self, path: str) -> bool:
        return path == "/cgi-bin/gettoken"

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/cgi-bin/gettoken", self._gettoken)
        app.router.add_post("/cgi-bin/message/send", self._send)
        app.router.add_post("/cgi-bin/oa/getapprovaldetail", self._approval)

    async def _gettoken(self, request: web.Request) -> web.Response:
        if (request.query.get("corpid"), request.query.get("corpsecret")) != (CORPID, CORPSECRET):
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        token = self.issue_token()
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": self.token_lifetime_s}
        )

    def _refused(self, request: web.Request) -> web.Response | None:
        token = request.query.get("access_token")
        if not self.is_valid(token):
            expired = self.has_expired(token)
            code, message = (42001, "access_token expired") if expired else (40014, "invalid access_token")
            return web.json_response({"errcode": code, "errmsg": message})
        if self.is_too_frequent():
            return web.json_response({"errcode": 45009, "errmsg": "api freq out of limit"})
        failure = self.take_failure(request.path)
        if failure is not None:
            return web.json_response({"errcode": failure[0], "errmsg": failure[1]})
        return None

    async def _send(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        body = await request.json()
        if not isinstance(body.get("agentid"), int) or body.get("msgtype") not in _MSGTYPES:
            return web.json_response({"errcode": 40008, "errmsg": "invalid message type or agentid"})
        receivers = str(body.get("touser", "")).split("|")
        invalid = [user for user in receivers if user not in self.users]
        if len(invalid) == len(receivers):
            return web.json_response({"errcode": 81013, "errmsg": "user & party & tag all invalid"})
        card = body.get("template_card")
        if body["msgtype"] == "template_card" and not (isinstance(card, dict) and card.get("task_id")):
            return web.json_response({"errcode": 40058, "errmsg": "template_card.task_id missing"})
        self.sent.append(body)
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "invaliduser": "|".join(invalid), "msgid": f"wxmsg{len(self.sent):06d}"}
        )

    async def _approval(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        found = self.approvals.get(str((await request.json()).get("sp_no")))
        if found is None:  # the code is the stand-in's choice for an unknown number
            return web.json_response({"errcode": 301055, "errmsg": "sp_no not found"})
        return web.json_response({"errcode": 0, "errmsg": "ok", "info": found})
