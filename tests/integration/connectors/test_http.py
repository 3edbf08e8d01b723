"""The `http` connector against a real local HTTP sink on 127.0.0.1 (nothing mocked)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import hashlib
import hmac
import logging
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime

import pytest
import pytest_asyncio

from seamflow import clock, codec, connectors, errors
from seamflow.ids import Json
from tests.support.sink import Behaviour, Sink, spawn

SECRET = "tok-s3cr3t-5f1e0c"


pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running_sink() -> AsyncIterator[Sink]:
    async with Sink.start() as running:
        yield running


@pytest.fixture
def sink(running_sink: Sink) -> Sink:
    running_sink.reset()
    return running_sink


@asynccontextmanager
async def opened(
    config: Mapping[str, Json], *, timeout: timedelta = timedelta(seconds=5)
) -> AsyncIterator[connectors.HttpConnector]:
    connector = connectors.HttpConnector()
    await connector.open(connectors.Connection(name="shop", connector="http", config=config, timeout=timeout))
    try:
        yield connector
    finally:
        await connector.close()


def body_of(result: Json) -> dict[str, Json]:
    assert isinstance(result, dict)
    body = result["body"]
    assert isinstance(body, dict)
    return body


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_http_is_a_registered_connector() -> None:
    assert connectors.available_connectors()["http"] is connectors.HttpConnector
    assert isinstance(connectors.HttpConnector(), connectors.Connector)
    assert all(action.is_idempotent for action in connectors.HttpConnector.actions.values())


async def test_post_sends_json_with_exact_decimals_and_parses_the_answer(sink: Sink) -> None:
    async with opened({"base_url": sink.url}) as http:
        result = await http.call(
            "post", {"path": "/orders", "json": {"amount": Decimal("19.90")}}, idempotency_key="k1"
        )
    assert isinstance(result, dict)
    assert result["status"] == 201
    assert isinstance(result["headers"], dict)
    assert result["headers"]["content-type"] == "application/json"
    echo = body_of(result)["echo"]
    assert isinstance(echo, dict)
    assert str(echo["amount"]) == "19.90"
    seen = sink.requests[-1]
    assert (seen.method, seen.path, seen.body) == ("POST", "/orders", b'{"amount":19.90}')
    assert seen.headers["content-type"] == "application/json"


async def test_every_action_sends_the_idempotency_key(sink: Sink) -> None:
    async with opened({"base_url": sink.url}) as http:
        for action in ("get", "post", "put", "patch", "delete"):
            await http.call(action, {"path": f"/{action}"}, idempotency_key=f"key-{action}")
        await http.call("request", {"method": "post", "path": "/r"}, idempotency_key="key-r")
    seen = [(r.method, r.idempotency_key) for r in sink.requests]
    assert seen == [
        ("GET", "key-get"),
        ("POST", "key-post"),
        ("PUT", "key-put"),
        ("PATCH", "key-patch"),
        ("DELETE", "key-delete"),
        ("POST", "key-r"),
    ]


async def test_step_headers_override_the_idempotency_key_header(sink: Sink) -> None:
    async with opened({"base_url": sink.url}) as http:
        await http.call("post", {"path": "/o", "headers": {"idempotency-key": "mine"}}, idempotency_key="k")
    assert sink.requests[-1].idempotency_key == "mine"


async def test_query_form_and_text_bodies_reach_the_server(sink: Sink) -> None:
    async with opened({"base_url": f"{sink.url}/api"}) as http:
        await http.call(
            "get",
            {"path": "/items", "query": {"min": Decimal("1.50"), "tag": ["a", "b"]}},
            idempotency_key="q",
        )
        await http.call("post", {"path": "/form", "form": {"name": "张三"}}, idempotency_key="f")
        await http.call("put", {"url": f"{sink.url}/text", "content": "hello"}, idempotency_key="t")
    query, form, text = sink.requests
    assert (query.path, query.query) == ("/api/items", "min=1.50&tag=a&tag=b")
    assert form.headers["content-type"] == "application/x-www-form-urlencoded"
    assert form.body == b"name=%E5%BC%A0%E4%B8%89"
    assert (text.path, text.body) == ("/text", b"hello")


async def test_a_retry_with_the_same_key_yields_one_effect(sink: Sink) -> None:
    sink.behaviour = Behaviour(fail_next=1)
    async with opened({"base_url": sink.url}) as http:
        with pytest.raises(errors.Transient):
            await http.call("post", {"path": "/orders", "json": {"n": 1}}, idempotency_key="run1:order")
        first = await http.call("post", {"path": "/orders", "json": {"n": 1}}, idempotency_key="run1:order")
        again = await http.call("post", {"path": "/orders", "json": {"n": 1}}, idempotency_key="run1:order")
    assert isinstance(first, dict) and isinstance(again, dict)
    assert (first["status"], again["status"]) == (201, 200)
    assert first["body"] == again["body"]
    assert sink.stats()["effects"] == 1
    assert sink.stats()["per_key"] == {"run1:order": 3}


async def test_a_retry_yields_one_effect_at_a_sink_in_another_process() -> None:
    async with spawn() as remote:
        await remote.set_behaviour(fail_next=1)
        async with opened({"base_url": remote.url}) as http:
            with pytest.raises(errors.Transient):
                await http.call("post", {"path": "/o", "json": {}}, idempotency_key="k")
            await http.call("post", {"path": "/o", "json": {}}, idempotency_key="k")
        stats = await remote.stats()
    assert (stats["requests"], stats["effects"], stats["per_key"]) == (2, 1, {"k": 2})


async def test_bearer_token_reaches_the_server(sink: Sink) -> None:
    async with opened({"base_url": sink.url, "auth": {"bearer": SECRET}}) as http:
        await http.call("get", {"path": "/"}, idempotency_key="k")
    assert sink.requests[-1].headers["authorization"] == f"Bearer {SECRET}"


async def test_basic_credentials_reach_the_server(sink: Sink) -> None:
    auth: Json = {"basic": {"username": "erp", "password": SECRET}}
    async with opened({"base_url": sink.url, "auth": auth}) as http:
        await http.call("get", {"path": "/"}, idempotency_key="k")
    pair = base64.b64encode(f"erp:{SECRET}".encode()).decode()
    assert sink.requests[-1].headers["authorization"] == f"Basic {pair}"


@pytest.mark.parametrize(
    ("api_key", "header"),
    [({}, "x-api-key"), ({"header": "X-Token"}, "x-token")],
)
async def test_api_key_reaches_the_server_in_a_header(sink: Sink, api_key: dict[str, str], header: str) -> None:
    auth: Json = {"api_key": {"value": SECRET, **api_key}}
    async with opened({"base_url": sink.url, "auth": auth}) as http:
        await http.call("get", {"path": "/"}, idempotency_key="k")
    assert sink.requests[-1].headers[header] == SECRET


async def test_api_key_reaches_the_server_in_the_query(sink: Sink) -> None:
    auth: Json = {"api_key": {"query": "key", "value": SECRET}}
    async with opened({"base_url": sink.url, "auth": auth}) as http:
        await http.call("get", {"path": "/", "query": {"page": 2}}, idempotency_key="k")
    assert sink.requests[-1].query == f"key={SECRET}&page=2"


async def test_hmac_signature_of_the_raw_body_verifies_at_the_server(sink: Sink) -> None:
    auth: Json = {"hmac": {"secret": SECRET, "prefix": "sha256="}}
    async with opened({"base_url": sink.url, "auth": auth}) as http:
        await http.call("post", {"path": "/", "json": {"amount": Decimal("19.90")}}, idempotency_key="k")
    seen = sink.requests[-1]
    digest = hmac.new(SECRET.encode(), seen.body, hashlib.sha256).hexdigest()
    assert seen.headers["x-signature"] == f"sha256={digest}"


async def test_hmac_with_timestamp_signs_timestamp_dot_body(sink: Sink) -> None:
    auth: Json = {"hmac": {"secret": SECRET, "header": "X-Sig", "timestamp_header": "X-Timestamp"}}
    clock.set_fixed(datetime(2025, 3, 1, 8, 0, tzinfo=UTC))
    try:
        async with opened({"base_url": sink.url, "auth": auth}) as http:
            await http.call("post", {"path": "/", "content": "hi"}, idempotency_key="k")
    finally:
        clock.use_real()
    seen = sink.requests[-1]
    assert seen.headers["x-timestamp"] == "1740816000"
    expected = hmac.new(SECRET.encode(), b"1740816000.hi", hashlib.sha256).hexdigest()
    assert seen.headers["x-sig"] == expected


async def test_503_is_transient(sink: Sink) -> None:
    sink.behaviour = Behaviour(fail_next=1, fail_status=503)
    async with opened({"base_url": sink.url}) as http:
        with pytest.raises(errors.Transient) as caught:
            await http.call("post", {"path": "/orders"}, idempotency_key="k")
    assert caught.value.where == "shop.post"
    assert "503" in str(caught.value)
    assert caught.value.retry_after is None


async def test_429_with_retry_after_seconds_is_transient_with_that_delay(sink: Sink) -> None:
    sink.behaviour = Behaviour(fail_next=1, fail_status=429, retry_after="2")
    async with opened({"base_url": sink.url}) as http:
        with pytest.raises(errors.Transient) as caught:
            await http.call("post", {"path": "/orders"}, idempotency_key="k")
    assert caught.value.retry_after == timedelta(seconds=2)


async def test_503_with_retry_after_date_is_transient_with_the_delay_until_then(sink: Sink) -> None:
    now = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=90), usegmt=True)
    sink.behaviour = Behaviour(fail_next=1, fail_status=503, retry_after=later)
    clock.set_fixed(now)
    try:
        async with opened({"base_url": sink.url}) as http:
            with pytest.raises(errors.Transient) as caught:
                await http.call("get", {"path": "/"}, idempotency_key="k")
    finally:
        clock.use_real()
    assert caught.value.retry_after == timedelta(seconds=90)


async def test_400_is_permanent_and_carries_status_and_body(sink: Sink) -> None:
    sink.behaviour = Behaviour(fail_next=1, fail_status=400, fail_body={"error": "sku X9 unknown"})
    async with opened({"base_url": sink.url}) as http:
        with pytest.raises(errors.Permanent) as caught:
            await http.call("post", {"path": "/orders"}, idempotency_key="k")
    message = str(caught.value)
    assert message.startswith("shop.post: HTTP 400 Bad Request: ")
    assert "sku X9 unknown" in message
    assert f"(POST {sink.url}/orders)" in message


async def test_an_expected_error_status_is_returned_not_raised(sink: Sink) -> None:
    sink.behaviour = Behaviour(fail_next=1, fail_status=404, fail_body={"error": "none"})
    async with opened({"base_url": sink.url}) as http:
        result = await http.call("get", {"path": "/c/1", "expect": [200, 404]}, idempotency_key="k")
        with pytest.raises(errors.Permanent, match="expected one of"):
            await http.call("post", {"path": "/c", "expect": [200]}, idempotency_key="k2")
    assert isinstance(result, dict)
    assert (result["status"], result["body"]) == (404, {"error": "none"})


async def test_a_timeout_is_transient(sink: Sink) -> None:
    sink.behaviour = Behaviour(delay_ms=3000)
    async with opened({"base_url": sink.url}, timeout=timedelta(milliseconds=200)) as http:
        with pytest.raises(errors.Transient, match="timed out"):
            await http.call("get", {"path": "/slow"}, idempotency_key="k")


async def test_connection_refused_is_transient() -> None:
    async with opened({"base_url": f"http://127.0.0.1:{free_port()}"}) as http:
        with pytest.raises(errors.Transient, match=r"ClientConnectorError: Cannot connect to host"):
            await http.call("get", {"path": "/"}, idempotency_key="k")


@asynccontextmanager
async def raw_server(answer: bytes) -> AsyncIterator[str]:
    """A server on 127.0.0.1 that answers every request with these exact bytes; yields its URL."""

    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError):  # a client may connect and send nothing
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(reply, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


async def test_a_compressed_response_is_limited_after_decompression() -> None:
    unpacked = 200_000
    packed = gzip.compress(b"x" * unpacked)
    head = f"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-encoding: gzip\r\ncontent-length: {len(packed)}"
    async with raw_server(head.encode() + b"\r\n\r\n" + packed) as url:
        async with opened({"base_url": url, "response_max_bytes": unpacked}) as http:
            result = await http.call("get", {"path": "/"}, idempotency_key="k")
        assert isinstance(result, dict) and result["body"] == "x" * unpacked
        async with opened({"base_url": url, "response_max_bytes": unpacked - 1}) as http:
            with pytest.raises(errors.Permanent, match="larger than response_max_bytes"):
                await http.call("get", {"path": "/"}, idempotency_key="k")


async def test_header_values_that_are_not_utf8_are_read_as_latin1_and_repeats_are_joined() -> None:
    answer = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n"
        b"Content-Disposition: attachment; filename=\xd5\xc5.pdf\r\nX-Name: \xe5\xbc\xa0\r\n"
        b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\nok"
    )
    async with raw_server(answer) as url, opened({"base_url": url}) as http:
        result = await http.call("get", {"path": "/"}, idempotency_key="k")
    assert isinstance(result, dict)
    headers = result["headers"]
    assert isinstance(headers, dict)
    assert headers["content-disposition"] == "attachment; filename=\xd5\xc5.pdf"  # GBK bytes, as Latin-1
    assert (headers["x-name"], headers["set-cookie"]) == ("张", "a=1, b=2")
    codec.dumps(result)  # journaled as it is: no lone surrogates


async def test_a_header_with_a_line_break_is_permanent_and_reaches_no_server(sink: Sink) -> None:
    async with opened({"base_url": sink.url}) as http:
        with pytest.raises(errors.Permanent, match="header injection"):
            await http.call("get", {"path": "/", "headers": {"X-Note": "a\r\nX-Evil: 1"}}, idempotency_key="k")
    assert sink.requests == []


@pytest.mark.parametrize("is_chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_response_larger_than_the_limit_is_permanent(sink: Sink, is_chunked: bool) -> None:
    sink.behaviour = Behaviour(pad_bytes=50_000, chunked=is_chunked)
    async with opened({"base_url": sink.url, "response_max_bytes": 10_000}) as http:
        with pytest.raises(errors.Permanent, match="larger than response_max_bytes"):
            await http.call("get", {"path": "/big"}, idempotency_key="k")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"json": {}}, "give exactly one of url"),
        ({"path": "/", "bogus": 1}, "with.bogus"),
        ({"path": "/", "json": {}, "content": "x"}, "at most one of json, form, content"),
        ({"url": "/relative"}, "url must start with http"),
        ({"path": "/", "expect": [999]}, "with.expect.0"),
    ],
)
async def test_bad_step_input_is_permanent_and_names_the_field(sink: Sink, params: dict[str, Json], field: str) -> None:
    async with opened({"base_url": sink.url}) as http:
        with pytest.raises(errors.Permanent, match="invalid input") as caught:
            await http.call("post", params, idempotency_key="k")
    assert field in str(caught.value)
    assert sink.requests == []


async def test_unknown_action_is_permanent(sink: Sink) -> None:
    async with opened({"base_url": sink.url}) as http:
        with pytest.raises(errors.Permanent, match="unknown action"):
            await http.call("frobnicate", {}, idempotency_key="k")


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"verify_ssl": False}, "connections.yaml shop.verify_ssl"),
        ({"max_connections": 0}, "connections.yaml shop.max_connections"),
        ({"base_url": "example.com"}, "connections.yaml shop.base_url"),
        ({"auth": {"basic": {"username": "u"}}}, "connections.yaml shop.auth.basic.password"),
        ({"auth": {"bearer": SECRET, "hmac": {"secret": SECRET}}}, "connections.yaml shop.auth"),
        ({"auth": {"bearer": SECRET, "token": SECRET}}, "connections.yaml shop.auth.token"),
    ],
)
async def test_bad_config_is_invalid_input_naming_connection_and_field(config: dict[str, Json], field: str) -> None:
    connector = connectors.HttpConnector()
    with pytest.raises(errors.InvalidInput) as caught:
        await connector.open(connectors.Connection(name="shop", connector="http", config=config))
    message = str(caught.value)
    assert "connection 'shop'" in message
    assert field in message
    assert SECRET not in message


@pytest.mark.parametrize(
    "auth",
    [
        {"bearer": SECRET},
        {"basic": {"username": "erp", "password": SECRET}},
        {"api_key": {"query": "key", "value": SECRET}},
        {"hmac": {"secret": SECRET}},
    ],
    ids=["bearer", "basic", "api_key-query", "hmac"],
)
async def test_secret_appears_in_no_error_and_no_log_even_when_echoed(
    sink: Sink, caplog: pytest.LogCaptureFixture, auth: dict[str, Json]
) -> None:
    caplog.set_level(logging.DEBUG)
    sink.behaviour = Behaviour(fail_next=-1, fail_status=400, echo_headers=True)
    pair = base64.b64encode(f"erp:{SECRET}".encode()).decode()
    async with opened({"base_url": sink.url, "auth": auth}) as http:
        with pytest.raises(errors.Permanent) as caught:
            await http.call("post", {"path": "/o", "json": {"a": 1}}, idempotency_key="k")
    assert "idempotency-key" in str(caught.value)  # the echo is in the message, masked
    texts = [str(caught.value), repr(caught.value.__cause__)]
    texts += [logging.Formatter().format(record) for record in caplog.records]
    for text in texts:
        assert SECRET not in text
        assert pair not in text
