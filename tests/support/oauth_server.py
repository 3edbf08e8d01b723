"""A small OAuth2 authorization server for the tests (RFC 6749, PKCE per RFC 7636, revocation per RFC 7009).

- `GET /authorize?response_type=code&client_id&redirect_uri&state&code_challenge&code_challenge_method=S256`
  consents at once (the test plays the person) and redirects to `redirect_uri?code=…&state=…`;
  with `is_asking_consent`, it shows a consent page whose "Allow" does that and whose "Deny"
  redirects to `redirect_uri?error=access_denied&state=…` (a browser test clicks one).
- `POST /token` with client authentication by HTTP basic: `authorization_code` (checks the code,
  its redirect URI and the PKCE verifier), `refresh_token` (rotates: the used refresh token
  dies, a new one comes with the new access token) and `password`. A refused grant answers 400
  `{"error": "invalid_grant"}`.
- `POST /revoke` with `token=`: that refresh token (or access token) stops working.
- `GET /api/me` with `Authorization: Bearer`: the resource; 401 for an unknown or expired token.

`refreshes` counts refresh requests; `expire_access_tokens()` makes every access token refused
(as if they expired early); `access_lifetime_s` is what `expires_in` says.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import httpx
from aiohttp import web

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "AuthServer", "authorize_by_loopback"]

CLIENT_ID = "seamflow-crm-sync"
CLIENT_SECRET = "crm-client-secret-7Hq2Lw9Zp4Xv"
USER = ("zhang.wei@example.cn", "Pa55-zhangwei-2026")


@dataclass
class AuthServer:
    """The server's state; see the module docstring."""

    base_url: str = ""
    access_lifetime_s: int = 3600
    codes: dict[str, tuple[str, str]] = field(default_factory=dict)
    """code → (redirect_uri, code_challenge)."""
    access: set[str] = field(default_factory=set)
    refresh: set[str] = field(default_factory=set)
    issued: list[str] = field(default_factory=list)
    """Every access and refresh token handed out."""
    refreshes: int = 0
    refresh_delay_s: float = 0.0
    is_asking_consent: bool = False

    def expire_access_tokens(self) -> None:
        self.access.clear()

    def _issue(self) -> dict[str, object]:
        access, refresh = f"at_{secrets.token_urlsafe(18)}", f"rt_{secrets.token_urlsafe(18)}"
        self.access.add(access)
        self.refresh.add(refresh)
        self.issued += [access, refresh]
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.access_lifetime_s,
            "refresh_token": refresh,
        }

    async def _authorize(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("client_id") != CLIENT_ID or q.get("code_challenge_method") != "S256" or not q.get("state"):
            return web.json_response({"error": "invalid_request"}, status=400)
        if self.is_asking_consent and q.get("decision") not in ("allow", "deny"):
            return web.Response(text=_consent_page(dict(q)), content_type="text/html")
        if q.get("decision") == "deny":
            raise web.HTTPFound(f"{q['redirect_uri']}?{urlencode({'error': 'access_denied', 'state': q['state']})}")
        code = secrets.token_urlsafe(12)
        self.codes[code] = (q["redirect_uri"], q["code_challenge"])
        raise web.HTTPFound(f"{q['redirect_uri']}?code={code}&state={q['state']}")

    async def _token(self, request: web.Request) -> web.Response:
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return web.json_response({"error": "invalid_client"}, status=401)
        form = await request.post()
        grant = form.get("grant_type")
        if grant == "authorization_code":
            redirect_uri, challenge = self.codes.pop(str(form.get("code")), ("", ""))
            verifier = str(form.get("code_verifier", ""))
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if not redirect_uri or redirect_uri != form.get("redirect_uri") or digest != challenge:
                return web.json_response({"error": "invalid_grant"}, status=400)
            return web.json_response(self._issue())
        if grant == "refresh_token":
            self.refreshes += 1
            if self.refresh_delay_s:
                await asyncio.sleep(self.refresh_delay_s)  # a slow server widens the window of a race
            old = str(form.get("refresh_token"))
            if old not in self.refresh:
                return web.json_response({"error": "invalid_grant"}, status=400)
            self.refresh.discard(old)  # rotation: a refresh token is used once
            return web.json_response(self._issue())
        if grant == "password" and (form.get("username"), form.get("password")) == USER:
            return web.json_response(self._issue())
        return web.json_response({"error": "invalid_grant"}, status=400)

    async def _revoke(self, request: web.Request) -> web.Response:
        token = str((await request.post()).get("token"))
        self.refresh.discard(token)
        self.access.discard(token)
        return web.Response(status=200)

    async def _me(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.access:
            return web.json_response({"error": "invalid_token"}, status=401)
        return web.json_response({"name": "张伟", "email": USER[0], "org": "杭州云帆贸易有限公司"})

    async def _echo(self, request: web.Request) -> web.Response:
        """A careless API: answers 400 with the Authorization header it received."""
        return web.json_response({"error": "bad_request", "you_sent": request.headers.get("Authorization")}, status=400)

    @classmethod
    @asynccontextmanager
    async def start(cls) -> AsyncIterator[AuthServer]:
        server = cls()
        app = web.Application()
        app.router.add_get("/authorize", server._authorize)
        app.router.add_post("/token", server._token)
        app.router.add_post("/revoke", server._revoke)
        app.router.add_get("/api/me", server._me)
        app.router.add_get("/api/echo", server._echo)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # bound by start()
        server.base_url = f"http://127.0.0.1:{port}"
        try:
            yield server
        finally:
            await runner.cleanup()


def _consent_page(query: dict[str, str]) -> str:
    """The provider's consent page: the request's parameters kept, and Allow / Deny."""
    kept = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in query.items())
    return (
        "<!doctype html><meta charset=utf-8><title>云帆 CRM · 授权</title>"
        f"<h1>Allow Seamflow to use your CRM account?</h1><p>{html.escape(USER[0])}</p>"
        f'<form action="/authorize" method="get">{kept}'
        '<button name="decision" value="allow">Allow</button> <button name="decision" value="deny">Deny</button></form>'
    )


async def authorize_by_loopback(project: Path, name: str = "crm") -> str:
    """Run `connections authorize NAME`, consent by GETting the printed URL; return the command's output."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "seamflow", "connections", "authorize", name, "-p", str(project), "--timeout", "30",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None and proc.stdout is not None
    try:
        printed = []
        async with asyncio.timeout(30):
            while not (line := (await proc.stderr.readline()).decode()).startswith("Waiting"):
                assert line, f"the command ended before waiting: {''.join(printed)}"
                printed.append(line)
        url = next(line.strip() for line in printed if line.startswith("http"))
        async with httpx.AsyncClient() as browser:
            page = await browser.get(url, follow_redirects=True)
        assert page.status_code == 200 and "received the authorization" in page.text
        out = (await asyncio.wait_for(proc.stdout.read(), timeout=30)).decode()
        assert await proc.wait() == 0, out + (await proc.stderr.read()).decode()
    finally:
        if proc.returncode is None:  # a failed step above must not leave the command (and its pipes) behind
            proc.kill()
            await proc.wait()
    return out
