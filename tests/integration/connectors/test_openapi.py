"""The `openapi` connector against a real local CRM REST app on 127.0.0.1 (nothing mocked)."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml

from seamflow import connectors, errors
from seamflow.connectors import base
from seamflow.connectors.openapi import OpenApiConnector
from seamflow.ids import Json
from tests.support.rest_app import API_KEY, BASIC, CLIENT, TOKEN, RestApp

pytestmark = pytest.mark.asyncio(loop_scope="module")

BEARER: dict[str, Json] = {"bearerAuth": {"token": TOKEN}}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running_app() -> AsyncIterator[RestApp]:
    async with RestApp.start() as running:
        yield running


@pytest.fixture
def app(running_app: RestApp) -> RestApp:
    running_app.customers.clear()
    running_app.requests.clear()
    running_app.created_by_key.clear()
    running_app.tokens_issued = 0
    return running_app


@asynccontextmanager
async def opened(config: Mapping[str, Json]) -> AsyncIterator[OpenApiConnector]:
    connector = OpenApiConnector()
    await connector.open(
        connectors.Connection(name="crm", connector="openapi", config=config, timeout=timedelta(seconds=5))
    )
    try:
        yield connector
    finally:
        await connector.close()


def crm(app: RestApp, **extra: Json) -> dict[str, Json]:
    return {"document": f"{app.url}/openapi.json", "auth": BEARER, **extra}


def api_requests(app: RestApp) -> list[str]:
    return [seen.path for seen in app.requests if seen.path.startswith("/api/")]


def seed(app: RestApp, count: int) -> None:
    people = [("张伟", "13812345678", "上海"), ("王芳", "13912345678", "北京"), ("李娜", "15012345678", "广州")]
    for index in range(count):
        name, phone, city = people[index % len(people)]
        app.add_customer(f"{name}{index}", phone, city)


def body(result: Json) -> Any:
    assert isinstance(result, dict)
    return result["body"]


async def test_openapi_is_a_registered_connector_that_polls_and_checks() -> None:
    assert connectors.available_connectors()["openapi"] is OpenApiConnector
    connector = OpenApiConnector()
    assert isinstance(connector, connectors.Connector)
    assert isinstance(connector, base.Polls) and isinstance(connector, base.Checks)
    assert list(base.feeds_of(OpenApiConnector)) == ["list"]


async def test_operations_become_actions_when_the_connection_opens(app: RestApp) -> None:
    # Before any document is read (flow validate), the class lists `call` and accepts any operation name.
    assert list(OpenApiConnector.actions) == ["call"]
    assert OpenApiConnector.actions["create_customer"].input.model_config.get("extra") == "allow"
    async with opened(crm(app)) as connector:
        actions = connector.actions
        assert {"call", "list_customers", "create_customer", "get_customer", "update_customer"} <= set(actions)
        assert "get_customers_by_link" in actions  # no operationId: named from method and path
        assert "no_such_operation" not in actions
        assert actions["get_customer"].is_idempotent
        assert actions["create_customer"].is_idempotent  # it declares an Idempotency-Key header
        assert not actions["update_customer"].is_idempotent  # PATCH without one
        fields = actions["create_customer"].input.model_fields
        assert fields["body"].is_required() and not fields["paginate"].is_required()
    assert OpenApiConnector.actions is not connector.actions


async def test_create_sends_the_body_and_the_idempotency_key_once(app: RestApp) -> None:
    new: dict[str, Json] = {"body": {"name": "张伟", "phone": "13812345678", "city": "上海", "note": None}}
    async with opened(crm(app)) as connector:
        first = await connector.call("create_customer", new, idempotency_key="run_1:create")
        again = await connector.call("create_customer", new, idempotency_key="run_1:create")
    assert isinstance(first, dict) and first["status"] == 201
    assert body(first)["name"] == "张伟" and body(first)["city"] == "上海"
    assert isinstance(again, dict) and again["status"] == 200 and body(again)["id"] == body(first)["id"]
    assert len(app.customers) == 1
    posts = [seen for seen in app.requests if seen.method == "POST"]
    assert [seen.headers["idempotency-key"] for seen in posts] == ["run_1:create", "run_1:create"]
    assert posts[0].headers["authorization"] == f"Bearer {TOKEN}"


async def test_call_names_the_operation_by_its_operation_id(app: RestApp) -> None:
    seed(app, 1)
    async with opened(crm(app)) as connector:
        result = await connector.call("call", {"operation": "getCustomer", "id": "1"}, idempotency_key="k")
    assert body(result)["name"] == "张伟0"
    assert api_requests(app) == ["/api/customers/1"]


@pytest.mark.parametrize(
    ("action", "inputs", "expected"),
    [
        ("create_customer", {"body": {"phone": "13812345678"}}, "body.name: missing; it is required"),
        (
            "create_customer",
            {"body": {"name": "张伟", "phone": "123"}},
            r"body.phone: '123' does not match '^1[3-9]\d{9}$'",
        ),
        ("create_customer", {}, "body: missing; it is required"),
        ("create_customer", {"body": {"name": "张伟", "vip": True}}, "body: unknown field 'vip'"),
        ("get_customer", {"id": "abc"}, "id: 'abc' is not of type 'integer'"),
        ("list_customers", {"per_page": 500}, "per_page: 500 is greater than the maximum of 100"),
        ("list_customers", {"pagee": 2}, "unknown input 'pagee'; expected page, per_page, since"),
        ("no_such_operation", {}, "unknown operation 'no_such_operation'"),
        ("call", {"id": 1}, "operation: got None; expected an operationId"),
        ("list_customers", {"paginate": {"style": "pages"}}, "paginate.style"),
    ],
)
async def test_invalid_inputs_are_refused_before_any_request(
    app: RestApp, action: str, inputs: dict[str, Json], expected: str
) -> None:
    async with opened(crm(app)) as connector:
        with pytest.raises(errors.Permanent) as caught:
            await connector.call(action, inputs, idempotency_key="k")
    assert expected in str(caught.value)
    assert str(caught.value).startswith(f"crm.{action}: ")
    assert caught.value.code == "connector.invalid_input"
    assert api_requests(app) == []


async def test_openapi_30_nullable_fields_accept_null_and_nothing_else(app: RestApp, tmp_path: Path) -> None:
    document = {
        "openapi": "3.0.3",
        "info": {"title": "CRM 3.0", "version": "1"},
        "paths": {
            "/customers": {
                "post": {
                    "operationId": "createCustomer",
                    "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/New"}}}},
                    "responses": {"201": {"description": "created"}},
                }
            }
        },
        "components": {
            "schemas": {
                "New": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}, "note": {"type": "string", "nullable": True}},
                }
            },
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearerAuth": []}],
    }
    path = tmp_path / "crm30.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    async with opened({"document": str(path), "base_url": f"{app.url}/api", "auth": BEARER}) as connector:
        created = await connector.call("create_customer", {"body": {"name": "王芳", "note": None}}, idempotency_key="a")
        with pytest.raises(errors.Permanent, match=r"body.note: 5 is not of type 'string', 'null'"):
            await connector.call("create_customer", {"body": {"name": "王芳", "note": 5}}, idempotency_key="b")
    assert isinstance(created, dict) and created["status"] == 201
    assert len(app.customers) == 1


@pytest.mark.parametrize(
    ("action", "paginate", "pages"),
    [
        ("list_customers", {"style": "page", "items": "data", "size": 2}, [("1",), ("2",), ("3",)]),
        ("list_customers_by_offset", {"style": "offset", "items": "data", "size": 2}, [("0",), ("2",), ("4",)]),
        ("list_customers_by_cursor", {"style": "cursor", "items": "data", "size": 2}, None),
        ("get_customers_by_link", {"style": "link"}, None),
    ],
)
async def test_each_pagination_style_reads_every_page(
    app: RestApp, action: str, paginate: dict[str, Json], pages: list[tuple[str, ...]] | None
) -> None:
    seed(app, 5)
    async with opened(crm(app)) as connector:
        result = await connector.call(action, {"paginate": paginate}, idempotency_key="list")
    assert isinstance(result, dict)
    items: Any = result["items"]
    assert [item["id"] for item in items] == [1, 2, 3, 4, 5]
    assert result["pages"] == 3 and result["has_more"] is False
    listed = [seen for seen in app.requests if seen.path.startswith("/api/")]
    if pages is not None:
        asked = [tuple(v for k, v in seen.query.items() if k not in ("per_page", "limit")) for seen in listed]
        sizes = {seen.query.get("per_page", seen.query.get("limit")) for seen in listed}
        assert asked == [page[:1] for page in pages] and sizes == {"2"}
    assert [seen.headers["idempotency-key"] for seen in listed] == ["list", "list:2", "list:3"]


async def test_pagination_stops_at_max_items_and_max_pages(app: RestApp) -> None:
    seed(app, 5)
    async with opened(crm(app)) as connector:
        by_items = await connector.call(
            "list_customers",
            {"paginate": {"style": "page", "items": "data", "size": 2, "max_items": 3}},
            idempotency_key="k",
        )
        by_pages = await connector.call(
            "list_customers",
            {"paginate": {"style": "page", "items": "data", "size": 2, "max_pages": 1}},
            idempotency_key="k",
        )
    assert isinstance(by_items, dict) and isinstance(by_pages, dict)
    assert by_items == {"items": by_items["items"], "pages": 2, "has_more": True}
    assert by_pages == {"items": by_pages["items"], "pages": 1, "has_more": True}
    shown: Any = [by_items["items"], by_pages["items"]]
    assert [len(items) for items in shown] == [3, 2]


async def test_a_list_that_is_not_where_items_points_is_a_permanent_error(app: RestApp) -> None:
    seed(app, 1)
    async with opened(crm(app)) as connector:
        with pytest.raises(errors.Permanent, match="no list of items at 'rows'"):
            await connector.call(
                "list_customers", {"paginate": {"style": "page", "items": "rows"}}, idempotency_key="k"
            )


async def test_api_key_basic_and_oauth2_credentials_follow_the_security_schemes(app: RestApp) -> None:
    auth: dict[str, Json] = {
        "apiKey": {"value": API_KEY},
        "basicAuth": {"username": BASIC[0], "password": BASIC[1]},
        "oauth": {"client_id": CLIENT[0], "client_secret": CLIENT[1]},
    }
    app.add_customer("张伟", "13812345678", "上海")
    async with opened({"document": f"{app.url}/openapi.json", "auth": auth}) as connector:
        summary = await connector.call("get_summary", {}, idempotency_key="k")
        ping = await connector.call("admin_ping", {}, idempotency_key="k")
        first = await connector.call("list_orders", {}, idempotency_key="k")
        second = await connector.call("list_orders", {}, idempotency_key="k")
        with pytest.raises(errors.Permanent, match="needs credentials for the security scheme bearerAuth"):
            await connector.call("list_customers", {}, idempotency_key="k")
    assert body(summary) == {"customers": 1, "cities": {"上海": 1}}
    assert body(ping) == {"pong": True}
    assert body(first) == body(second) and app.tokens_issued == 1  # the token is cached until it expires
    assert "/api/customers" not in api_requests(app)


async def test_refused_credentials_are_permanent_and_never_shown(
    app: RestApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "crm-wrong-token-61c0d9"
    async with opened(crm(app, auth={"bearerAuth": {"token": wrong}})) as connector:
        with pytest.raises(errors.Permanent) as caught:
            await connector.call("list_customers", {}, idempotency_key="k")
    assert "HTTP 401" in str(caught.value) and wrong not in str(caught.value)
    assert app.requests[-1].headers["authorization"] == f"Bearer {wrong}"
    assert all(wrong not in record.getMessage() for record in caplog.records)


async def test_429_is_transient_with_retry_after(app: RestApp) -> None:
    async with opened(crm(app)) as connector:
        with pytest.raises(errors.Transient) as caught:
            await connector.call("get_busy", {}, idempotency_key="k")
        with pytest.raises(errors.Permanent, match="HTTP 404"):
            await connector.call("get_customer", {"id": 99}, idempotency_key="k")
    assert caught.value.retry_after == timedelta(seconds=7)


@pytest.mark.parametrize("since_param", [None, "since"])
@pytest.mark.parametrize("paginate", [None, {"style": "page", "size": 2}])
async def test_the_list_feed_finds_new_and_changed_items_and_never_skips_equal_timestamps(
    app: RestApp, since_param: str | None, paginate: dict[str, Json] | None
) -> None:
    app.add_customer("张伟", "13812345678", updated_at="2025-03-01T10:00:00Z")
    app.add_customer("王芳", "13912345678", updated_at="2025-03-01T10:00:05Z")
    app.add_customer("李娜", "15012345678", updated_at="2025-03-01T10:00:05Z")  # the same second as 王芳
    settings: dict[str, Json] = {
        "operation": "listCustomers",
        "items": "data",
        "cursor": "updated_at",
        "since_param": since_param,
        "paginate": paginate,
    }
    async with opened(crm(app)) as connector:
        first = await connector.poll("list", settings, None, limit=2)
        second = await connector.poll("list", settings, first.cursor, limit=2)
        quiet = await connector.poll("list", settings, second.cursor, limit=2)
        app.change_customer(1, city="杭州", updated_at="2025-03-01T10:00:09Z")
        app.add_customer("赵磊", "18612345678", updated_at="2025-03-01T10:00:09Z")
        third = await connector.poll("list", settings, quiet.cursor, limit=10)
    assert [item.key for item in first.items] == [
        "listCustomers:1:2025-03-01T10:00:00Z",
        "listCustomers:2:2025-03-01T10:00:05Z",
    ]
    assert first.more is True
    assert [item.key for item in second.items] == ["listCustomers:3:2025-03-01T10:00:05Z"]
    assert second.more is False and quiet.items == [] and quiet.cursor == second.cursor
    assert [item.key for item in third.items] == [
        "listCustomers:1:2025-03-01T10:00:09Z",
        "listCustomers:4:2025-03-01T10:00:09Z",
    ]
    assert body({"body": third.items[0].body})["city"] == "杭州"
    assert third.items[0].at is not None and third.items[0].at.second == 9
    if since_param:
        assert app.requests[-1].query["since"] == "2025-03-01T10:00:05Z"


async def test_the_list_feed_refuses_items_without_the_key_field(app: RestApp) -> None:
    seed(app, 1)
    settings: dict[str, Json] = {"operation": "list_customers", "items": "data", "key": "code"}
    async with opened(crm(app)) as connector:
        with pytest.raises(errors.Permanent, match="item 0 of list_customers has no field 'code'"):
            await connector.poll("list", settings, None, limit=10)
        with pytest.raises(errors.Permanent, match=r"invalid feed settings: with\.operation"):
            await connector.poll("list", {"items": "data"}, None, limit=10)


async def test_a_document_from_a_file_in_yaml_or_json_needs_no_request(app: RestApp, tmp_path: Path) -> None:
    yaml_path, json_path = tmp_path / "crm.yaml", tmp_path / "crm.json"
    yaml_path.write_text(yaml.safe_dump(app.document(), allow_unicode=True), encoding="utf-8")
    json_path.write_text(json.dumps(app.document(), ensure_ascii=False), encoding="utf-8")
    for path in (yaml_path, json_path):
        async with opened({"document": str(path), "auth": BEARER}) as connector:
            assert "get_customer" in connector.actions
    assert app.requests == []


async def test_a_document_url_with_a_relative_server_is_read_at_open(app: RestApp) -> None:
    seed(app, 1)
    async with opened({"document": f"{app.url}/docs/relative.yaml", "auth": BEARER}) as connector:
        assert [seen.path for seen in app.requests] == ["/docs/relative.yaml"]  # at open, not per call
        result = await connector.call("get_customer", {"id": 1}, idempotency_key="k")
    assert body(result)["phone"] == "13812345678"
    assert [seen.path for seen in app.requests] == ["/docs/relative.yaml", "/api/customers/1"]


def broken(change: dict[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "servers": [{"url": "http://127.0.0.1:9/api"}],
        "paths": {"/a": {"get": {"operationId": "getA", "responses": {}}}},
    }
    document.update(change)
    return {key: value for key, value in document.items() if value is not None}


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (broken({"paths": None}), "paths: got no paths; expected an object of paths"),
        (broken({"openapi": None, "swagger": "2.0"}), "openapi: got swagger '2.0'; expected OpenAPI 3.0.x or 3.1.x"),
        (
            broken({"paths": {"/a": {"get": {"operationId": "getA"}}, "/b": {"get": {"operationId": "get_a"}}}}),
            "paths./b.get.operationId: operation name 'get_a' is already used by 'getA' at paths./a.get",
        ),
        (
            broken({"paths": {"/a": {"get": {"parameters": [{"$ref": "#/components/parameters/Nope"}]}}}}),
            "paths./a.get.parameters[0].$ref: $ref '#/components/parameters/Nope' points at nothing",
        ),
        (
            broken({"paths": {"/a/{id}": {"get": {"operationId": "getA"}}}}),
            "path parameter 'id' of /a/{id} is not declared",
        ),
        (broken({"servers": None}), "give base_url: the document"),
    ],
)
async def test_a_broken_document_is_refused_with_its_place(
    tmp_path: Path, document: dict[str, Any], expected: str
) -> None:
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(errors.InvalidInput) as caught:
        async with opened({"document": str(path)}):
            pass
    assert expected in str(caught.value)
    assert caught.value.code == "connection.invalid"


async def test_unreadable_documents_say_what_is_wrong(app: RestApp, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.yaml"
    garbage.write_text("openapi: [3.1\n  paths: {", encoding="utf-8")
    with pytest.raises(errors.InvalidInput, match=r"garbage.yaml: not valid JSON or YAML at line 2"):
        async with opened({"document": str(garbage)}):
            pass
    with pytest.raises(errors.InvalidInput, match="cannot read the OpenAPI document"):
        async with opened({"document": str(tmp_path / "missing.yaml")}):
            pass
    with pytest.raises(errors.InvalidInput, match="HTTP 404"):
        async with opened({"document": f"{app.url}/nope.json"}):
            pass
    with pytest.raises(errors.InvalidInput, match=r"auth.bearer: no security scheme of that name"):
        async with opened(crm(app, auth={"bearer": {"token": TOKEN}})):
            pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_check_proves_reachability_and_with_an_operation_the_credentials(app: RestApp) -> None:
    async with opened(crm(app)) as connector:
        line = await connector.check()
    assert "'示例 CRM' (3.1.0" in line and "/api answered HTTP 404" in line
    async with opened(crm(app, check_operation="listCustomers")) as connector:
        assert (await connector.check()).endswith("listCustomers answered HTTP 200")
    async with opened(crm(app, check_operation="listCustomers", auth={"bearerAuth": {"token": "bad-token-1"}})) as c:
        with pytest.raises(errors.Permanent, match="credentials refused: listCustomers answered HTTP 401"):
            await c.check()
    async with opened(crm(app, base_url=f"http://127.0.0.1:{free_port()}/api")) as connector:
        with pytest.raises(errors.Permanent, match=r"cannot reach http://127\.0\.0\.1:"):
            await connector.check()


async def open_kept(config: Mapping[str, Json], state_dir: Path) -> OpenApiConnector:
    connector = OpenApiConnector()
    connection = connectors.Connection(
        name="crm", connector="openapi", config=config, timeout=timedelta(seconds=5), state_dir=state_dir
    )
    await connector.open(connection)
    return connector


async def test_a_fetched_document_is_kept_and_used_while_its_url_does_not_answer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / ".seamflow" / "connections" / "crm"
    async with RestApp.start() as app:
        config = crm(app)
        connector = await open_kept(config, state)
        await connector.close()
    [kept] = state.iterdir()
    assert TOKEN not in kept.name and "127.0.0.1" not in kept.name  # the URL may carry a key: named by digest

    with caplog.at_level(logging.INFO, logger="seamflow.connectors.openapi"):
        connector = await open_kept(config, state)  # the system is down: the kept copy serves
    try:
        assert "get_customer" in connector.actions
        assert any(str(kept) in r.getMessage() and "using the copy kept" in r.getMessage() for r in caplog.records)
        with pytest.raises(errors.Transient):  # its actions wait for the system, retried as usual
            await connector.call("get_customer", {"id": 1}, idempotency_key="k1")
    finally:
        await connector.close()


async def test_a_document_url_down_at_open_is_read_at_the_first_call_once_it_answers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    config: dict[str, Json] = {"document": f"http://127.0.0.1:{port}/openapi.json", "auth": BEARER}
    with caplog.at_level(logging.INFO, logger="seamflow.connectors.openapi"):
        connector = await open_kept(config, tmp_path / "crm")  # nothing kept yet: it opens all the same
    try:
        assert any("the document is read at the first call" in r.getMessage() for r in caplog.records)
        with pytest.raises(errors.Transient, match=rf"fetching the OpenAPI document http://127\.0\.0\.1:{port}/"):
            await connector.call("get_customer", {"id": 1}, idempotency_key="k1")
        async with RestApp.start(port=port) as app:
            app.add_customer("陈静", "13612345678", "杭州")
            answer = await connector.call("get_customer", {"id": 1}, idempotency_key="k2")
            assert body(answer)["name"] == "陈静"
            assert "create_customer" in connector.actions
    finally:
        await connector.close()
