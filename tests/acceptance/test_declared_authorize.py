"""`seamflow connections authorize NAME` for a declarative connector whose sign-in is OAuth2 authorization code.

A project's connector file declares `auth: {oauth2: …}` with settings; the command prints the
consent URL of the small authorization server of the tests, takes the redirect on its loopback
listener and stores the tokens; a connection opened over the same database (as `serve` opens
it) then calls an operation with the stored access token.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from seamflow import connectors, engine, flows, store
from seamflow.ids import Json
from tests.support import db
from tests.support.oauth_server import CLIENT_ID, CLIENT_SECRET, AuthServer, authorize_by_loopback
from tests.support.server import make_project

pytestmark = pytest.mark.timeout(90)

CRM_APP = """\
connector: crm_app
title: 销售易 CRM (OAuth2)
settings:
  base_url: {}
  client_id: {}
  client_secret: {secret: true}
base_url: "{{ config.base_url }}/api"
auth:
  oauth2:
    authorize_url: "{{ config.base_url }}/authorize"
    token_url: "{{ config.base_url }}/token"
    client_id: "{{ config.client_id }}"
    client_secret: "{{ config.client_secret }}"
    scopes: [profile]
operations:
  whoami:
    path: me
    output: name
"""


def connections_yaml(base: str) -> str:
    return f"""
crm:
  connector: crm_app
  base_url: {base}
  client_id: {CLIENT_ID}
  client_secret: "{{{{ secrets.crm_client_secret }}}}"
"""


async def seamflow(*args: str, stdin: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "seamflow", *args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(stdin.encode()), timeout=60)
    return int(proc.returncode or 0), out.decode()


async def test_authorize_a_declared_connection_then_call_with_the_stored_token(
    project_dir: Path, database: db.Database
) -> None:
    async with AuthServer.start() as server:
        make_project(project_dir, {}, connections_yaml(server.base_url))
        (project_dir / "connectors").mkdir()
        (project_dir / "connectors" / "crm_app.yaml").write_text(CRM_APP, encoding="utf-8")
        code, out = await seamflow("secrets", "set", "crm_client_secret", "-p", str(project_dir), stdin=CLIENT_SECRET)
        assert code == 0, out
        assert "authorized: crm" in await authorize_by_loopback(project_dir)

        s = store.PostgresStore(database.url) if database.url else store.SqliteStore(database.path)
        await s.open()
        tokens = engine.StoredTokens(s, lambda: engine.secrets.read_key(project_dir))
        cls = flows.connector_files.load_connector_text(CRM_APP, "connectors/crm_app.yaml")
        connector = cls()
        config: dict[str, Json] = {"base_url": server.base_url, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
        await connector.open(connectors.Connection("crm", "crm_app", config, tokens=tokens))
        try:
            assert await connector.call("whoami", {}, idempotency_key="k") == "张伟"
            stored = await tokens.current("crm")
        finally:
            await connector.close()
            await s.close()
    assert stored is not None and stored.value in server.issued and server.refreshes == 0


async def test_authorize_refuses_a_declared_connection_that_does_not_sign_in_with_oauth2(project_dir: Path) -> None:
    make_project(
        project_dir,
        {},
        "dingtalk:\n  connector: dingtalk_app\n  appkey: k\n  appsecret: s3cret-s3cret\n  agent_id: '1'\n",
    )
    code, out = await seamflow("connections", "authorize", "dingtalk", "-p", str(project_dir), "--paste", stdin="")
    assert code != 0
    assert "does not sign in with the OAuth2 authorization code grant" in out, out
