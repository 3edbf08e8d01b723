"""The DingTalk pack (a declarative connector file) against a local stand-in following DingTalk's formats.

Nothing is mocked: the connector signs in at the stand-in's `gettoken`, sends the token as
`access_token`, reads `errcode` from 200 answers and follows `next_cursor` page by page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from cryptography.fernet import Fernet

from seamflow import connectors, engine, errors, flows, redact, store
from seamflow.ids import Json
from tests.support.open_platforms import APPS, OpenPlatforms

pytestmark = pytest.mark.asyncio(loop_scope="module")

PACK = connectors.PACK_FILES["dingtalk_app"]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running_platforms() -> AsyncIterator[OpenPlatforms]:
    async with OpenPlatforms.start() as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def dingtalk(running_platforms: OpenPlatforms) -> AsyncIterator[connectors.Connector]:
    running_platforms.reset()
    appkey, appsecret = APPS["dingtalk"]
    redact.register(appkey)
    cls = flows.connector_files.load_connector_file(PACK)
    instance = cls()
    config: dict[str, Json] = {
        "appkey": appkey,
        "appsecret": appsecret,
        "agent_id": "2876554321",
        "base_url": f"{running_platforms.base_url}/dingtalk",
    }
    await instance.open(connectors.Connection("dingtalk", "dingtalk_app", config, timeout=timedelta(seconds=5)))
    try:
        yield instance
    finally:
        await instance.close()


NOTICE: Json = {"msgtype": "text", "text": {"content": "新签大客户：上海申通物流，合同金额 ¥1,280,000"}}


async def test_a_call_carries_the_token_and_returns_the_declared_output(
    dingtalk: connectors.Connector, running_platforms: OpenPlatforms
) -> None:
    task = await dingtalk.call(
        "send_work_notification", {"userid_list": "manager0001,manager0002", "msg": NOTICE}, idempotency_key="k1"
    )
    assert task == {"task_id": 256271667526, "request_id": "4jzllmte0wau"}
    assert running_platforms.token_requests["dingtalk"] == 1
    assert [token for _, token in running_platforms.calls] == running_platforms.issued
    assert running_platforms.sent == [
        {"agent_id": "2876554321", "userid_list": "manager0001,manager0002", "msg": NOTICE}
    ]


async def test_an_errcode_in_a_200_answer_is_the_declared_error(dingtalk: connectors.Connector) -> None:
    with pytest.raises(errors.Permanent) as refused:
        await dingtalk.call("send_work_notification", {"userid_list": "nobody", "msg": NOTICE}, idempotency_key="k2")
    assert refused.value.code == "connector.rejected"
    assert "errcode=33012" in str(refused.value) and "无效的USERID" in str(refused.value)
    assert str(refused.value).startswith("dingtalk.send_work_notification: ")
    with pytest.raises(errors.Transient) as busy:
        await dingtalk.call("send_work_notification", {"userid_list": "busy", "msg": NOTICE}, idempotency_key="k3")
    assert "errcode=-1" in str(busy.value)


async def test_a_token_revoked_early_is_renewed_once_and_the_call_sent_again(
    dingtalk: connectors.Connector, running_platforms: OpenPlatforms
) -> None:
    params: Json = {"userid_list": "manager0003", "msg": NOTICE}
    await dingtalk.call("send_work_notification", params, idempotency_key="k4")
    running_platforms.revoke()
    assert await dingtalk.call("send_work_notification", params, idempotency_key="k5") == {
        "task_id": 256271667526,
        "request_id": "4jzllmte0wau",
    }
    assert running_platforms.token_requests["dingtalk"] == 2
    assert len(running_platforms.calls) == 3  # the refused call, then its retry with the renewed token
    assert len(running_platforms.sent) == 2


async def test_cursor_pagination_reads_every_page(
    dingtalk: connectors.Connector, running_platforms: OpenPlatforms
) -> None:
    listed = await dingtalk.call("list_department_users", {"dept_id": 10086}, idempotency_key="k6")
    assert isinstance(listed, dict)
    assert listed["pages"] == 3 and listed["has_more"] is False
    items = listed["items"]
    assert isinstance(items, list) and len(items) == 250
    assert len({item["userid"] for item in items if isinstance(item, dict)}) == 250


async def test_inputs_are_checked_against_the_input_schema_before_any_request(
    dingtalk: connectors.Connector, running_platforms: OpenPlatforms
) -> None:
    with pytest.raises(errors.Permanent) as refused:
        await dingtalk.call("list_department_users", {"dept_id": "10086"}, idempotency_key="k7")
    assert refused.value.code == "connector.invalid_input"
    assert "with.dept_id: '10086' is not of type 'integer'" in str(refused.value)
    assert running_platforms.calls == []


async def test_the_app_secret_and_tokens_never_reach_an_error(
    dingtalk: connectors.Connector, running_platforms: OpenPlatforms
) -> None:
    with pytest.raises(errors.Permanent) as refused:
        await dingtalk.call("send_work_notification", {"userid_list": "nobody", "msg": NOTICE}, idempotency_key="k8")
    text = str(refused.value)
    assert APPS["dingtalk"][1] not in text
    assert all(token not in text for token in running_platforms.issued)


async def test_the_engine_opens_a_declared_connection_from_secrets_and_shares_its_token(
    running_platforms: OpenPlatforms, tmp_path: Path
) -> None:
    """As `seamflow serve` does: project files installed, secrets rendered by the pool, tokens in the store."""
    running_platforms.reset()
    project = tmp_path / "project"
    (project / "connectors").mkdir(parents=True)
    (project / "connectors" / "dingtalk_app.yaml").write_bytes(PACK.read_bytes())
    assert flows.connector_files.install_project_connectors(project) == []
    configs = {
        "dingtalk": {
            "connector": "dingtalk_app",
            "appkey": "{{ secrets.dingtalk_appkey }}",
            "appsecret": "{{ secrets.dingtalk_appsecret }}",
            "agent_id": "2876554321",
            "base_url": "{{ env.DINGTALK_BASE_URL }}",
        }
    }
    appkey, appsecret = APPS["dingtalk"]
    secrets = {"dingtalk_appkey": appkey, "dingtalk_appsecret": appsecret}
    key = engine.secrets.SecretKey(engine.secrets.MultiFernet([Fernet(Fernet.generate_key())]), "test")
    db = store.SqliteStore(tmp_path / "seamflow.db")
    await db.open()
    try:
        for _ in range(2):  # two processes sharing the store
            pool = engine.Pool(
                configs,
                secrets=secrets,
                env={"DINGTALK_BASE_URL": f"{running_platforms.base_url}/dingtalk"},
                tokens=engine.StoredTokens(db, lambda: key),
            )
            await pool.open()
            try:
                listed = await pool.get("dingtalk").connector.call(
                    "list_department_users", {"dept_id": 10086}, idempotency_key="run-1:sales_team"
                )
            finally:
                await pool.close()
            items = listed.get("items") if isinstance(listed, dict) else None
            assert isinstance(items, list) and len(items) == 250
        assert await db.read_token("dingtalk") is not None
    finally:
        await db.close()
    assert running_platforms.token_requests["dingtalk"] == 1


async def test_a_misconfigured_base_url_is_connection_invalid() -> None:
    cls = flows.connector_files.load_connector_file(PACK)
    config: dict[str, Json] = {"appkey": "k", "appsecret": "s", "agent_id": "1", "base_url": "oapi.dingtalk.com"}
    with pytest.raises(errors.InvalidInput) as invalid:
        await cls().open(connectors.Connection("dingtalk", "dingtalk_app", config))
    assert invalid.value.code == "connection.invalid"
    assert str(invalid.value) == (
        "connection 'dingtalk' has an invalid dingtalk_app config:"
        " connections.yaml dingtalk.base_url: Value error, must start with http:// or https://;"
        " connections.yaml dingtalk.auth.token_endpoint.request.url: Value error, must start with http:// or https://"
    )
    with pytest.raises(errors.InvalidInput) as missing:
        await cls().open(connectors.Connection("dingtalk", "dingtalk_app", {"appkey": "k"}))
    assert "dingtalk.appsecret: Field required" in str(missing.value)


async def test_the_list_feed_polls_a_paginated_operation_after_its_cursor(
    dingtalk: connectors.Connector, running_platforms: OpenPlatforms
) -> None:
    assert isinstance(dingtalk, connectors.Polls)
    settings: Json = {
        "operation": "list_department_users",
        "params": {"dept_id": 10086},
        "key": "userid",
        "cursor": "userid",
    }
    cursor: Json = None
    taken: list[str] = []
    for expected, more in ((100, True), (100, True), (50, False), (0, False)):
        batch = await dingtalk.poll("list", settings, cursor, limit=100)
        assert (len(batch.items), batch.more) == (expected, more)
        taken += [item.key for item in batch.items]
        cursor = batch.cursor
    assert len(set(taken)) == 250
    assert taken[0] == "list_department_users:manager0001:manager0001"
    with pytest.raises(errors.Permanent) as refused:
        await dingtalk.poll(
            "list", {"operation": "send_work_notification", "paginate": {"style": "page"}}, None, limit=5
        )
    assert "expected one of the operations get_approval_instance, list_department_users, send_work_notification" in str(
        refused.value
    )
