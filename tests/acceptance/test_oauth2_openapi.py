"""`connections authorize` for an `openapi` connection: the consent URL, token URL and scopes come from its document.

The document declares the authorization code flow of `tests/support/oauth_server.py`; the
connection gives only the client. After authorizing over the loopback redirect, a connector
opened over the same database (as `serve` opens it) calls with the stored token, refreshes it
when it expires, and a revoked refresh token makes the connection need authorization again.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from seamflow import clock, connectors, engine, errors, store
from seamflow.connectors.openapi import OpenApiConnector
from seamflow.ids import Json
from tests.acceptance.test_oauth2 import seamflow
from tests.support import db
from tests.support.oauth_server import CLIENT_ID, CLIENT_SECRET, AuthServer, authorize_by_loopback
from tests.support.server import make_project


def crm_document(base: str) -> str:
    return f"""openapi: 3.1.0
info: {{title: 云帆 CRM, version: "2.4"}}
servers: [{{url: "{base}/api"}}]
components:
  securitySchemes:
    crmOAuth:
      type: oauth2
      flows:
        implicit: {{authorizationUrl: {base}/authorize, scopes: {{profile: read the profile}}}}
        authorizationCode:
          authorizationUrl: {base}/authorize
          tokenUrl: {base}/token
          scopes: {{profile: read the profile}}
security: [{{crmOAuth: [profile]}}]
paths:
  /me: {{get: {{operationId: getMe, responses: {{"200": {{description: the user}}}}}}}}
"""


def crm_config(document: Path, secret: str) -> dict[str, Json]:
    return {
        "document": str(document),
        "check_operation": "getMe",
        "auth": {"crmOAuth": {"client_id": CLIENT_ID, "client_secret": secret}},
    }


async def me(connector: OpenApiConnector) -> Json:
    answer = await connector.call("get_me", {}, idempotency_key="k")
    assert isinstance(answer, dict) and isinstance(answer["body"], dict)
    return answer["body"]["name"]


async def test_authorize_an_openapi_connection_from_its_document_then_call_refresh_and_need_authorization(
    project_dir: Path, database: db.Database
) -> None:
    async with AuthServer.start() as server:
        document = project_dir / "apis" / "crm-openapi.yaml"
        document.parent.mkdir(parents=True)
        document.write_text(crm_document(server.base_url), encoding="utf-8")
        connections = f"""crm:
  connector: openapi
  document: {document}
  check_operation: getMe
  auth:
    crmOAuth: {{client_id: {CLIENT_ID}, client_secret: "{{{{ secrets.crm_client_secret }}}}"}}
"""
        make_project(project_dir, {}, connections)
        code, out = await seamflow("secrets", "set", "crm_client_secret", "-p", str(project_dir), stdin=CLIENT_SECRET)
        assert code == 0, out
        assert "authorized: crm" in await authorize_by_loopback(project_dir)
        code, out = await seamflow("connections", "test", "crm", "-p", str(project_dir))
        assert code == 0 and "getMe answered HTTP 200" in out, out

        s = store.PostgresStore(database.url) if database.url else store.SqliteStore(database.path)
        await s.open()
        tokens = engine.StoredTokens(s, lambda: engine.secrets.read_key(project_dir))
        connector = OpenApiConnector()
        connection = connectors.Connection("crm", "openapi", crm_config(document, CLIENT_SECRET), tokens=tokens)
        await connector.open(connection)
        try:
            assert await me(connector) == "张伟"
            first = await tokens.current("crm")
            assert first is not None and server.refreshes == 0, "the token stored by connections authorize was used"

            clock.set_fixed(clock.now() + timedelta(hours=2))  # past expires_in (3600 s)
            assert await me(connector) == "张伟"
            second = await tokens.current("crm")
            assert server.refreshes == 1 and second is not None and second.refresh_token != first.refresh_token

            async with httpx.AsyncClient() as client:
                await client.post(f"{server.base_url}/revoke", data={"token": second.refresh_token})
            server.expire_access_tokens()
            with pytest.raises(errors.Transient) as caught:
                await me(connector)
        finally:
            clock.use_real()
            await connector.close()
            await s.close()
    assert caught.value.code == "connection.needs_authorization"
    assert "seamflow connections authorize crm" in caught.value.message
    code, listed = await seamflow("connections", "list", "-p", str(project_dir))
    assert code == 0 and "needs_authorization: crm" in listed, listed
    assert not any(token in str(caught.value) + out + listed for token in server.issued)


async def test_authorize_refuses_an_openapi_connection_without_an_authorization_code_scheme(project_dir: Path) -> None:
    document = project_dir / "apis" / "erp-openapi.yaml"
    document.parent.mkdir(parents=True)
    document.write_text(
        "openapi: 3.0.3\ninfo: {title: ERP, version: '1'}\nservers: [{url: 'https://erp.example.cn/api'}]\n"
        "components: {securitySchemes: {key: {type: apiKey, in: header, name: X-API-Key}}}\n"
        "paths: {/ping: {get: {operationId: ping, responses: {'200': {description: ok}}}}}\n",
        encoding="utf-8",
    )
    make_project(
        project_dir, {}, f"erp:\n  connector: openapi\n  document: {document}\n  auth: {{key: {{value: k-1}}}}\n"
    )
    code, out = await seamflow("connections", "authorize", "erp", "-p", str(project_dir), "--timeout", "5")
    assert code == 2 and "error [connection.invalid]" in out, out
    assert "no security scheme with credentials uses the authorization code flow" in out, out
