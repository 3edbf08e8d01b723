"""Kingdee K/3 Cloud's (金蝶云星空) Web API, as its WebAPI documents and official SDKs describe it.

Every call is `POST /k3cloud/Kingdee.BOS.WebApi.ServicesStub.<Service>.<Method>.common.kdsvc` with
a JSON body (金蝶云星空 WebAPI 接口说明, https://vip.kingdee.com/knowledge/specialDetail/229961573895771136):

- `AuthService.ValidateUser` `{acctID, username, password, lcid}` (or `{"parameters": [acctID,
  username, password, lcid]}` as the SDKs send it) → `{"LoginResultType": 1, "KDSVCSessionId", "Context":
  {…}}` and the cookies `kdservice-sessionid` and `ASP.NET_SessionId`, which later calls carry; a
  wrong password: `LoginResultType` 0, a `Message` and no cookie.
- `DynamicFormService.Save` `{formid, data: {Model: {…}}}` → `{"Result": {"ResponseStatus": {"IsSuccess",
  "MsgCode", "Errors", "SuccessEntitys"}, "Id", "Number"}}`; MsgCode 11 for a failed validation.
- `DynamicFormService.ExecuteBillQuery` `{data: {FormId, FieldKeys, FilterString, OrderString,
  StartRow, Limit}}` → rows, each a list of the FieldKeys' values, in order.
- Without a valid session every service answers MsgCode 1, "会话信息已丢失，请重新登录" — inside
  `[[…]]` for ExecuteBillQuery, whose answers are lists.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

from aiohttp import web

from tests.support.platforms.base import Platform

__all__ = ["ACCT_ID", "CUSTOMERS", "MATERIALS", "PASSWORD", "USERNAME", "Kingdee"]

ACCT_ID = "6565f0a1c2d3e4"
USERNAME = "seamflow_api"
PASSWORD = "K3-api-Pa55word-2026"
CUSTOMERS = {"CUST0001": "上海申通物流有限公司", "CUST0002": "杭州顺丰电子商务有限公司"}
MATERIALS = {"1.01.001": "ThinkPad X1 笔记本电脑", "1.02.004": "华为 MateView 显示器"}
_PREFIX = "/k3cloud/Kingdee.BOS.WebApi.ServicesStub."
_FILTER = re.compile(r"^\s*(\w+(?:\.\w+)?)\s*=\s*'([^']*)'\s*$")


def _status(*, ok: bool, code: int, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {
        "IsSuccess": ok,
        "Errors": errors or [],
        "SuccessEntitys": [],
        "SuccessMessages": [],
        "MsgCode": code,
    }
    if not ok:
        status["ErrorCode"] = 500
    return status


_SESSION_LOST = {
    "Result": {
        "ResponseStatus": _status(
            ok=False, code=1, errors=[{"FieldName": None, "Message": "会话信息已丢失，请重新登录", "DIndex": 0}]
        )
    }
}


@dataclass
class Kingdee(Platform):
    name: ClassVar[str] = "kingdee"
    token_lifetime_s: int = 20 * 60
    """A session ends after this long (here from its start; the real server counts idle time)."""
    orders: list[dict[str, Any]] = field(default_factory=list)
    """Sales orders saved, as rows of the query's fields."""

    def is_sign_in(self, path: str) -> bool:
        return path.endswith("AuthService.ValidateUser.common.kdsvc")

    def routes(self, app: web.Application) -> None:
        app.router.add_post(_PREFIX + "AuthService.ValidateUser.common.kdsvc", self._login)
        app.router.add_post(_PREFIX + "DynamicFormService.Save.common.kdsvc", self._save)
        app.router.add_post(_PREFIX + "DynamicFormService.ExecuteBillQuery.common.kdsvc", self._query)

    def expire_sessions(self) -> None:
        """Every session ends, as when the server restarts or the session times out."""
        self.revoke_tokens()

    async def _login(self, request: web.Request) -> web.Response:
        body = await request.json()
        given = body.get("parameters") or [body.get(k) for k in ("acctID", "username", "password", "lcid")]
        if list(given[:3]) != [ACCT_ID, USERNAME, PASSWORD]:
            return web.json_response(
                {
                    "Message": "用户名或密码错误！",
                    "MessageCode": "",
                    "LoginResultType": 0,
                    "Context": None,
                    "KDSVCSessionId": None,
                    "IsSuccessByAPI": False,
                }
            )
        session = self.issue_token()
        answer = web.json_response(
            {
                "Message": None,
                "MessageCode": "CheckPasswordPolicy",
                "LoginResultType": 1,
                "Context": {
                    "UserLocale": "zh-CN",
                    "DBid": ACCT_ID,
                    "SessionId": secrets.token_hex(12),
                    "UserId": 100008,
                    "UserName": USERNAME,
                    "DataCenterName": "华东制造（正式账套）",
                    "DisplayVersion": "8.1.0.20221110",
                },
                "KDSVCSessionId": session,
                "IsSuccessByAPI": True,
            }
        )
        answer.set_cookie("kdservice-sessionid", session, path="/")
        answer.set_cookie("ASP.NET_SessionId", secrets.token_hex(12), path="/", httponly=True)
        return answer

    def _session_ok(self, request: web.Request) -> bool:
        return self.is_valid(request.cookies.get("kdservice-sessionid"))

    async def _save(self, request: web.Request) -> web.Response:
        if not self._session_ok(request):
            return web.json_response(_SESSION_LOST)
        body = await request.json()
        form, data = (
            body.get("parameters", [None, None]) if "parameters" in body else (body.get("formid"), body.get("data"))
        )
        data = json.loads(data) if isinstance(data, str) else data
        model = data.get("Model") if isinstance(data, dict) else None
        if form != "SAL_SaleOrder" or not isinstance(model, dict):
            return web.json_response(
                {
                    "Result": {
                        "ResponseStatus": _status(
                            ok=False,
                            code=8,
                            errors=[{"FieldName": None, "Message": "参数错误：formid 或 data.Model", "DIndex": 0}],
                        )
                    }
                }
            )
        problems = _order_problems(model)
        if problems:
            return web.json_response({"Result": {"ResponseStatus": _status(ok=False, code=11, errors=problems)}})
        number = f"XSDD{len(self.orders) + 235:06d}"
        entries = model["FSaleOrderEntry"]
        amount = sum((Decimal(str(e["FQty"])) * Decimal(str(e["FTaxPrice"])) for e in entries), Decimal(0))
        customer = model["FCustId"]["FNumber"]
        self.orders.append(
            {
                "FBillNo": number,
                "FDate": f"{model.get('FDate', '2026-12-07')}T00:00:00",
                "FCustId.FNumber": customer,
                "FCustId.FName": CUSTOMERS[customer],
                "FBillAllAmount": float(amount),
                "FDocumentStatus": "A",
            }
        )
        order_id = 100000 + len(self.orders)
        status = _status(ok=True, code=0)
        status["SuccessEntitys"] = [{"Id": order_id, "Number": number, "DIndex": 0}]
        return web.json_response(
            {"Result": {"ResponseStatus": status, "Id": order_id, "Number": number, "NeedReturnData": [{}]}}
        )

    async def _query(self, request: web.Request) -> web.Response:
        if not self._session_ok(request):
            return web.json_response([[_SESSION_LOST]])
        body = await request.json()
        data = body.get("data")
        data = json.loads(data) if isinstance(data, str) else data
        keys = [k.strip() for k in str(data.get("FieldKeys", "")).split(",") if k.strip()]
        if data.get("FormId") != "SAL_SaleOrder" or not keys or any(k not in _FIELDS for k in keys):
            return web.json_response(
                [
                    [
                        {
                            "Result": {
                                "ResponseStatus": _status(
                                    ok=False,
                                    code=9,
                                    errors=[
                                        {"FieldName": None, "Message": f"字段不存在：{','.join(keys)}", "DIndex": 0}
                                    ],
                                )
                            }
                        }
                    ]
                ]
            )
        rows = [o for o in self.orders if _matches(o, str(data.get("FilterString", "")))]
        start, limit = int(data.get("StartRow", 0)), int(data.get("Limit", 0)) or 10_000
        return web.json_response([[o[k] for k in keys] for o in rows[start : start + limit]])


_FIELDS = ("FBillNo", "FDate", "FCustId.FNumber", "FCustId.FName", "FBillAllAmount", "FDocumentStatus")


def _matches(order: dict[str, Any], filter_string: str) -> bool:
    """The stand-in understands `FIELD='value'` conditions joined with `and` (real filters are SQL)."""
    for condition in re.split(r"\s+and\s+", filter_string, flags=re.IGNORECASE) if filter_string.strip() else []:
        match = _FILTER.match(condition)
        if match is None or str(order.get(match.group(1))) != match.group(2):
            return False
    return True


def _order_problems(model: dict[str, Any]) -> list[dict[str, Any]]:
    problems = []
    if (model.get("FCustId") or {}).get("FNumber") not in CUSTOMERS:
        problems.append({"FieldName": "FCustId", "Message": "字段“客户”是必填项或客户编码不存在", "DIndex": 0})
    entries = model.get("FSaleOrderEntry")
    if not isinstance(entries, list) or not entries:
        problems.append({"FieldName": "FSaleOrderEntry", "Message": "订单明细不能为空", "DIndex": 0})
        return problems
    for n, entry in enumerate(entries):
        if (entry.get("FMaterialId") or {}).get("FNumber") not in MATERIALS:
            problems.append({"FieldName": "FMaterialId", "Message": f"第{n + 1}行物料编码不存在", "DIndex": 0})
        if not isinstance(entry.get("FQty"), int | float) or entry["FQty"] <= 0:
            problems.append({"FieldName": "FQty", "Message": f"第{n + 1}行销售数量必须大于0", "DIndex": 0})
        if not isinstance(entry.get("FTaxPrice"), int | float | str):
            problems.append({"FieldName": "FTaxPrice", "Message": f"第{n + 1}行含税单价必填", "DIndex": 0})
    return problems
