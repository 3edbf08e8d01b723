"""`http` connections that sign in through a token endpoint (DingTalk, WeCom, Feishu), against a local stand-in.

Nothing is mocked: the connector asks the stand-in's token endpoint, caches the token (in its
process, or in the store through the engine's `StoredTokens`), places it on each call, and
renews it once when the platform says it was revoked early.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from cryptography.fernet import Fernet

from seamflow import clock, connectors, engine, errors, redact, store
from seamflow.ids import Json
from tests.support.open_platforms import APPS, OpenPlatforms

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running_platforms() -> AsyncIterator[OpenPlatforms]:
    async with OpenPlatforms.start() as running:
        yield running


@pytest.fixture
def platforms(running_platforms: OpenPlatforms) -> OpenPlatforms:
    running_platforms.reset()
    for key, secret in APPS.values():  # as `load_secrets` does for the project's secrets
        redact.register(key)
        redact.register(secret)
    return running_platforms


def dingtalk(base: str, *, appsecret: str = APPS["dingtalk"][1]) -> dict[str, Json]:
    """A DingTalk connection as docs/howto/connections.md writes it, secrets already rendered."""
    return {
        "base_url": f"{base}/dingtalk",
        "auth": {
            "token_endpoint": {
                "request": {
                    "method": "GET",
                    "url": f"{base}/dingtalk/gettoken",
                    "query": {"appkey": APPS["dingtalk"][0], "appsecret": appsecret},
                },
                "token_path": "access_token",
                "expires_in_path": "expires_in",
                "send": {"query": "access_token"},
                "error_code": "errcode",
                "revoked_codes": [40014, 42001],
            }
        },
    }


def wecom(base: str) -> dict[str, Json]:
    corpid, corpsecret = APPS["wecom"]
    return {
        "base_url": f"{base}/wecom",
        "auth": {
            "token_endpoint": {
                "request": {
                    "method": "GET",
                    "url": f"{base}/wecom/cgi-bin/gettoken",
                    "query": {"corpid": corpid, "corpsecret": corpsecret},
                },
                "send": {"query": "access_token"},
                "error_code": "errcode",
                "revoked_codes": [40014, 42001],
            }
        },
    }


def feishu(base: str) -> dict[str, Json]:
    app_id, app_secret = APPS["feishu"]
    return {
        "base_url": f"{base}/feishu/open-apis",
        "auth": {
            "token_endpoint": {
                "request": {
                    "url": f"{base}/feishu/open-apis/auth/v3/tenant_access_token/internal",
                    "json": {"app_id": app_id, "app_secret": app_secret},
                },
                "token_path": "tenant_access_token",
                "expires_in_path": "expire",
                "send": {"header": "Authorization", "template": "Bearer {token}"},
            }
        },
    }


@asynccontextmanager
async def opened(
    name: str, config: Mapping[str, Json], tokens: connectors.TokenCache | None = None
) -> AsyncIterator[connectors.HttpConnector]:
    connector = connectors.HttpConnector()
    connection = connectors.Connection(
        name=name, connector="http", config=config, timeout=timedelta(seconds=5), tokens=tokens
    )
    await connector.open(connection)
    try:
        yield connector
    finally:
        await connector.close()


async def get_user(connector: connectors.HttpConnector, key: str = "k1") -> Json:
    return await connector.call(
        "post", {"path": "topapi/v2/user/get", "json": {"userid": "manager4220"}}, idempotency_key=key
    )


async def test_a_token_is_asked_once_and_carried_by_every_call(platforms: OpenPlatforms) -> None:
    async with opened("dingtalk", dingtalk(platforms.base_url)) as connector:
        for n in range(3):
            answer = await get_user(connector, f"k{n}")
            assert isinstance(answer, dict) and answer["status"] == 200
            assert answer["body"]["result"]["name"] == "王晓明"  # type: ignore[index,call-overload]
    assert platforms.token_requests["dingtalk"] == 1
    assert len({token for _, token in platforms.calls}) == 1


async def test_an_errcode_in_a_200_answer_renews_the_token_once_and_the_call_succeeds(platforms: OpenPlatforms) -> None:
    async with opened("dingtalk", dingtalk(platforms.base_url)) as connector:
        await get_user(connector)
        platforms.revoke()  # DingTalk now answers 200 {"errcode": 40014}
        answer = await get_user(connector)
    assert isinstance(answer, dict) and answer["body"]["errcode"] == 0  # type: ignore[index,call-overload]
    assert platforms.token_requests["dingtalk"] == 2
    assert [platform for platform, _ in platforms.calls] == ["dingtalk"] * 3, "first, refused, retried"
    assert platforms.calls[1][1] != platforms.calls[2][1], "the retry carried the new token"


async def test_a_401_renews_the_token_once_and_the_call_succeeds(platforms: OpenPlatforms) -> None:
    message = {"receive_id": "ou_7d8a6e6df7621556ce0d21922b676706ccs", "msg_type": "text", "content": "{}"}
    async with opened("feishu", feishu(platforms.base_url)) as connector:
        await connector.call("post", {"path": "im/v1/messages", "json": message}, idempotency_key="m1")
        platforms.revoke()
        answer = await connector.call("post", {"path": "im/v1/messages", "json": message}, idempotency_key="m2")
    assert isinstance(answer, dict) and answer["status"] == 200
    assert platforms.token_requests["feishu"] == 2
    assert len(platforms.calls) == 3


async def test_a_token_is_renewed_before_it_expires(platforms: OpenPlatforms) -> None:
    now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    clock.set_fixed(now)
    try:
        async with opened("wecom", wecom(platforms.base_url)) as connector:
            await connector.call("post", {"path": "cgi-bin/message/send", "json": {}}, idempotency_key="a")
            clock.set_fixed(now + timedelta(seconds=7200 - 301))  # not yet within the 300 s margin
            await connector.call("post", {"path": "cgi-bin/message/send", "json": {}}, idempotency_key="b")
            assert platforms.token_requests["wecom"] == 1
            clock.set_fixed(now + timedelta(seconds=7200 - 299))
            await connector.call("post", {"path": "cgi-bin/message/send", "json": {}}, idempotency_key="c")
    finally:
        clock.use_real()
    assert platforms.token_requests["wecom"] == 2
    assert len(platforms.calls) == 3, "the renewal came before the call: no call was refused"


async def test_a_refused_sign_in_is_permanent_and_names_the_error_not_the_secret(platforms: OpenPlatforms) -> None:
    wrong = "ZkX1-wrong-appsecret-0000"
    redact.register(wrong)
    async with opened("dingtalk", dingtalk(platforms.base_url, appsecret=wrong)) as connector:
        with pytest.raises(errors.Permanent) as caught:
            await get_user(connector)
    assert caught.value.code == "connector.sign_in_failed"
    assert "errcode=40089" in caught.value.message and "dingtalk.sign_in" in caught.value.message
    assert wrong not in str(caught.value) and not platforms.calls


async def test_a_token_obtained_at_run_time_is_masked_in_errors(platforms: OpenPlatforms) -> None:
    config = dingtalk(platforms.base_url)
    async with opened("dingtalk", config) as connector:
        await get_user(connector)
        token = platforms.calls[0][1]
        with pytest.raises(errors.Permanent) as caught:  # the stand-in has no such path: 404, URL in the message
            await connector.call("get", {"path": "topapi/nothing"}, idempotency_key="x")
    assert "topapi/nothing" in caught.value.message
    assert token not in caught.value.message and token not in errors.redact(config)


async def _stored_tokens(db: store.SqlStore, key: str) -> engine.StoredTokens:
    return engine.StoredTokens(db, lambda: engine.secrets.SecretKey(engine.secrets.MultiFernet([Fernet(key)]), "test"))


async def test_processes_sharing_a_store_sign_in_once_and_keep_the_token_encrypted(
    platforms: OpenPlatforms, tmp_path: Path
) -> None:
    key = Fernet.generate_key().decode()
    db = store.SqliteStore(tmp_path / "seamflow.db")
    await db.open()
    try:
        first, second = await _stored_tokens(db, key), await _stored_tokens(db, key)  # two processes' caches
        async with opened("dingtalk", dingtalk(platforms.base_url), first) as a:
            await get_user(a)
        async with opened("dingtalk", dingtalk(platforms.base_url), second) as b:
            await get_user(b)
            platforms.revoke()
            await get_user(b)  # renewed by this one
        async with opened("dingtalk", dingtalk(platforms.base_url), first) as a:
            await get_user(a)  # takes the renewed token from the store
        row = await db.read_token("dingtalk")
    finally:
        await db.close()
    assert platforms.token_requests["dingtalk"] == 2
    assert row is not None and row.version == 2
    assert platforms.calls[-1][1] not in row.sealed, "the stored token is ciphertext"
    assert len(platforms.calls) == 5


async def test_a_burst_of_calls_that_find_the_token_revoked_renews_it_once(
    platforms: OpenPlatforms, tmp_path: Path
) -> None:
    db = store.SqliteStore(tmp_path / "seamflow.db")
    await db.open()
    try:
        tokens = await _stored_tokens(db, Fernet.generate_key().decode())
        async with opened("dingtalk", dingtalk(platforms.base_url), tokens) as connector:
            await get_user(connector)
            platforms.revoke()
            platforms.calls.clear()
            answers = await asyncio.gather(*(get_user(connector, f"k{n}") for n in range(300)))
    finally:
        await db.close()
    assert all(isinstance(a, dict) and a["body"]["errcode"] == 0 for a in answers)  # type: ignore[index,call-overload]
    assert platforms.token_requests["dingtalk"] == 2, "the first sign-in and one renewal"
    assert len(platforms.calls) <= 600, "each call sent at most twice: refused once, then with the renewed token"
