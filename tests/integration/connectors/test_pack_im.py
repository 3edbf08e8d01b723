"""The shipped DingTalk, WeCom and Feishu connector files against stand-ins that follow each platform's documents.

Nothing is mocked: each connection signs in at the stand-in's token endpoint, carries the token
where the platform wants it, reads the platform's error codes (in a 200 answer, or Feishu's 400),
renews a token revoked early exactly once, and paces itself to the declared rate.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio

from seamflow import connectors, errors
from seamflow.ids import Json
from tests.integration.connectors.pack import pack_connection
from tests.support.platforms import DingTalk, Feishu, WeCom, dingtalk, feishu, wecom

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(60)]

NOTICE: Json = {"msgtype": "text", "text": {"content": "新签大客户：上海申通物流，合同金额 ¥1,280,000"}}


@pytest_asyncio.fixture(loop_scope="module")
async def ding() -> AsyncIterator[tuple[DingTalk, connectors.Connector]]:
    async with DingTalk.start() as platform:
        settings: Json = {
            "appkey": dingtalk.APPKEY,
            "appsecret": dingtalk.APPSECRET,
            "agent_id": "2876554321",
            "base_url": platform.base_url,
        }
        async with pack_connection("dingtalk_app", settings) as connector:  # type: ignore[arg-type]
            yield platform, connector


@pytest_asyncio.fixture(loop_scope="module")
async def wework() -> AsyncIterator[tuple[WeCom, connectors.Connector]]:
    async with WeCom.start() as platform:
        settings: Json = {
            "corpid": wecom.CORPID,
            "corpsecret": wecom.CORPSECRET,
            "agent_id": 1000002,
            "base_url": platform.base_url,
        }
        async with pack_connection("wecom_app", settings) as connector:  # type: ignore[arg-type]
            yield platform, connector


@pytest_asyncio.fixture(loop_scope="module")
async def lark() -> AsyncIterator[tuple[Feishu, connectors.Connector]]:
    async with Feishu.start() as platform:
        settings: Json = {
            "app_id": feishu.APP_ID,
            "app_secret": feishu.APP_SECRET,
            "base_url": f"{platform.base_url}/open-apis",
        }
        async with pack_connection("feishu_app", settings) as connector:  # type: ignore[arg-type]
            yield platform, connector


# --- DingTalk ------------------------------------------------------------------------------------


async def test_dingtalk_sends_a_work_notification_with_the_token_in_the_query(
    ding: tuple[DingTalk, connectors.Connector],
) -> None:
    platform, connector = ding
    params: Json = {"userid_list": "manager0001,manager0002", "msg": NOTICE}
    answer = await connector.call("send_work_notification", params, idempotency_key="run-1:notify")
    assert answer == {"task_id": 256271667001, "request_id": "4jzllmte0wau"}
    assert platform.sent == [{"agent_id": "2876554321", "userid_list": "manager0001,manager0002", "msg": NOTICE}]
    [call] = platform.api_calls("asyncsend_v2")
    assert call.query["access_token"] == platform.issued[0]
    assert call.headers["Idempotency-Key"] == "run-1:notify"


async def test_dingtalk_reads_an_approval_instance(ding: tuple[DingTalk, connectors.Connector]) -> None:
    _, connector = ding
    instance = await connector.call(
        "get_approval_instance", {"process_instance_id": "b2c3d4e5-0a1b-4c2d-8e3f-4a5b6c7d8e9f"}, idempotency_key="k"
    )
    assert isinstance(instance, dict)
    assert (instance["status"], instance["result"]) == ("COMPLETED", "agree")
    assert {"name": "金额（元）", "value": "12800.00", "component_type": "MoneyField"} in instance[
        "form_component_values"
    ]  # type: ignore[operator]
    with pytest.raises(errors.Permanent) as unknown:
        await connector.call("get_approval_instance", {"process_instance_id": "nope"}, idempotency_key="k2")
    assert unknown.value.code == "connector.rejected" and "审批实例不存在" in str(unknown.value)


async def test_dingtalk_lists_a_department_page_by_page(ding: tuple[DingTalk, connectors.Connector]) -> None:
    platform, connector = ding
    listed = await connector.call("list_department_users", {"dept_id": 10086}, idempotency_key="k")
    assert isinstance(listed, dict) and (listed["pages"], listed["has_more"]) == (3, False)
    assert [u["userid"] for u in listed["items"]] == list(dingtalk.DEPARTMENT_USERS)  # type: ignore[index,union-attr]
    assert [c.body.get("cursor") for c in platform.api_calls("user/list")] == [None, 100, 200]


async def test_dingtalk_token_revoked_early_makes_exactly_one_refresh_and_a_successful_retry(
    ding: tuple[DingTalk, connectors.Connector],
) -> None:
    platform, connector = ding
    params: Json = {"userid_list": "manager0003", "msg": NOTICE}
    await connector.call("send_work_notification", params, idempotency_key="k1")
    platform.revoke_tokens()  # DingTalk now answers HTTP 200 {"errcode": 40014}
    answer = await connector.call("send_work_notification", params, idempotency_key="k2")
    assert answer == {"task_id": 256271667002, "request_id": "4jzllmte0wau"}
    assert platform.token_requests == 2
    calls = platform.api_calls("asyncsend_v2")
    assert [c.query["access_token"] for c in calls] == [platform.issued[0], platform.issued[0], platform.issued[1]]
    assert len(platform.sent) == 2


async def test_dingtalk_errcodes_in_200_answers_are_the_declared_error_classes(
    ding: tuple[DingTalk, connectors.Connector],
) -> None:
    platform, connector = ding
    with pytest.raises(errors.Permanent) as rejected:
        await connector.call("send_work_notification", {"userid_list": "nobody", "msg": NOTICE}, idempotency_key="k")
    assert rejected.value.code == "connector.rejected"
    assert str(rejected.value) == (
        "dingtalk.send_work_notification: the system answered errcode=33012 (errmsg='无效的USERID');"
        " expected errcode in 0"
    )
    platform.fail_next(-1, "系统繁忙")
    with pytest.raises(errors.Transient) as busy:
        await connector.call(
            "send_work_notification", {"userid_list": "manager0001", "msg": NOTICE}, idempotency_key="k"
        )
    assert busy.value.code == "connector.transient" and "errcode=-1" in str(busy.value)
    platform.fail_next(90018, "当前企业所有应用调用该接口频率超限")
    with pytest.raises(errors.Transient) as limited:
        await connector.call(
            "send_work_notification", {"userid_list": "manager0001", "msg": NOTICE}, idempotency_key="k"
        )
    assert limited.value.code == "connector.rate_limited"
    assert limited.value.retry_after == timedelta(seconds=1)
    assert platform.token_requests == 1, "no error code above is a revoked token"
    text = str(rejected.value) + str(busy.value) + str(limited.value)
    assert dingtalk.APPSECRET not in text and all(token not in text for token in platform.issued)


# --- WeCom ---------------------------------------------------------------------------------------


async def test_wecom_sends_an_app_message_and_names_the_invalid_users(
    wework: tuple[WeCom, connectors.Connector],
) -> None:
    platform, connector = wework
    params: Json = {
        "touser": "ZhangWei|LiNa|ghost",
        "msgtype": "text",
        "text": {"content": "报销单 202612070001 已通过"},
    }
    answer = await connector.call("send_app_message", params, idempotency_key="k")
    assert answer == {"msgid": "wxmsg000001", "invaliduser": "ghost"}
    assert platform.sent == [
        {
            "touser": "ZhangWei|LiNa|ghost",
            "msgtype": "text",
            "agentid": 1000002,
            "text": {"content": "报销单 202612070001 已通过"},
        }
    ]
    with pytest.raises(errors.Permanent) as rejected:
        await connector.call("send_app_message", {**params, "touser": "ghost"}, idempotency_key="k2")  # type: ignore[dict-item]
    assert "errcode=81013" in str(rejected.value) and rejected.value.code == "connector.rejected"


async def test_wecom_reads_approval_details(wework: tuple[WeCom, connectors.Connector]) -> None:
    platform, connector = wework
    info = await connector.call("get_approval_detail", {"sp_no": "202612070001"}, idempotency_key="k")
    assert isinstance(info, dict) and (info["sp_name"], info["sp_status"]) == ("费用报销", 2)
    with pytest.raises(errors.Permanent) as invalid:
        await connector.call("get_approval_detail", {"sp_no": "SP-1"}, idempotency_key="k")
    assert invalid.value.code == "connector.invalid_input"
    assert len(platform.api_calls("getapprovaldetail")) == 1, "refused before any request"


async def test_wecom_expired_token_is_renewed_once_and_the_call_sent_again(
    wework: tuple[WeCom, connectors.Connector],
) -> None:
    platform, connector = wework
    await connector.call("get_approval_detail", {"sp_no": "202612070001"}, idempotency_key="k1")
    platform.revoke_tokens()
    info = await connector.call("get_approval_detail", {"sp_no": "202612070001"}, idempotency_key="k2")
    assert isinstance(info, dict) and info["sp_no"] == "202612070001"
    assert platform.token_requests == 2 and len(platform.api_calls("getapprovaldetail")) == 3
    platform.fail_next(45009, "api freq out of limit")
    with pytest.raises(errors.Transient) as limited:
        await connector.call("get_approval_detail", {"sp_no": "202612070001"}, idempotency_key="k3")
    assert limited.value.code == "connector.rate_limited" and limited.value.retry_after == timedelta(seconds=60)


# --- Feishu --------------------------------------------------------------------------------------


async def test_feishu_sends_a_message_with_a_bearer_token(lark: tuple[Feishu, connectors.Connector]) -> None:
    platform, connector = lark
    params: Json = {
        "receive_id_type": "open_id",
        "receive_id": "ou_7d8a6e6df7621556ce0d21922b676706",
        "msg_type": "text",
        "content": '{"text":"采购申请 202612070007 已通过，请安排下单"}',
        "uuid": "run-7:notify",
    }
    first = await connector.call("send_message", params, idempotency_key="run-7:notify")
    again = await connector.call("send_message", params, idempotency_key="run-7:notify")
    assert first == again == {"message_id": "om_" + "0" * 31 + "1"}
    assert len(platform.sent) == 1, "the same uuid sends one message"
    [call, _] = platform.api_calls("im/v1/messages")
    assert call.headers["Authorization"] == f"Bearer {platform.issued[0]}"
    assert call.query == {"receive_id_type": "open_id"}


async def test_feishu_refuses_a_revoked_token_with_http_400_and_the_token_is_renewed_once(
    lark: tuple[Feishu, connectors.Connector],
) -> None:
    platform, connector = lark
    code = "81D31358-93AF-92D6-7425-01A5D67C4E71"
    await connector.call("get_approval_instance", {"instance_id": code}, idempotency_key="k1")
    platform.revoke_tokens()  # HTTP 400 {"code": 99991663}
    instance = await connector.call("get_approval_instance", {"instance_id": code}, idempotency_key="k2")
    assert isinstance(instance, dict) and (instance["approval_name"], instance["status"]) == ("采购申请", "APPROVED")
    assert platform.token_requests == 2
    assert [c.headers["Authorization"] for c in platform.api_calls("instances/" + code)][1:] == [
        f"Bearer {platform.issued[0]}",
        f"Bearer {platform.issued[1]}",
    ]


async def test_feishu_error_codes_in_400_and_429_answers_are_the_declared_classes(
    lark: tuple[Feishu, connectors.Connector],
) -> None:
    platform, connector = lark
    with pytest.raises(errors.Permanent) as missing:
        await connector.call("get_approval_instance", {"instance_id": "no-such-instance"}, idempotency_key="k")
    assert missing.value.code == "connector.rejected"
    assert "code=1390003 (msg='instance code not found')" in str(missing.value)
    platform.per_second = 0  # every call is now too frequent: HTTP 429 {"code": 99991400}
    with pytest.raises(errors.Transient) as limited:
        await connector.call("get_approval_instance", {"instance_id": "x"}, idempotency_key="k")
    assert limited.value.code == "connector.rate_limited"
    assert limited.value.retry_after == timedelta(seconds=3), "the wait x-ogw-ratelimit-reset says"
    assert "HTTP 429" in str(limited.value) and feishu.APP_SECRET not in str(limited.value)


# --- pacing --------------------------------------------------------------------------------------


async def test_a_connection_paces_itself_to_the_declared_rate_and_is_never_refused() -> None:
    """The stand-in refuses more than 20 calls in any second (90018); the file declares 10 per second."""
    text = connectors.PACK_FILES["dingtalk_app"].read_text("utf-8").replace("per_second: 20 ", "per_second: 10 ")
    async with DingTalk.start(per_second=20) as platform:
        settings: Json = {
            "appkey": dingtalk.APPKEY,
            "appsecret": dingtalk.APPSECRET,
            "agent_id": "2876554321",
            "base_url": platform.base_url,
        }
        async with pack_connection("dingtalk_app", settings, text=text) as connector:  # type: ignore[arg-type]
            params: Json = {"process_instance_id": "b2c3d4e5-0a1b-4c2d-8e3f-4a5b6c7d8e9f"}
            calls = [connector.call("get_approval_instance", params, idempotency_key=f"k{n}") for n in range(30)]
            answers = await asyncio.gather(*calls, return_exceptions=True)
    refused = [a for a in answers if isinstance(a, BaseException)]
    assert refused == [], refused[:1]
    assert len(platform.api_calls("processinstance/get")) == 30
