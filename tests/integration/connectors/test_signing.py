"""`sign:` of an `http` connection: query parameters sorted and signed with the app secret, against a local platform."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import pytest

from seamflow import connectors, errors
from seamflow.ids import Json
from tests.support.shop_platform import APP_KEY, APP_SECRET, ShopPlatform


@asynccontextmanager
async def opened(config: Mapping[str, Json]) -> AsyncIterator[connectors.HttpConnector]:
    connector = connectors.HttpConnector()
    await connector.open(connectors.Connection(name="shop", connector="http", config=config))
    try:
        yield connector
    finally:
        await connector.close()


def top(base: str, secret: str = APP_SECRET) -> dict[str, Json]:
    """Taobao TOP's documented scheme, as docs/howto/connections.md writes it."""
    return {
        "base_url": base,
        "sign": {
            "secret": secret,
            "algorithm": "md5",
            "params": {"app_key": APP_KEY, "sign_method": "md5", "v": "2.0", "format": "json"},
            "timestamp_param": "timestamp",
            "timestamp_format": "datetime",
        },
    }


async def test_an_md5_signature_over_sorted_parameters_is_accepted() -> None:
    async with ShopPlatform.start() as platform, opened(top(platform.base_url)) as connector:
        query = {"method": "taobao.trade.fullinfo.get", "tid": "3817264095521", "fields": "tid,status"}
        answer = await connector.call("get", {"path": "router/rest", "query": query}, idempotency_key="k")
    assert isinstance(answer, dict) and "trade_fullinfo_get_response" in answer["body"]  # type: ignore[operator]
    assert platform.seen[0]["tid"] == "3817264095521" and len(platform.seen[0]["sign"]) == 32


async def test_a_wrong_secret_gives_a_signature_the_platform_refuses() -> None:
    async with ShopPlatform.start() as platform, opened(top(platform.base_url, "wrong-secret-000")) as connector:
        answer = await connector.call("get", {"path": "router/rest", "query": {"tid": "1"}}, idempotency_key="k")
    assert isinstance(answer, dict) and answer["body"] == {"error_response": {"code": 25, "msg": "Invalid signature"}}
    assert not platform.seen


async def test_an_hmac_sha256_signature_with_timestamp_and_nonce_is_accepted_each_call() -> None:
    config: dict[str, Json] = {
        "sign": {
            "secret": APP_SECRET,
            "algorithm": "hmac_sha256",
            "params": {"appKey": APP_KEY},
            "timestamp_param": "timestamp",
            "timestamp_format": "milliseconds",
            "nonce_param": "nonce",
            "pair": "{key}={value}",
            "separator": "&",
            "upper": False,
        }
    }
    async with ShopPlatform.start() as platform:
        config["base_url"] = platform.base_url
        async with opened(config) as connector:
            for n in range(2):  # a fresh nonce each call: the platform refuses a repeated one
                await connector.call("get", {"path": "openapi/v1/orders", "query": {"page": n}}, idempotency_key="k")
            with pytest.raises(errors.Permanent, match="HTTP 403"):
                config_without_nonce = {**config, "sign": {**config["sign"], "nonce_param": None}}  # type: ignore[dict-item]
                async with opened(config_without_nonce) as bare:
                    await bare.call("get", {"path": "openapi/v1/orders"}, idempotency_key="k")
    assert len(platform.seen) == 2 and platform.seen[0]["nonce"] != platform.seen[1]["nonce"]
    assert APP_SECRET not in str(platform.seen)
