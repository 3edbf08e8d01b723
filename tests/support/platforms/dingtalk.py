"""DingTalk's server API (oapi.dingtalk.com) for an internal app, as its documents describe it.

- `GET /gettoken?appkey=&appsecret=` → `{"errcode": 0, "access_token", "expires_in": 7200}`
  (https://open.dingtalk.com/document/orgapp/obtain-orgapp-token); a wrong pair: errcode 40089.
- Every API takes `?access_token=`; an unknown or revoked token: errcode 40014 (不合法的access_token),
  an expired one 42001 — always with HTTP 200 (https://open.dingtalk.com/document/orgapp/server-api-error-codes-1).
- 20 calls per second per app and API; beyond: errcode 90018
  (https://open.dingtalk.com/document/orgapp/invocation-frequency-limit).
- `POST /topapi/message/corpconversation/asyncsend_v2` `{agent_id, userid_list, msg}` → `{task_id}`
  (https://open.dingtalk.com/document/orgapp/asynchronous-sending-of-enterprise-session-messages).
- `POST /topapi/processinstance/get` `{process_instance_id}` → `{process_instance: {…}}`
  (https://open.dingtalk.com/document/orgapp/obtains-the-details-of-a-single-approval-instance).
- `POST /topapi/v2/user/list` `{dept_id, cursor, size ≤ 100}` → `{result: {has_more, next_cursor, list}}`
  (https://open.dingtalk.com/document/orgapp/queries-the-complete-information-of-a-department-user).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web

from tests.support.platforms.base import Platform

__all__ = ["APPKEY", "APPSECRET", "DEPARTMENT_USERS", "DingTalk"]

APPKEY = "dingxk7q2mzeoq3wuvz1"
APPSECRET = "ZkX1-dt-appsecret-9Jf0qWn3rT7yL2vB5cH8"

_SURNAMES, _GIVEN = "王李张刘陈杨赵黄周吴", "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚"
DEPARTMENT_USERS = {f"manager{n:04d}": _SURNAMES[n % 10] + _GIVEN[n % 20] for n in range(1, 251)}
"""Department 10086 (华东区销售部): 250 users, three pages of 100."""


def _purchase_request() -> dict[str, Any]:
    return {
        "title": "王伟提交的采购申请",
        "create_time": "2026-12-07 09:30:12",
        "finish_time": "2026-12-07 11:02:45",
        "originator_userid": "manager0001",
        "originator_dept_id": "10086",
        "originator_dept_name": "华东区销售部",
        "status": "COMPLETED",
        "result": "agree",
        "business_id": "202612070930000123456",
        "form_component_values": [
            {"name": "采购事由", "value": "华东区展会物料", "component_type": "TextField"},
            {"name": "金额（元）", "value": "12800.00", "component_type": "MoneyField"},
            {"name": "供应商", "value": "上海申通印务有限公司", "component_type": "TextField"},
        ],
        "operation_records": [
            {
                "userid": "manager0001",
                "date": "2026-12-07 09:30:12",
                "operation_type": "START_PROCESS_INSTANCE",
                "operation_result": "NONE",
            },
            {
                "userid": "manager0002",
                "date": "2026-12-07 11:02:45",
                "operation_type": "EXECUTE_TASK_NORMAL",
                "operation_result": "AGREE",
                "remark": "同意",
            },
        ],
        "tasks": [
            {
                "userid": "manager0002",
                "task_status": "COMPLETED",
                "task_result": "AGREE",
                "create_time": "2026-12-07 09:30:12",
                "finish_time": "2026-12-07 11:02:45",
                "taskid": 63204170101,
            },
        ],
    }


@dataclass
class DingTalk(Platform):
    name: ClassVar[str] = "dingtalk"
    per_second: float | None = None
    instances: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {"b2c3d4e5-0a1b-4c2d-8e3f-4a5b6c7d8e9f": _purchase_request()}
    )
    """Approval instances by process_instance_id (the approvals helper adds its own)."""
    sent: list[dict[str, Any]] = field(default_factory=list)
    """The bodies of the work notifications accepted."""
    users: set[str] = field(default_factory=lambda: set(DEPARTMENT_USERS))
    """The userids work notifications may go to (a test adds its own)."""

    def is_sign_in(self, path: str) -> bool:
        return path == "/gettoken"

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/gettoken", self._gettoken)
        app.router.add_post("/topapi/message/corpconversation/asyncsend_v2", self._asyncsend)
        app.router.add_post("/topapi/processinstance/get", self._instance)
        app.router.add_post("/topapi/v2/user/list", self._user_list)

    async def _gettoken(self, request: web.Request) -> web.Response:
        if (request.query.get("appkey"), request.query.get("appsecret")) != (APPKEY, APPSECRET):
            return web.json_response({"errcode": 40089, "errmsg": "不合法的corpid或corpsecret"})
        token = self.issue_token()
        return web.json_response(
            {"errcode": 0, "access_token": token, "errmsg": "ok", "expires_in": self.token_lifetime_s}
        )

    def _refused(self, request: web.Request) -> web.Response | None:
        token = request.query.get("access_token")
        if not self.is_valid(token):
            expired = self.has_expired(token)
            code, message = (42001, "access_token超时") if expired else (40014, "不合法的access_token")
            return web.json_response({"errcode": code, "errmsg": message})
        if self.is_too_frequent():
            return web.json_response({"errcode": 90018, "errmsg": "当前企业所有应用调用该接口频率超限"})
        failure = self.take_failure(request.path)
        if failure is not None:
            return web.json_response({"errcode": failure[0], "errmsg": failure[1]})
        return None

    async def _asyncsend(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        body = await request.json()
        users = str(body.get("userid_list", "")).split(",")
        if not body.get("agent_id") or not isinstance(body.get("msg"), dict):
            return web.json_response({"errcode": 400002, "errmsg": "参数错误: agent_id, msg"})
        if not all(user in self.users for user in users):
            return web.json_response({"errcode": 33012, "errmsg": "无效的USERID", "request_id": "r3nq9dc9w0ii"})
        self.sent.append(body)
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "task_id": 256271667000 + len(self.sent), "request_id": "4jzllmte0wau"}
        )

    async def _instance(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        found = self.instances.get(str((await request.json()).get("process_instance_id")))
        if found is None:  # the code is the stand-in's choice: the document lists no specific one
            return web.json_response({"errcode": 400002, "errmsg": "审批实例不存在"})
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "process_instance": found, "request_id": "2ab7x0e7o2ky"}
        )

    async def _user_list(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        body = await request.json()
        if body.get("dept_id") != 10086 or not 1 <= int(body.get("size", 0)) <= 100:
            return web.json_response({"errcode": 40009, "errmsg": "不合法的部门id或size"})
        cursor, size = int(body.get("cursor", 0)), int(body["size"])
        users = list(DEPARTMENT_USERS.items())[cursor:][:size]
        page = [{"userid": u, "name": n, "dept_id_list": [10086], "title": "销售经理"} for u, n in users]
        result: dict[str, Any] = {"has_more": cursor + size < len(DEPARTMENT_USERS), "list": page}
        if result["has_more"]:
            result["next_cursor"] = cursor + size
        return web.json_response({"errcode": 0, "errmsg": "ok", "result": result, "request_id": "1xk0v5v1y9cq"})
