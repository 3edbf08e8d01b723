"""The published OpenAPI documents of Stripe, Square, Xero and Slack (tests/fixtures/openapi), opened and called.

Each document opens as it is (gzip-compressed), every operation becomes callable once its
credentials are given, and one operation of each is called against a local echo server (the
servers' URLs overridden to 127.0.0.1) with the credentials the document asks for. The oauth2
documents sign in with the authorization code flow against `tests/support/oauth_server.py`:
their `authorizationUrl` and `tokenUrl` are pointed at it in a copy (the real ones cannot be
reached from here), and the code is exchanged as `seamflow connections authorize` does.
Each document is opened once per module: Stripe's is 2.5 MB of JSON.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from seamflow import connectors
from seamflow.connectors.openapi import OpenApiConnector
from seamflow.ids import Json
from tests.support.echo_server import Echo, Seen
from tests.support.oauth_server import CLIENT_ID, CLIENT_SECRET, AuthServer

pytestmark = pytest.mark.asyncio(loop_scope="module")

FIXTURES = Path(__file__).parents[2] / "fixtures" / "openapi"
STRIPE_KEY = "sk_test_51PlantedStripeKey9QxW"
SQUARE_APP_SECRET = "sq0csp-planted-app-secret-Vb7"
XERO_TENANT = "8f5b2c1e-4d0a-4b6e-9f3c-2a7d1e5b6c90"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def echo() -> AsyncIterator[Echo]:
    async with Echo.start() as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def auth_server() -> AsyncIterator[AuthServer]:
    async with AuthServer.start() as server:
        yield server


def pointed_at(document: str, scheme: str, server: AuthServer, folder: Path) -> Path:
    """A gzip copy of `document` whose scheme's authorization code flow uses the local authorization server."""
    data = json.loads(gzip.decompress((FIXTURES / document).read_bytes()))
    flow = data["components"]["securitySchemes"][scheme]["flows"]["authorizationCode"]
    flow["authorizationUrl"], flow["tokenUrl"] = f"{server.base_url}/authorize", f"{server.base_url}/token"
    copy = folder / document
    copy.write_bytes(gzip.compress(json.dumps(data).encode()))
    return copy


async def opened(name: str, config: Mapping[str, Json]) -> OpenApiConnector:
    connector = OpenApiConnector()
    connection = connectors.Connection(name=name, connector="openapi", config=config, timeout=timedelta(seconds=10))
    await connector.open(connection)
    return connector


async def authorized(connector: OpenApiConnector) -> None:
    """Consent as the person would, and exchange the code (what `connections authorize` does)."""
    pending = connector.begin_authorization("http://127.0.0.1:8976/callback")
    async with httpx.AsyncClient() as browser:
        consent = await browser.get(pending.url)  # the redirect to the loopback is read, not followed
    assert consent.status_code == 302, consent.text
    await connector.finish_authorization(pending, consent.headers["location"])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stripe(echo: Echo) -> AsyncIterator[OpenApiConnector]:
    auth: dict[str, Json] = {"bearerAuth": {"token": STRIPE_KEY}, "basicAuth": {"username": STRIPE_KEY, "password": ""}}
    document = str(FIXTURES / "stripe.com.json.gz")
    connector = await opened("stripe", {"document": document, "base_url": echo.url, "auth": auth})
    yield connector
    await connector.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def square(
    echo: Echo, auth_server: AuthServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[OpenApiConnector]:
    document = pointed_at("squareup.com.json.gz", "oauth2", auth_server, tmp_path_factory.mktemp("square"))
    auth: dict[str, Json] = {
        "oauth2": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        "oauth2ClientSecret": {"value": f"Client {SQUARE_APP_SECRET}"},
    }
    connector = await opened("square", {"document": str(document), "base_url": echo.url, "auth": auth})
    await authorized(connector)
    yield connector
    await connector.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def xero(
    echo: Echo, auth_server: AuthServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[OpenApiConnector]:
    document = pointed_at("xero.com-accounting.json.gz", "OAuth2", auth_server, tmp_path_factory.mktemp("xero"))
    auth: dict[str, Json] = {"OAuth2": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}}
    connector = await opened("xero", {"document": str(document), "base_url": echo.url, "auth": auth})
    await authorized(connector)
    yield connector
    await connector.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def slack(
    echo: Echo, auth_server: AuthServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[OpenApiConnector]:
    document = pointed_at("slack.com.json.gz", "slackAuth", auth_server, tmp_path_factory.mktemp("slack"))
    auth: dict[str, Json] = {"slackAuth": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}}
    connector = await opened("slack", {"document": str(document), "base_url": echo.url, "auth": auth})
    await authorized(connector)
    yield connector
    await connector.close()


def bearer_of(request: Seen, server: AuthServer) -> str:
    """The access token a request carried; it must be one the authorization server issued and still honours."""
    token = request.headers.get("Authorization", "").removeprefix("Bearer ")
    assert token in server.access, f"not an access token of the authorization server: {token[:6]}…"
    return token


async def test_every_operation_of_the_four_documents_is_callable_once_credentials_are_given(
    stripe: OpenApiConnector, square: OpenApiConnector, xero: OpenApiConnector, slack: OpenApiConnector
) -> None:
    counts = {c: (len(c.callable_actions()), len(c.actions) - 1) for c in (stripe, square, xero, slack)}
    assert counts[stripe] == (452, 452)
    assert counts[square] == (200, 200)
    assert counts[xero] == (224, 224)
    assert counts[slack] == (174, 174)


async def test_stripe_takes_its_secret_key_as_bearer_or_basic(stripe: OpenApiConnector, echo: Echo) -> None:
    answer = await stripe.call("get_customers", {"email": "zhang.wei@example.cn", "limit": 3}, idempotency_key="k1")
    assert isinstance(answer, dict) and answer["status"] == 200
    request = echo.last()
    assert request.method == "GET" and request.path == "/v1/customers"
    assert request.query["email"] == "zhang.wei@example.cn" and request.query["limit"] == "3"
    # Both alternatives are configured: the document lists basicAuth first, and the first satisfied one is used.
    pair = base64.b64decode(request.headers["Authorization"].removeprefix("Basic ")).decode()
    assert pair == f"{STRIPE_KEY}:"

    bearer_only = await opened(
        "stripe_bearer",
        {
            "document": str(FIXTURES / "stripe.com.json.gz"),
            "base_url": echo.url,
            "auth": {"bearerAuth": {"token": STRIPE_KEY}},
        },
    )
    try:
        body = {"name": "杭州云帆贸易有限公司", "email": "finance@yunfan.example.cn", "phone": "+8613812345678"}
        await bearer_only.call("post_customers", {"body": body}, idempotency_key="run-7:step-2")
    finally:
        await bearer_only.close()
    request = echo.last()
    assert request.method == "POST" and request.headers["Authorization"] == f"Bearer {STRIPE_KEY}"
    assert request.headers["Idempotency-Key"] == "run-7:step-2"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert b"name=%E6%9D%AD%E5%B7%9E" in echo.last().body


async def test_square_calls_with_the_authorized_token_and_its_client_secret_operations_with_the_api_key(
    square: OpenApiConnector, echo: Echo, auth_server: AuthServer
) -> None:
    await square.call("list_locations", {}, idempotency_key="k2")
    request = echo.last()
    assert request.method == "GET" and request.path == "/v2/locations"
    bearer_of(request, auth_server)

    revoke = {"body": {"client_id": CLIENT_ID, "access_token": "EAAA-planted-merchant-token"}}
    await square.call("revoke_token", revoke, idempotency_key="k3")
    request = echo.last()
    assert request.path == "/oauth2/revoke" and request.headers["Authorization"] == f"Client {SQUARE_APP_SECRET}"


async def test_xero_sends_the_token_and_its_tenant_header(
    xero: OpenApiConnector, echo: Echo, auth_server: AuthServer
) -> None:
    inputs: dict[str, Json] = {"xero-tenant-id": XERO_TENANT, "where": 'Name=="杭州云帆贸易有限公司"', "page": 1}
    await xero.call("get_contacts", inputs, idempotency_key="k4")
    request = echo.last()
    assert request.method == "GET" and request.path == "/Contacts"
    assert request.headers["xero-tenant-id"] == XERO_TENANT and request.query["page"] == "1"
    bearer_of(request, auth_server)


async def test_slack_sends_the_token_and_a_form_body(
    slack: OpenApiConnector, echo: Echo, auth_server: AuthServer
) -> None:
    await slack.call(
        "conversations_create", {"body": {"name": "sales-east-china", "is_private": False}}, idempotency_key="k5"
    )
    request = echo.last()
    assert request.method == "POST" and request.path == "/conversations.create"
    assert echo.last().body == b"name=sales-east-china&is_private=false"
    bearer_of(request, auth_server)
