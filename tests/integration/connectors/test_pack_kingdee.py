"""The shipped Kingdee K/3 Cloud connector file against a stand-in that follows its WebAPI documents.

The sign-in is a login (`ValidateUser`) whose answer sets the session cookie `kdservice-sessionid`;
every later call carries it, and a lost session (MsgCode 1) logs in again once and resends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import pytest_asyncio

from seamflow import connectors, errors
from seamflow.ids import Json
from tests.integration.connectors.pack import pack_connection
from tests.support.platforms import Kingdee, kingdee

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(60)]

ORDER: Json = {
    "FBillTypeID": {"FNUMBER": "XSDD01_SYS"},
    "FDate": "2026-12-07",
    "FSaleOrgId": {"FNumber": "100"},
    "FCustId": {"FNumber": "CUST0001"},
    "FSaleOrderEntry": [
        {"FMaterialId": {"FNumber": "1.01.001"}, "FQty": 5, "FTaxPrice": "12900.00"},
        {"FMaterialId": {"FNumber": "1.02.004"}, "FQty": 5, "FTaxPrice": "2399.00"},
    ],
}


def settings(base_url: str, password: str = kingdee.PASSWORD) -> dict[str, Json]:
    return {
        "base_url": f"{base_url}/k3cloud",
        "acct_id": kingdee.ACCT_ID,
        "username": kingdee.USERNAME,
        "password": password,
    }


@pytest_asyncio.fixture(loop_scope="module")
async def erp() -> AsyncIterator[tuple[Kingdee, connectors.Connector]]:
    async with (
        Kingdee.start() as platform,
        pack_connection("kingdee_k3cloud", settings(platform.base_url)) as connector,
    ):
        yield platform, connector


async def test_a_sales_order_is_saved_with_the_session_cookie_of_the_login(
    erp: tuple[Kingdee, connectors.Connector],
) -> None:
    platform, connector = erp
    saved = await connector.call("save_sales_order", {"model": ORDER}, idempotency_key="run-3:order")
    assert saved == {"id": 100001, "number": "XSDD000235"}
    [login, save] = platform.requests
    assert login.body == {
        "acctID": kingdee.ACCT_ID,
        "username": kingdee.USERNAME,
        "password": kingdee.PASSWORD,
        "lcid": 2052,
    }
    assert save.headers["Cookie"] == f"kdservice-sessionid={platform.issued[0]}"
    assert save.body == {"formid": "SAL_SaleOrder", "data": {"Model": ORDER}}
    assert platform.orders[0]["FBillAllAmount"] == 76495.0


async def test_a_lost_session_logs_in_again_once_and_the_call_is_sent_again(
    erp: tuple[Kingdee, connectors.Connector],
) -> None:
    platform, connector = erp
    await connector.call("save_sales_order", {"model": ORDER}, idempotency_key="k1")
    platform.expire_sessions()  # the next call answers MsgCode 1, 会话信息已丢失
    saved = await connector.call("save_sales_order", {"model": ORDER}, idempotency_key="k2")
    assert saved == {"id": 100002, "number": "XSDD000236"}
    assert platform.token_requests == 2
    assert len(platform.orders) == 2, "the refused call had no effect; its resend had one"
    platform.expire_sessions()  # a query answers [[{"Result": … MsgCode 1 …}]]: the same renewal
    rows = await connector.call(
        "query_bills", {"form_id": "SAL_SaleOrder", "field_keys": "FBillNo,FCustId.FName"}, idempotency_key="k3"
    )
    assert rows == {
        "items": [["XSDD000235", "上海申通物流有限公司"], ["XSDD000236", "上海申通物流有限公司"]],
        "pages": 1,
        "has_more": False,
    }
    assert platform.token_requests == 3


async def test_a_query_reads_every_page_by_start_row(erp: tuple[Kingdee, connectors.Connector]) -> None:
    platform, connector = erp
    for n in range(2500):  # more than one page of 2,000 rows
        platform.orders.append({"FBillNo": f"XSDD{n:06d}", "FBillAllAmount": 100.5, "FDocumentStatus": "C"})
    platform.orders.append({"FBillNo": "XSDD999999", "FBillAllAmount": 1.0, "FDocumentStatus": "A"})
    listed = await connector.call(
        "query_bills",
        {"form_id": "SAL_SaleOrder", "field_keys": "FBillNo,FBillAllAmount", "filter": "FDocumentStatus='C'"},
        idempotency_key="k",
    )
    assert isinstance(listed, dict) and (listed["pages"], listed["has_more"]) == (2, False)
    items = listed["items"]
    assert isinstance(items, list) and len(items) == 2500 and items[0] == ["XSDD000000", Decimal("100.5")]
    queries = platform.api_calls("ExecuteBillQuery.common.kdsvc")
    assert [(q.body["data"]["StartRow"], q.body["data"]["Limit"]) for q in queries] == [(0, 2000), (2000, 2000)]


async def test_a_refused_save_is_connector_rejected_with_the_erps_message(
    erp: tuple[Kingdee, connectors.Connector],
) -> None:
    platform, connector = erp
    bad = {**ORDER, "FCustId": {"FNumber": "CUST9999"}}  # type: ignore[dict-item]
    with pytest.raises(errors.Permanent) as rejected:
        await connector.call("save_sales_order", {"model": bad}, idempotency_key="k")
    assert rejected.value.code == "connector.rejected"
    assert "Result.ResponseStatus.MsgCode=11" in str(rejected.value)
    assert "字段“客户”是必填项或客户编码不存在" in str(rejected.value)
    assert platform.orders == []


async def test_a_wrong_password_is_sign_in_failed_with_the_erps_message_and_no_password() -> None:
    async with Kingdee.start() as platform:
        async with pack_connection("kingdee_k3cloud", settings(platform.base_url, "wrong-Pa55word-1")) as connector:
            with pytest.raises(errors.Permanent) as failed:
                await connector.call("save_sales_order", {"model": ORDER}, idempotency_key="k")
    assert failed.value.code == "connector.sign_in_failed"
    assert "without cookie kdservice-sessionid" in str(failed.value)
    assert "用户名或密码错误" in str(failed.value)
    assert "wrong-Pa55word-1" not in str(failed.value) and platform.api_calls() == []
