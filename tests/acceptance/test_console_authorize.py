"""The console's path of an OAuth2 authorization: Authorize → the provider's consent → the callback, on both backends.

Against `tests/support/oauth_server.py` and a real `seamflow serve`. The test plays the browser: it
POSTs Authorize, GETs the consent URL, follows the provider's redirect to the callback, and reads
where the callback's page sends it back to. Then a flow step calls the API with the stored token.
The state is single-use and expires; the provider's refusal and a failed exchange come back as a
code the connections page explains; no token or verifier appears in any answer.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path

import httpx

from seamflow.ids import Json
from tests.acceptance.test_oauth2 import crm_yaml
from tests.support.oauth_server import CLIENT_SECRET, AuthServer
from tests.support.server import Server, make_project, serve
from tests.support.wait import eventually

FLOW = """\
id: crm-profile
name: 读取 CRM 当前用户
trigger: {manual: {}}
steps:
  - id: me
    action: crm.get
    with: {path: me}
"""
CALLBACK = "/api/v1/connections/oauth/callback"
_BACK = re.compile(r'url=/console/#/connections\?([^"]+)"')


async def set_secret(project: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "seamflow", "secrets", "set", "crm_client_secret", "-p", str(project),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(CLIENT_SECRET.encode()), timeout=60)
    assert proc.returncode == 0, out.decode()


async def listed_by_cli(project: Path) -> Json:
    """`seamflow connections list --json`: crm's entry, as the CLI reads it from the same database."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "seamflow", "connections", "list", "--json", "-p", str(project),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, out.decode()
    return next(c for c in json.loads(out) if c["name"] == "crm")


async def authorize(client: httpx.AsyncClient) -> tuple[str, str]:
    """Press Authorize: the consent URL and the redirect URI the API told the provider."""
    answer = await client.post("/api/v1/connections/crm/authorize")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return body["url"], body["redirect_uri"]


async def consent(url: str, decision: str | None = None) -> str:
    """Consent at the provider; return the callback URL it redirects the browser to."""
    async with httpx.AsyncClient() as browser:
        page = await browser.get(url + (f"&decision={decision}" if decision else ""))
    assert page.status_code == 302, page.text
    return page.headers["location"]


async def back_to_console(callback_url: str) -> dict[str, str]:
    """Open the callback as the browser does (no credentials); return what it tells the connections page."""
    async with httpx.AsyncClient() as browser:
        page = await browser.get(callback_url)
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store", page.text
    found = _BACK.search(page.text)
    assert found, page.text
    return dict(httpx.QueryParams(found.group(1).replace("&amp;", "&")))


async def status_of(client: httpx.AsyncClient) -> Json:
    listed = (await client.get("/api/v1/connections")).json()
    return next(c for c in listed if c["name"] == "crm")


async def test_authorize_in_the_console_stores_the_tokens_and_a_flow_step_uses_them(project_dir: Path) -> None:
    async with AuthServer.start() as provider:
        make_project(project_dir, {"crm-profile": FLOW}, crm_yaml(provider.base_url))
        await set_secret(project_dir)
        async with serve(project_dir) as server, server.client() as client:
            before = await status_of(client)
            assert before["status"] == "needs_authorization" and before["authorizes"] is True, before
            assert await listed_by_cli(project_dir) == before, "the CLI says the same"
            url, redirect_uri = await authorize(client)
            assert redirect_uri == server.url + CALLBACK
            assert httpx.URL(url).params["redirect_uri"] == redirect_uri
            callback = await consent(url)
            assert callback.startswith(redirect_uri + "?code=")
            assert await back_to_console(callback) == {"connection": "crm", "authorized": "crm"}
            after = {k: v for k, v in before.items() if k != "problem"}
            assert await status_of(client) == {**after, "status": "ok"}
            assert await listed_by_cli(project_dir) == {**after, "status": "ok"}

            started = await client.post("/api/v1/flows/crm-profile/runs", json={"input": {}})
            assert started.status_code == 202, started.text
            run = await eventually(lambda: _completed(client, started.json()["run_id"]), timeout=30)
            entries = (await client.get("/api/v1/audit", params={"limit": 100})).json()
            answers = str(run) + str(entries) + (await client.get("/api/v1/connections")).text
        assert provider.refreshes == 0, "the stored access token was used as it is"
        authorized = [e for e in entries if e["action"] == "connection.authorized"]
        assert [(e["object"], e["actor"], e["client"]) for e in authorized] == [
            ("connection:crm", "@bootstrap", "127.0.0.1")
        ]
        assert not any(token in answers for token in provider.issued)
        assert CLIENT_SECRET not in answers


async def _completed(client: httpx.AsyncClient, run_id: str) -> Json:
    run = (await client.get(f"/api/v1/runs/{run_id}")).json()
    assert run["status"] == "completed", run
    return run


async def test_a_reused_state_a_refusal_and_a_failed_exchange_come_back_as_codes(project_dir: Path) -> None:
    async with AuthServer.start() as provider:
        make_project(project_dir, {}, crm_yaml(provider.base_url))
        await set_secret(project_dir)
        async with serve(project_dir) as server, server.client() as client:
            callback = await consent((await authorize(client))[0])
            assert (await back_to_console(callback))["authorized"] == "crm"
            reused = await back_to_console(callback)
            assert reused == {"authorize_error": "connection.authorization_state"}
            forged = await back_to_console(f"{server.url}{CALLBACK}?code=x&state=never-issued")
            assert forged == {"authorize_error": "connection.authorization_state"}

            provider.is_asking_consent = True
            denied = await back_to_console(await consent((await authorize(client))[0], "deny"))
            assert denied == {
                "connection": "crm",
                "authorize_error": "connection.authorization_failed",
                "provider_error": "access_denied",
            }
            url = (await authorize(client))[0]
            state = httpx.URL(url).params["state"]
            failed = await back_to_console(f"{server.url}{CALLBACK}?code=not-a-code&state={state}")
            assert failed == {"connection": "crm", "authorize_error": "connector.sign_in_failed"}, "invalid_grant"
            assert (await status_of(client))["status"] == "ok", "the first authorization's tokens are kept"

            unknown = await client.post("/api/v1/connections/nope/authorize")
            assert unknown.status_code == 404 and unknown.json()["code"] == "connection.not_found"
            await refused_to_a_viewer(server)


async def refused_to_a_viewer(server: Server) -> None:
    """Authorize needs the operate scope; the callback needs no credentials but a live state."""
    async with server.client() as admin:
        user = {"name": "刘洋", "email": "liu.yang@example.cn", "roles": ["viewer"]}
        assert (await admin.put("/api/v1/directory/users/liuyang", json=user)).status_code == 200
        password = {"password": "Viewer-pass-2026"}
        assert (await admin.put("/api/v1/directory/users/liuyang/password", json=password)).status_code in (200, 204)
    async with httpx.AsyncClient(base_url=server.url, headers={"X-Seamflow-CSRF": "1"}) as viewer:
        signed = await viewer.post("/api/v1/session", json={"login": "liuyang", "password": "Viewer-pass-2026"})
        assert signed.status_code == 200, signed.text
        assert (await viewer.post("/api/v1/connections/crm/authorize")).status_code == 403
