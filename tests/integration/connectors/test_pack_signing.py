"""A declared connector that signs its requests (`sign:`), against a shop platform that verifies the signature.

The platform (tests/support/shop_platform.py) recomputes each signature by its documented rule:
TOP's MD5 over sorted parameters and the JSON body, wrapped in the secret; and an HMAC-SHA256
over sorted parameters, the timestamp and nonce headers and the body. A wrong secret is refused.
"""

from __future__ import annotations

import pytest

from seamflow import connectors, errors, flows, redact
from seamflow.ids import Json
from tests.support.shop_platform import APP_KEY, APP_SECRET, ShopPlatform

pytestmark = pytest.mark.timeout(30)

SHOP = """\
connector: demo_shop
title: 云店铺开放平台
settings:
  base_url: {}
  app_key: {}
  app_secret: {secret: true}
base_url: "{{ config.base_url }}"
sign:
  secret: "{{ config.app_secret }}"
  algorithm: md5
  params: {app_key: "{{ config.app_key }}", sign_method: md5, v: "2.0", format: json}
  timestamp_param: timestamp
  timestamp_format: datetime
  body: true
errors: {code: error_response.code, message: error_response.msg, ok: [0]}
operations:
  get_trade:
    path: router/rest
    query: {method: taobao.trade.fullinfo.get, tid: "{{ input.tid }}", fields: "tid,status"}
    input: {type: object, required: [tid], properties: {tid: {type: string}}}
    output: trade_fullinfo_get_response.trade
  push_trade:
    method: POST
    path: router/rest
    query: {method: taobao.trade.push}
    body: {tid: "{{ input.tid }}", buyer_nick: "{{ input.buyer_nick }}"}
    input: {type: object, required: [tid], properties: {tid: {type: string}, buyer_nick: {type: string}}}
"""

HEADERS = """\
connector: demo_orders
settings:
  base_url: {}
  app_secret: {secret: true}
base_url: "{{ config.base_url }}"
sign:
  secret: "{{ config.app_secret }}"
  algorithm: hmac_sha256
  timestamp_param: X-Ca-Timestamp
  timestamp_format: milliseconds
  nonce_param: X-Ca-Nonce
  param: X-Ca-Signature
  pair: "{key}={value}"
  separator: "&"
  upper: false
  body: true
  place: header
errors: {code: code, message: message, statuses: [403]}
operations:
  create_order:
    method: POST
    path: openapi/v2/orders
    query: {shop_id: "{{ input.shop_id }}"}
    body: {order_no: "{{ input.order_no }}", amount: "{{ input.amount }}"}
    input: {type: object, required: [shop_id, order_no], properties: {shop_id: {}, order_no: {}, amount: {}}}
    output: data
"""


async def _open(text: str, kind: str, config: dict[str, Json]) -> connectors.Connector:
    cls = flows.connector_files.load_connector_text(text, f"connectors/{kind}.yaml")
    connector = cls()
    await connector.open(connectors.Connection(kind, kind, config))
    return connector


async def test_md5_over_sorted_parameters_and_the_json_body_is_accepted() -> None:
    async with ShopPlatform.start() as platform:
        connector = await _open(
            SHOP, "demo_shop", {"base_url": platform.base_url, "app_key": APP_KEY, "app_secret": APP_SECRET}
        )
        try:
            trade = await connector.call("get_trade", {"tid": "3817264095521"}, idempotency_key="k1")
            pushed = await connector.call(
                "push_trade", {"tid": "3817264095521", "buyer_nick": "张伟"}, idempotency_key="k2"
            )
        finally:
            await connector.close()
    assert trade == {"tid": "3817264095521", "status": "WAIT_SELLER_SEND_GOODS"}
    assert isinstance(pushed, dict) and "trade_fullinfo_get_response" in pushed
    assert [q["method"] for q in platform.seen] == ["taobao.trade.fullinfo.get", "taobao.trade.push"]
    assert all(len(q["sign"]) == 32 and q["sign"].isupper() for q in platform.seen)


async def test_a_wrong_secret_is_refused_by_the_platform_and_the_secret_is_in_no_error() -> None:
    redact.register("wrong-secret-0f9e8d7c")
    async with ShopPlatform.start() as platform:
        connector = await _open(
            SHOP,
            "demo_shop",
            {"base_url": platform.base_url, "app_key": APP_KEY, "app_secret": "wrong-secret-0f9e8d7c"},
        )
        try:
            with pytest.raises(errors.Permanent) as refused:
                await connector.call("get_trade", {"tid": "1"}, idempotency_key="k")
        finally:
            await connector.close()
    assert refused.value.code == "connector.rejected"
    assert "error_response.code=25 (error_response.msg='Invalid signature')" in str(refused.value)
    assert "wrong-secret-0f9e8d7c" not in str(refused.value) and platform.seen == []


async def test_hmac_sha256_with_timestamp_nonce_and_signature_in_headers_signs_the_body() -> None:
    async with ShopPlatform.start() as platform:
        connector = await _open(HEADERS, "demo_orders", {"base_url": platform.base_url, "app_secret": APP_SECRET})
        try:
            for n in range(2):  # a fresh nonce each call: the platform refuses a repeated one
                created = await connector.call(
                    "create_order",
                    {"shop_id": 80211, "order_no": f"SO2026120700{n}", "amount": "1280.00"},
                    idempotency_key=f"k{n}",
                )
                assert created == {"order_no": f"SO2026120700{n}", "status": "CREATED"}
        finally:
            await connector.close()
    assert platform.seen == [{"shop_id": "80211"}, {"shop_id": "80211"}], "nothing of the signature in the query"
    assert len(platform.nonces) == 2
