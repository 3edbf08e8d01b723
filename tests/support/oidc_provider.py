"""A small OpenID Connect provider for the tests: a real HTTP server with a real RSA key.

- `GET /.well-known/openid-configuration`: the discovery document (OpenID Connect Discovery 1.0).
- `GET /jwks`: the public key set (kid `k1`).
- `GET /authorize?response_type=code&client_id&redirect_uri&scope&state&nonce&code_challenge…` (S256 only):
  a sign-in page (the test, or the browser, posts it); `POST /authorize` redirects to
  `redirect_uri?code=…&state=…` for the `login` posted (a key of `people`).
- `POST /token` (client authentication by HTTP basic): redeems a code once, checking its redirect
  URI and the PKCE verifier; answers an ID token signed with RS256 holding iss, aud, sub, email,
  name, groups, nonce, iat, exp. A code used twice answers 400 `invalid_grant`.

Faults for the tests: `forge` signs with another key under the same kid; `audience`, `issuer` and
`lifetime_s` (negative: already expired) change those claims.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "PEOPLE", "OidcProvider"]

CLIENT_ID = "seamflow-console"
CLIENT_SECRET = "oidc-client-secret-Hd7q2Wm9Lx4Zp"
PEOPLE = {
    "zhang.wei": {"email": "zhang.wei@hengda-trading.com.cn", "name": "张伟", "groups": ["finance-approvers"]},
    "wang.fang": {"email": "Wang.Fang@hengda-trading.com.cn", "name": "王芳", "groups": ["seamflow-admins"]},
    "zhao.lei": {"email": "zhao.lei@hengda-trading.com.cn", "name": "赵磊", "groups": []},
}


@dataclass
class OidcProvider:
    """The provider's state; see the module docstring."""

    base_url: str = ""
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"}))
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    """code → the request it answers (redirect_uri, code_challenge, nonce, login)."""
    forge: bool = False
    audience: str | None = None
    issuer: str | None = None
    lifetime_s: int = 300
    redeemed: int = 0

    def _id_token(self, request: dict[str, str]) -> str:
        person = PEOPLE[request["login"]]
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer or self.base_url,
            "aud": self.audience or CLIENT_ID,
            "sub": f"uid-{request['login']}",
            "email": person["email"],
            "name": person["name"],
            "preferred_username": request["login"],
            "groups": person["groups"],
            "nonce": request["nonce"],
            "iat": now,
            "exp": now + self.lifetime_s,
        }
        key = RSAKey.generate_key(2048, parameters={"kid": "k1"}) if self.forge else self.key
        return jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)

    async def _discovery(self, _: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": self.base_url,
                "authorization_endpoint": f"{self.base_url}/authorize",
                "token_endpoint": f"{self.base_url}/token",
                "jwks_uri": f"{self.base_url}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            }
        )

    async def _jwks(self, _: web.Request) -> web.Response:
        return web.json_response(KeySet([self.key]).as_dict(private=False))

    async def _page(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("client_id") != CLIENT_ID or q.get("code_challenge_method") != "S256" or not q.get("nonce"):
            return web.json_response({"error": "invalid_request"}, status=400)
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in q.items()
        )
        choices = "".join(f'<option value="{login}">{p["name"]} ({p["email"]})</option>' for login, p in PEOPLE.items())
        page = (
            '<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>恒达统一身份认证</title>'
            '<body style="font-family:sans-serif;max-width:28rem;margin:4rem auto">'
            "<h1>恒达统一身份认证</h1><p>Seamflow 请求登录 · Seamflow asks you to sign in</p>"
            f'<form method="post" action="/authorize">{hidden}'
            f'<label>账号 Account <select name="login">{choices}</select></label>'
            '<p><button type="submit" id="consent">同意并登录 · Sign in</button></p></form></body></html>'
        )
        return web.Response(text=page, content_type="text/html")

    async def _consent(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        if form.get("client_id") != CLIENT_ID or form.get("login") not in PEOPLE:
            return web.json_response({"error": "invalid_request"}, status=400)
        code = secrets.token_urlsafe(16)
        self.codes[code] = {k: form[k] for k in ("redirect_uri", "code_challenge", "nonce", "login")}
        raise web.HTTPFound(f"{form['redirect_uri']}?{urlencode({'code': code, 'state': form['state']})}")

    async def _token(self, request: web.Request) -> web.Response:
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return web.json_response({"error": "invalid_client"}, status=401)
        form = await request.post()
        asked = self.codes.pop(str(form.get("code")), None)  # a code is redeemed once
        verifier = str(form.get("code_verifier", ""))
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if asked is None or asked["redirect_uri"] != form.get("redirect_uri") or digest != asked["code_challenge"]:
            return web.json_response(
                {"error": "invalid_grant", "error_description": "code unknown or used"}, status=400
            )
        self.redeemed += 1
        access = secrets.token_urlsafe(18)
        return web.json_response(
            {"access_token": access, "token_type": "Bearer", "expires_in": 300, "id_token": self._id_token(asked)}
        )

    @classmethod
    @asynccontextmanager
    async def start(cls) -> AsyncIterator[OidcProvider]:
        provider = cls()
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", provider._discovery)
        app.router.add_get("/jwks", provider._jwks)
        app.router.add_get("/authorize", provider._page)
        app.router.add_post("/authorize", provider._consent)
        app.router.add_post("/token", provider._token)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # bound by start()
        provider.base_url = f"http://127.0.0.1:{port}"
        try:
            yield provider
        finally:
            await runner.cleanup()
