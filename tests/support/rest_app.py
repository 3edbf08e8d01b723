"""A small CRM-like REST API on 127.0.0.1 that serves its own OpenAPI 3.1 document at /openapi.json.

Customers (张伟, 13812345678, 上海 …) can be listed four ways — page/per_page, offset/limit,
an opaque cursor and `Link: rel="next"` headers — read, created (name required, mainland
mobile number pattern, `Idempotency-Key` honoured) and changed (each change moves
`updated_at`). `/api/customers*` take a bearer token, `/api/reports/summary` an API key in
`X-API-Key`, `/api/admin/ping` HTTP basic, `/api/orders` an oauth2 client-credentials token
from `/oauth/token`; `/api/busy` always answers 429 with `Retry-After: 7`.

`async with RestApp.start() as app:` gives `app.url`, `app.requests` (every request, in
order), `app.add_customer(...)`, `app.change_customer(...)`, `app.document()`.
"""

from __future__ import annotations

import base64
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml
from aiohttp import web

__all__ = ["API_KEY", "BASIC", "CLIENT", "TOKEN", "RestApp", "Seen"]

TOKEN = "crm-bearer-7f3a9c2e51"
API_KEY = "crm-apikey-5b2e81d4"
BASIC = ("admin", "crm-basic-pw-93e1")
CLIENT = ("seamflow-client", "crm-client-secret-0c7d")
_PHONE = re.compile(r"^1[3-9]\d{9}$")
_START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Seen:
    """One request as the app received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names


@dataclass(slots=True)
class RestApp:
    """The CRM's data and its aiohttp application."""

    url: str = ""
    customers: dict[int, dict[str, Any]] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    created_by_key: dict[str, int] = field(default_factory=dict)
    tokens_issued: int = 0
    _ticks: int = 0

    @classmethod
    @contextlib.asynccontextmanager
    async def start(cls, port: int = 0) -> AsyncIterator[RestApp]:
        """Serve the app on 127.0.0.1 (a free port unless `port` is given) until the block ends."""
        app = cls()
        runner = web.AppRunner(app.web_app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        app.url = f"http://127.0.0.1:{port}"
        try:
            yield app
        finally:
            await runner.cleanup()

    def stamp(self) -> str:
        """The next `updated_at`: one second after the previous one."""
        self._ticks += 1
        return (_START + timedelta(seconds=self._ticks)).isoformat().replace("+00:00", "Z")

    def add_customer(
        self, name: str, phone: str, city: str = "上海", *, updated_at: str | None = None
    ) -> dict[str, Any]:
        number = max(self.customers, default=0) + 1
        customer = {
            "id": number,
            "name": name,
            "phone": phone,
            "city": city,
            "level": "standard",
            "note": None,
            "updated_at": updated_at or self.stamp(),
        }
        self.customers[number] = customer
        return customer

    def change_customer(self, number: int, *, updated_at: str | None = None, **fields: Any) -> dict[str, Any]:
        customer = self.customers[number]
        customer.update(fields, updated_at=updated_at or self.stamp())
        return customer

    def ordered(self, since: str | None = None) -> list[dict[str, Any]]:
        rows = sorted(self.customers.values(), key=lambda c: (c["updated_at"], c["id"]))
        return [c for c in rows if since is None or c["updated_at"] >= since]

    def web_app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/openapi.json", self._document)
        app.router.add_get("/docs/relative.yaml", self._relative_document)
        app.router.add_get("/", self._home)
        app.router.add_post("/oauth/token", self._token)
        app.router.add_get("/api/customers", self._bearer(self._list_by_page))
        app.router.add_post("/api/customers", self._bearer(self._create))
        app.router.add_get("/api/customers/by-offset", self._bearer(self._list_by_offset))
        app.router.add_get("/api/customers/by-cursor", self._bearer(self._list_by_cursor))
        app.router.add_get("/api/customers/by-link", self._bearer(self._list_by_link))
        app.router.add_get("/api/customers/{id}", self._bearer(self._get))
        app.router.add_patch("/api/customers/{id}", self._bearer(self._change))
        app.router.add_get("/api/reports/summary", self._summary)
        app.router.add_get("/api/admin/ping", self._ping)
        app.router.add_get("/api/orders", self._orders)
        app.router.add_get("/api/busy", self._busy)
        return app

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.requests.append(Seen(request.method, request.path, dict(request.query), headers))
        return await handler(request)

    def _bearer(self, handler: Handler) -> Handler:
        async def checked(request: web.Request) -> web.StreamResponse:
            if request.headers.get("Authorization") != f"Bearer {TOKEN}":
                return _error(401, "invalid or missing bearer token", {"WWW-Authenticate": "Bearer"})
            return await handler(request)

        return checked

    async def _document(self, request: web.Request) -> web.Response:
        return web.json_response(self.document())

    async def _relative_document(self, request: web.Request) -> web.Response:
        """The document in YAML with a relative server URL (`/api`), as many systems publish it."""
        document = {**self.document(), "servers": [{"url": "/api"}]}
        return web.Response(text=yaml.safe_dump(document, allow_unicode=True), content_type="application/yaml")

    async def _home(self, request: web.Request) -> web.Response:
        return web.Response(text="CRM")

    async def _token(self, request: web.Request) -> web.Response:
        pair = base64.b64encode(f"{CLIENT[0]}:{CLIENT[1]}".encode()).decode()
        form = await request.post()
        if request.headers.get("Authorization") != f"Basic {pair}" or form.get("grant_type") != "client_credentials":
            return _error(401, "invalid_client")
        self.tokens_issued += 1
        return web.json_response(
            {"access_token": f"crm-oauth-{self.tokens_issued}-a81f", "token_type": "bearer", "expires_in": 3600}
        )

    async def _list_by_page(self, request: web.Request) -> web.Response:
        page, per_page = _int(request, "page", 1), _int(request, "per_page", 20)
        rows = self.ordered(request.query.get("since"))
        chunk = rows[(page - 1) * per_page : page * per_page]
        return web.json_response({"data": chunk, "page": page, "per_page": per_page, "total": len(rows)})

    async def _list_by_offset(self, request: web.Request) -> web.Response:
        offset, limit = _int(request, "offset", 0), _int(request, "limit", 20)
        return web.json_response({"data": self.ordered()[offset : offset + limit], "offset": offset})

    async def _list_by_cursor(self, request: web.Request) -> web.Response:
        start = int(base64.urlsafe_b64decode(request.query["cursor"]).decode()) if "cursor" in request.query else 0
        limit = _int(request, "limit", 20)
        rows = self.ordered()
        end = start + limit
        following = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(rows) else None
        return web.json_response({"data": rows[start:end], "next_cursor": following})

    async def _list_by_link(self, request: web.Request) -> web.Response:
        page, per_page = _int(request, "page", 1), _int(request, "per_page", 2)
        rows = self.ordered()
        headers = {}
        if page * per_page < len(rows):  # a relative link, as RFC 8288 allows
            headers["Link"] = f'</api/customers/by-link?page={page + 1}&per_page={per_page}>; rel="next"'
        return web.json_response(rows[(page - 1) * per_page : page * per_page], headers=headers)

    async def _get(self, request: web.Request) -> web.Response:
        customer = self.customers.get(int(request.match_info["id"]))
        return web.json_response(customer) if customer else _error(404, "no such customer")

    async def _create(self, request: web.Request) -> web.Response:
        key = request.headers.get("Idempotency-Key")
        if key is not None and key in self.created_by_key:
            return web.json_response(self.customers[self.created_by_key[key]], status=200)
        body = await request.json()
        if not isinstance(body.get("name"), str) or not body["name"]:
            return _error(422, "name is required")
        if "phone" in body and not _PHONE.match(str(body["phone"])):
            return _error(422, "phone is not a mainland mobile number")
        customer = self.add_customer(body["name"], body.get("phone", ""), body.get("city", ""))
        customer.update({k: body[k] for k in ("level", "note") if k in body})
        if key is not None:
            self.created_by_key[key] = customer["id"]
        return web.json_response(customer, status=201)

    async def _change(self, request: web.Request) -> web.Response:
        number = int(request.match_info["id"])
        if number not in self.customers:
            return _error(404, "no such customer")
        return web.json_response(self.change_customer(number, **await request.json()))

    async def _summary(self, request: web.Request) -> web.Response:
        if request.headers.get("X-API-Key") != API_KEY:
            return _error(403, "invalid API key")
        cities: dict[str, int] = {}
        for customer in self.customers.values():
            cities[customer["city"]] = cities.get(customer["city"], 0) + 1
        return web.json_response({"customers": len(self.customers), "cities": cities})

    async def _ping(self, request: web.Request) -> web.Response:
        pair = base64.b64encode(f"{BASIC[0]}:{BASIC[1]}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {pair}":
            return _error(401, "invalid basic credentials", {"WWW-Authenticate": "Basic"})
        return web.json_response({"pong": True})

    async def _orders(self, request: web.Request) -> web.Response:
        if not request.headers.get("Authorization", "").startswith("Bearer crm-oauth-"):
            return _error(401, "invalid oauth token")
        return web.json_response({"data": [{"number": "SO-2025-0001", "amount": "199.00"}]})

    async def _busy(self, request: web.Request) -> web.Response:
        return _error(429, "too many requests", {"Retry-After": "7"})

    def document(self) -> dict[str, Any]:
        """The app's OpenAPI 3.1 document; its server is this app's `/api`."""
        return {
            "openapi": "3.1.0",
            "info": {"title": "示例 CRM", "version": "1.0"},
            "servers": [{"url": f"{self.url}/api"}],
            "security": [{"bearerAuth": []}],
            "paths": _paths(),
            "components": _components(),
        }


def _int(request: web.Request, name: str, default: int) -> int:
    return int(request.query.get(name, default))


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def _listing(operation_id: str | None, summary: str, parameters: list[Any], body: dict[str, Any]) -> dict[str, Any]:
    operation = {
        "summary": summary,
        "parameters": parameters,
        "responses": {"200": {"description": "customers", "content": {"application/json": {"schema": body}}}},
    }
    return {"operationId": operation_id, **operation} if operation_id else operation


def _ref(name: str, kind: str = "schemas") -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema}


def _paths() -> dict[str, Any]:
    customers = {"type": "array", "items": _ref("Customer")}
    page = {"type": "object", "properties": {"data": customers}}
    limit = _query("limit", {"type": "integer", "minimum": 1, "maximum": 100})
    answer = {"description": "the customer", "content": {"application/json": {"schema": _ref("Customer")}}}
    plain = {"200": {"description": "ok"}}
    return {
        "/customers": {
            "get": _listing(
                "listCustomers",
                "客户列表 (page/per_page)",
                [_ref("Page", "parameters"), _ref("PerPage", "parameters"), _query("since", {"type": "string"})],
                page,
            ),
            "post": {
                "operationId": "createCustomer",
                "summary": "新建客户",
                "parameters": [{"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}}],
                "requestBody": _ref("NewCustomer", "requestBodies"),
                "responses": {"201": answer},
            },
        },
        "/customers/by-offset": {
            "get": _listing(
                "listCustomersByOffset", "offset/limit", [_query("offset", {"type": "integer"}), limit], page
            )
        },
        "/customers/by-cursor": {
            "get": _listing("listCustomersByCursor", "cursor", [_query("cursor", {"type": "string"}), limit], page)
        },
        "/customers/by-link": {"get": _listing(None, "Link rel=next", [_ref("Page", "parameters")], customers)},
        "/customers/{id}": {
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "get": {"operationId": "getCustomer", "responses": {"200": answer}},
            "patch": {
                "operationId": "updateCustomer",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("CustomerChange")}}},
                "responses": {"200": answer},
            },
        },
        "/reports/summary": {"get": {"operationId": "getSummary", "security": [{"apiKey": []}], "responses": plain}},
        "/admin/ping": {"get": {"operationId": "adminPing", "security": [{"basicAuth": []}], "responses": plain}},
        "/orders": {"get": {"operationId": "listOrders", "security": [{"oauth": ["orders:read"]}], "responses": plain}},
        "/busy": {"get": {"operationId": "getBusy", "security": [], "responses": plain}},
    }


def _components() -> dict[str, Any]:
    phone = {"type": "string", "pattern": r"^1[3-9]\d{9}$"}
    fields = {
        "name": {"type": "string", "minLength": 1},
        "phone": phone,
        "city": {"type": "string"},
        "level": {"enum": ["standard", "vip"]},
        "note": {"type": ["string", "null"]},
    }
    return {
        "schemas": {
            "Customer": {
                "type": "object",
                "properties": {"id": {"type": "integer"}, **fields, "updated_at": {"type": "string"}},
            },
            "NewCustomer": {
                "type": "object",
                "required": ["name"],
                "properties": fields,
                "additionalProperties": False,
            },
            "CustomerChange": {"type": "object", "properties": fields, "additionalProperties": False},
        },
        "parameters": {
            "Page": _query("page", {"type": "integer", "minimum": 1}),
            "PerPage": _query("per_page", {"type": "integer", "minimum": 1, "maximum": 100}),
        },
        "requestBodies": {
            "NewCustomer": {"required": True, "content": {"application/json": {"schema": _ref("NewCustomer")}}}
        },
        "securitySchemes": {
            "bearerAuth": {"type": "http", "scheme": "bearer"},
            "basicAuth": {"type": "http", "scheme": "basic"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            "oauth": {
                "type": "oauth2",
                "flows": {"clientCredentials": {"tokenUrl": "/oauth/token", "scopes": {"orders:read": "read orders"}}},
            },
        },
    }
