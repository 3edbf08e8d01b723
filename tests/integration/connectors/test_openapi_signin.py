"""Every security scheme kind of OpenAPI 3.0/3.1 with the `openapi` connector, against local servers.

oauth2 and openIdConnect sign in at `tests/support/oauth_server.py` (a small real authorization
server; openIdConnect through a discovery document served beside it); apiKey, http basic and
bearer, and how `security` picks credentials (operation over document, OR of alternatives, AND
within one, `[]` for none) are checked on what reaches an echo server.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import yaml
from aiohttp import web

from seamflow import connectors, errors, redact
from seamflow.connectors.openapi import OpenApiConnector
from seamflow.ids import Json
from tests.support.echo_server import Echo
from tests.support.oauth_server import CLIENT_ID, CLIENT_SECRET, USER, AuthServer

pytestmark = pytest.mark.asyncio(loop_scope="module")

ME: dict[str, Json] = {"get": {"operationId": "getMe", "responses": {"200": {"description": "the signed-in user"}}}}


def write_document(folder: Path, server: str, schemes: Mapping[str, Json], security: list[Json], **paths: Json) -> str:
    data: dict[str, Json] = {
        "openapi": "3.0.3",
        "info": {"title": "云帆 CRM", "version": "2.4"},
        "servers": [{"url": server}],
        "components": {"securitySchemes": dict(schemes)},
        "security": security,
        "paths": {"/me": ME, **paths},
    }
    path = folder / "crm-openapi.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return str(path)


def code_flow(server: AuthServer, **more: Json) -> dict[str, Json]:
    flows: dict[str, Json] = {
        "authorizationCode": {
            "authorizationUrl": f"{server.base_url}/authorize",
            "tokenUrl": f"{server.base_url}/token",
            "scopes": {"profile": "read the profile", "contacts": "read contacts"},
        },
        **more,
    }
    return {"type": "oauth2", "flows": flows}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def auth_server() -> AsyncIterator[AuthServer]:
    async with AuthServer.start() as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def echo() -> AsyncIterator[Echo]:
    async with Echo.start() as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def discovery(auth_server: AuthServer) -> AsyncIterator[str]:
    """An OpenID Connect discovery document naming the authorization server's endpoints; its URL."""

    async def configuration(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": auth_server.base_url,
                "authorization_endpoint": f"{auth_server.base_url}/authorize",
                "token_endpoint": f"{auth_server.base_url}/token",
                "response_types_supported": ["code"],
            }
        )

    async def broken(request: web.Request) -> web.Response:
        return web.json_response({"issuer": auth_server.base_url})

    app = web.Application()
    app.router.add_get("/.well-known/openid-configuration", configuration)
    app.router.add_get("/broken/.well-known/openid-configuration", broken)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]  # bound
    await runner.cleanup()


async def opened(config: Mapping[str, Json]) -> OpenApiConnector:
    connector = OpenApiConnector()
    connection = connectors.Connection(name="crm", connector="openapi", config=config, timeout=timedelta(seconds=10))
    await connector.open(connection)
    return connector


async def consent(connector: OpenApiConnector) -> str:
    """Consent as the person would and exchange the code; return the consent URL."""
    pending = connector.begin_authorization("http://127.0.0.1:8976/callback")
    async with httpx.AsyncClient() as browser:
        answer = await browser.get(pending.url)  # the redirect to the loopback is read, not followed
    assert answer.status_code == 302, answer.text
    await connector.finish_authorization(pending, answer.headers["location"])
    return pending.url


async def me(connector: OpenApiConnector) -> Json:
    answer = await connector.call("get_me", {}, idempotency_key="k")
    assert isinstance(answer, dict) and isinstance(answer["body"], dict)
    return answer["body"]["name"]


async def test_authorization_code_from_the_document_then_a_refused_token_is_refreshed_once(
    auth_server: AuthServer, tmp_path: Path
) -> None:
    schemes = {"crmOAuth": code_flow(auth_server)}
    document = write_document(tmp_path, f"{auth_server.base_url}/api", schemes, [{"crmOAuth": ["profile"]}])
    connector = await opened(
        {"document": document, "auth": {"crmOAuth": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}}}
    )
    try:
        with pytest.raises(errors.Transient) as caught:
            await me(connector)
        assert caught.value.code == "connection.needs_authorization"
        assert "seamflow connections authorize crm" in caught.value.message

        url = httpx.URL(await consent(connector))
        assert url.params["scope"] == "profile", "the scopes the document's operations require"
        assert url.params["code_challenge_method"] == "S256" and url.params["client_id"] == CLIENT_ID
        assert await me(connector) == "张伟"
        refreshes = auth_server.refreshes

        auth_server.expire_access_tokens()  # the API refuses the token early: 401
        assert await me(connector) == "张伟"
        assert auth_server.refreshes == refreshes + 1
    finally:
        await connector.close()


async def test_the_password_flow_signs_in_with_the_resource_owner_credentials(
    auth_server: AuthServer, tmp_path: Path
) -> None:
    password_flow = {"password": {"tokenUrl": "/token", "scopes": {}}}  # relative: against the API's base URL
    schemes = {"crmOAuth": {"type": "oauth2", "flows": password_flow}}
    document = write_document(tmp_path, f"{auth_server.base_url}/api", schemes, [{"crmOAuth": []}])
    credentials: dict[str, Json] = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "username": USER[0],
        "password": USER[1],
    }
    connector = await opened({"document": document, "auth": {"crmOAuth": credentials}})
    try:
        assert await me(connector) == "张伟"
    finally:
        await connector.close()


async def test_open_id_connect_takes_the_endpoints_from_the_discovery_document(
    auth_server: AuthServer, discovery: str, tmp_path: Path
) -> None:
    schemes = {"sso": {"type": "openIdConnect", "openIdConnectUrl": f"{discovery}/.well-known/openid-configuration"}}
    document = write_document(tmp_path, f"{auth_server.base_url}/api", schemes, [{"sso": ["openid", "profile"]}])
    connector = await opened(
        {"document": document, "auth": {"sso": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}}}
    )
    try:
        url = httpx.URL(await consent(connector))
        assert str(url).startswith(f"{auth_server.base_url}/authorize?")
        assert url.params["scope"] == "openid profile"
        assert await me(connector) == "张伟"
    finally:
        await connector.close()


@pytest.mark.parametrize(
    ("schemes", "credentials", "expected"),
    [
        pytest.param(
            {
                "old": {
                    "type": "oauth2",
                    "flows": {"implicit": {"authorizationUrl": "https://sso.example.cn/a", "scopes": {}}},
                }
            },
            {"old": {"client_id": CLIENT_ID}},
            "auth.old: the implicit flow is not supported",
            id="implicit-only",
        ),
        pytest.param(
            {"crmOAuth": "CODE"},
            {"crmOAuth": {"client_id": CLIENT_ID, "flow": "implicit"}},
            "auth.crmOAuth: the implicit flow is not supported",
            id="implicit-asked",
        ),
        pytest.param(
            {"crmOAuth": "CODE"},
            {"crmOAuth": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "flow": "client_credentials"}},
            "auth.crmOAuth: flow client_credentials is not declared by the scheme; it declares authorizationCode",
            id="flow-not-declared",
        ),
        pytest.param(
            {"crmOAuth": {"type": "oauth2", "flows": {"clientCredentials": {"tokenUrl": "/token", "scopes": {}}}}},
            {"crmOAuth": {"client_id": CLIENT_ID}},
            "auth.crmOAuth: missing client_secret (the client_credentials flow needs client_id, client_secret)",
            id="no-client-secret",
        ),
        pytest.param(
            {"crmOAuth": "CODE"},
            {"crmOAuth": {"client_secret": CLIENT_SECRET}},
            "auth.crmOAuth: missing client_id",
            id="no-client-id",
        ),
        pytest.param(
            {"sso": {"type": "openIdConnect", "openIdConnectUrl": "DISCOVERY/broken/.well-known/openid-configuration"}},
            {"sso": {"client_id": CLIENT_ID}},
            "auth.sso: the discovery document DISCOVERY/broken/.well-known/openid-configuration has no token_endpoint",
            id="discovery-without-token-endpoint",
        ),
        pytest.param(
            {"sso": {"type": "openIdConnect", "openIdConnectUrl": "DISCOVERY/nothing-here"}},
            {"sso": {"client_id": CLIENT_ID}},
            "auth.sso: the discovery document DISCOVERY/nothing-here was refused",
            id="discovery-404",
        ),
        pytest.param(
            {"k": {"type": "mutualTLS"}},
            {"k": {"value": "x"}},
            "auth.k: security scheme kind 'mutualTLS' is not supported",
            id="mutual-tls",
        ),
    ],
)
async def test_credentials_a_scheme_cannot_use_are_connection_invalid_with_the_reason(
    schemes: dict[str, Json],
    credentials: dict[str, Json],
    expected: str,
    auth_server: AuthServer,
    discovery: str,
    tmp_path: Path,
) -> None:
    text = yaml.safe_dump(schemes).replace("DISCOVERY", discovery)
    resolved = {name: code_flow(auth_server) if s == "CODE" else s for name, s in yaml.safe_load(text).items()}
    document = write_document(tmp_path, "https://crm.example.cn/api", resolved, [])
    config = yaml.safe_load(yaml.safe_dump({"document": document, "auth": credentials}).replace("DISCOVERY", discovery))
    with pytest.raises(errors.InvalidInput) as caught:
        await opened(config)
    assert caught.value.code == "connection.invalid"
    assert caught.value.message.startswith("connection 'crm': ")
    assert expected.replace("DISCOVERY", discovery) in caught.value.message, caught.value.message
    assert CLIENT_SECRET not in str(caught.value)


SCHEMES: dict[str, Json] = {
    "basic": {"type": "http", "scheme": "basic"},
    "bearer": {"type": "http", "scheme": "bearer"},
    "keyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "keyQuery": {"type": "apiKey", "in": "query", "name": "api_key"},
    "keyCookie": {"type": "apiKey", "in": "cookie", "name": "crm_session"},
    "partner": {"type": "apiKey", "in": "header", "name": "X-Partner-Key"},
}
OPERATIONS: dict[str, Json] = {
    "/public": {"get": {"operationId": "getPublic", "security": [], "responses": {"200": {"description": "ok"}}}},
    "/either": {
        "get": {
            "operationId": "getEither",
            "security": [{"basic": []}, {"keyHeader": []}],
            "responses": {"200": {"description": "ok"}},
        }
    },
    "/both": {
        "get": {
            "operationId": "getBoth",
            "security": [{"keyQuery": [], "keyCookie": []}],
            "parameters": [{"name": "region", "in": "cookie", "schema": {"type": "string"}}],
            "responses": {"200": {"description": "ok"}},
        }
    },
    "/optional": {
        "get": {
            "operationId": "getOptional",
            "security": [{}, {"bearer": []}],
            "responses": {"200": {"description": "ok"}},
        }
    },
    "/partner": {
        "get": {"operationId": "getPartner", "security": [{"partner": []}], "responses": {"200": {"description": "ok"}}}
    },
}
BEARER_TOKEN = "crm-bearer-planted-5sKq"
CREDENTIALS: dict[str, Json] = {
    "bearer": {"token": BEARER_TOKEN},
    "keyHeader": {"value": "crm-header-key-8hQ"},
    "keyQuery": {"value": "crm-query-key-3Lp"},
    "keyCookie": {"value": "crm-cookie-key-Zx1"},
}


@pytest.mark.parametrize(
    ("action", "inputs", "expected_headers", "expected_query"),
    [
        ("get_me", {}, {"Authorization": f"Bearer {BEARER_TOKEN}"}, {}),  # the document's security
        ("get_public", {}, {}, {}),  # security: [] — none
        ("get_either", {}, {"X-API-Key": "crm-header-key-8hQ"}, {}),  # OR: basic is not configured
        (
            "get_both",
            {"region": "华东"},
            {"Cookie": "region=%E5%8D%8E%E4%B8%9C; crm_session=crm-cookie-key-Zx1"},
            {"api_key": "crm-query-key-3Lp"},
        ),
        ("get_optional", {}, {"Authorization": f"Bearer {BEARER_TOKEN}"}, {}),  # {} or bearer: bearer when given
    ],
)
async def test_security_requirements_choose_the_credentials_sent(
    action: str,
    inputs: dict[str, Json],
    expected_headers: dict[str, str],
    expected_query: dict[str, str],
    echo: Echo,
    tmp_path: Path,
) -> None:
    document = write_document(tmp_path, echo.url, SCHEMES, [{"bearer": []}], **OPERATIONS)
    connector = await opened({"document": document, "auth": CREDENTIALS})
    try:
        await connector.call(action, inputs, idempotency_key="k")
    finally:
        await connector.close()
    seen = echo.last()
    sent = {name: seen.headers[name] for name in ("Authorization", "X-API-Key", "Cookie") if name in seen.headers}
    assert sent == expected_headers
    assert {k: v for k, v in seen.query.items()} == expected_query


async def test_an_operation_whose_schemes_have_no_credentials_is_not_callable(echo: Echo, tmp_path: Path) -> None:
    document = write_document(tmp_path, echo.url, SCHEMES, [{"bearer": []}], **OPERATIONS)
    connector = await opened({"document": document, "auth": CREDENTIALS})
    try:
        assert sorted(connector.callable_actions()) == [
            "get_both",
            "get_either",
            "get_me",
            "get_optional",
            "get_public",
        ]
        before = len(echo.seen)
        with pytest.raises(errors.Permanent) as caught:
            await connector.call("get_partner", {}, idempotency_key="k")
        assert len(echo.seen) == before, "nothing was sent"
    finally:
        await connector.close()
    assert "getPartner needs credentials for the security scheme partner" in caught.value.message


async def test_basic_credentials_travel_as_the_pair_and_are_masked_in_messages(echo: Echo, tmp_path: Path) -> None:
    document = write_document(tmp_path, echo.url, SCHEMES, [{"basic": []}])
    connector = await opened(
        {"document": document, "auth": {"basic": {"username": "zhangwei", "password": "Pa55-yunfan"}}}
    )
    try:
        await connector.call("get_me", {}, idempotency_key="k")
    finally:
        await connector.close()
    pair = echo.last().headers["Authorization"].removeprefix("Basic ")
    assert base64.b64decode(pair).decode() == "zhangwei:Pa55-yunfan"
    assert pair not in redact.mask_text(f"the server echoed {pair}")


async def test_the_example_connections_of_the_howto_page_are_valid_settings() -> None:
    page = Path(__file__).parents[3] / "docs" / "howto" / "connectors" / "openapi.md"
    section = page.read_text(encoding="utf-8").split("## Authentication", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    examples = yaml.safe_load(block)
    assert len(examples) == 8
    for name, settings in examples.items():
        assert settings.pop("connector") == "openapi", name
        OpenApiConnector.Config.model_validate(settings)  # raises on a setting the page misspells


async def test_an_api_that_refuses_the_renewed_token_too_is_token_refused_after_one_refresh(
    auth_server: AuthServer, tmp_path: Path
) -> None:
    async def refuse(request: web.Request) -> web.Response:
        return web.json_response({"error": "insufficient_scope"}, status=401)

    app = web.Application()
    app.router.add_get("/api/me", refuse)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    api = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/api"  # type: ignore[union-attr]  # bound
    flows: dict[str, Json] = {"password": {"tokenUrl": f"{auth_server.base_url}/token", "scopes": {}}}
    document = write_document(tmp_path, api, {"crmOAuth": {"type": "oauth2", "flows": flows}}, [{"crmOAuth": []}])
    credentials: dict[str, Json] = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "username": USER[0],
        "password": USER[1],
    }
    connector = await opened({"document": document, "auth": {"crmOAuth": credentials}})
    refreshes = auth_server.refreshes
    try:
        with pytest.raises(errors.Permanent) as caught:
            await me(connector)
    finally:
        await connector.close()
        await runner.cleanup()
    assert caught.value.code == "connector.token_refused"
    assert auth_server.refreshes == refreshes + 1, "one refresh, not a loop"
