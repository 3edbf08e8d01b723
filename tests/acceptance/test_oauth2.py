"""OAuth2 authorization code with PKCE: `connections authorize` via the loopback redirect, then calls that refresh.

Against `tests/support/oauth_server.py`, a small real authorization server. The test plays the
person: it GETs the consent URL the command prints, and the server redirects the request to the
command's loopback listener. Then a connector opened over the same database (as `serve` opens
it) calls the API with the stored token, refreshes it when it expires (the clock is moved) and
when it is refused early, stores the rotated refresh token, and reports a revoked refresh token
as `connection.needs_authorization`.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from seamflow import clock, connectors, engine, errors, store
from seamflow.ids import Json
from tests.support import db
from tests.support.oauth_server import CLIENT_ID, CLIENT_SECRET, AuthServer, authorize_by_loopback
from tests.support.server import make_project, serve


def crm_yaml(base: str) -> str:
    return f"""
crm:
  connector: http
  base_url: {base}/api
  auth:
    oauth2:
      authorize_url: {base}/authorize
      token_url: {base}/token
      client_id: {CLIENT_ID}
      client_secret: "{{{{ secrets.crm_client_secret }}}}"
      scopes: [profile]
  check_path: me
"""


async def seamflow(*args: str, stdin: str | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "seamflow", *args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(None if stdin is None else stdin.encode()), timeout=60)
    return int(proc.returncode or 0), out.decode()


def crm_config(base: str) -> dict[str, Json]:
    oauth2: dict[str, Json] = {
        "authorize_url": f"{base}/authorize",
        "token_url": f"{base}/token",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    return {"base_url": f"{base}/api", "auth": {"oauth2": oauth2}}


async def me(connector: connectors.HttpConnector) -> Json:
    answer = await connector.call("get", {"path": "me"}, idempotency_key="k")
    assert isinstance(answer, dict) and isinstance(answer["body"], dict)
    return answer["body"]["name"]


async def test_authorize_call_refresh_rotate_and_a_revoked_refresh_token_needs_authorization(
    project_dir: Path, database: db.Database
) -> None:
    async with AuthServer.start() as server:
        make_project(project_dir, {}, crm_yaml(server.base_url))
        code, out = await seamflow("secrets", "set", "crm_client_secret", "-p", str(project_dir), stdin=CLIENT_SECRET)
        assert code == 0, out
        assert "authorized: crm" in await authorize_by_loopback(project_dir)
        code, out = await seamflow("connections", "test", "crm", "-p", str(project_dir))
        assert code == 0 and "ok: crm: reached GET" in out and "/api/me: HTTP 200" in out, out

        s = store.PostgresStore(database.url) if database.url else store.SqliteStore(database.path)
        await s.open()
        tokens = engine.StoredTokens(s, lambda: engine.secrets.read_key(project_dir))
        connector = connectors.HttpConnector()
        await connector.open(connectors.Connection("crm", "http", crm_config(server.base_url), tokens=tokens))
        try:
            assert await me(connector) == "张伟"
            first = await tokens.current("crm")
            assert first is not None and server.refreshes == 0, "the stored access token was used"

            clock.set_fixed(clock.now() + timedelta(hours=2))  # past expires_in (3600 s)
            assert await me(connector) == "张伟"
            second = await tokens.current("crm")
            assert server.refreshes == 1 and second is not None and second.version == first.version + 1
            assert second.refresh_token != first.refresh_token, "the rotated refresh token was stored"

            server.expire_access_tokens()  # refused early: 401
            assert await me(connector) == "张伟"
            assert server.refreshes == 2

            third = await tokens.current("crm")
            assert third is not None and third.refresh_token is not None
            async with httpx.AsyncClient() as client:
                await client.post(f"{server.base_url}/revoke", data={"token": third.refresh_token})
            server.expire_access_tokens()
            with pytest.raises(errors.Transient) as caught:
                await me(connector)
        finally:
            clock.use_real()
            await connector.close()
            await s.close()
        assert caught.value.code == "connection.needs_authorization"
        assert "seamflow connections authorize crm" in caught.value.message
        assert not any(token in str(caught.value) for token in server.issued)
        await needs_authorization_is_shown(project_dir)


async def needs_authorization_is_shown(project: Path) -> None:
    """In `connections list` (table and --json), `GET /api/v1/connections` and /metrics."""
    assert 'seamflow_connection_needs_authorization{connection="crm"} 1.0' in engine.metrics.exposition().decode()
    code, table = await seamflow("connections", "list", "-p", str(project))
    assert code == 0 and "needs_authorization: crm: crm.sign_in: the provider refused the refresh token" in table
    code, listed = await seamflow("connections", "list", "--json", "-p", str(project))
    assert code == 0 and json.loads(listed)[0]["status"] == "needs_authorization", listed
    async with serve(project) as running, running.client() as client:
        answer = (await client.get("/api/v1/connections")).json()
    assert answer[0]["status"] == "needs_authorization" and "invalid_grant" in answer[0]["problem"]


async def authorize_by_paste(project: Path, tamper: bool = False) -> tuple[int, str]:
    """Run `connections authorize crm --paste`, consent, paste the redirect URL (with a foreign state if `tamper`)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "seamflow", "connections", "authorize", "crm", "--paste", "-p", str(project),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None and proc.stdin is not None
    async with asyncio.timeout(30):
        while not (line := (await proc.stderr.readline()).decode()).startswith("http"):
            assert line, "the command ended before printing the consent URL"
    async with httpx.AsyncClient() as browser:
        consent = await browser.get(line.strip())  # the redirect to 127.0.0.1 is not followed: nobody listens
    location = consent.headers["location"]
    if tamper:
        location = location.replace("state=", "state=other")
    out, err = await asyncio.wait_for(proc.communicate(f"{location}\n".encode()), timeout=30)
    return int(proc.returncode or 0), out.decode() + err.decode()


async def test_authorize_takes_a_pasted_redirect_and_refuses_one_with_another_state(project_dir: Path) -> None:
    async with AuthServer.start() as server:
        make_project(project_dir, {}, crm_yaml(server.base_url))
        code, out = await seamflow("secrets", "set", "crm_client_secret", "-p", str(project_dir), stdin=CLIENT_SECRET)
        assert code == 0, out
        code, out = await authorize_by_paste(project_dir, tamper=True)
        assert code == 2 and "error [connection.authorization_failed]" in out and "state does not match" in out, out
        code, out = await authorize_by_paste(project_dir)
        assert code == 0 and "authorized: crm" in out, out
    assert not any(token in out for token in server.issued)
