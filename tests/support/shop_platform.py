"""A local stand-in for an open platform that signs requests the way shop platforms document it.

`/router/rest` checks a Taobao-TOP-style signature: every query parameter but `sign`, sorted by
name, written `key` + `value` with nothing between, wrapped as `secret + text + secret`, MD5,
upper-case hex; `timestamp` is `yyyy-MM-dd HH:mm:ss` in UTC+8 and must be within 10 minutes.
`/openapi/v1/orders` checks an HMAC-SHA256 variant: `key=value` pairs joined with `&`, keyed with
the secret, lower-case hex, with `timestamp` in milliseconds and a `nonce` that may not repeat.
`POST /router/rest` with a JSON body signs the body too, appended after the parameters (TOP's rule
for a body that is not a form). `POST /openapi/v2/orders` takes the timestamp, nonce and signature
as headers (`X-Ca-Timestamp` in milliseconds, `X-Ca-Nonce`, `X-Ca-Signature`): the signed text is
every query parameter and those two headers, by name, sorted, `key=value` joined with `&`, then
the raw body; HMAC-SHA256 keyed with the secret, lower-case hex.
A bad signature answers the platform's error body; `seen` keeps every accepted query.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

from aiohttp import web

__all__ = ["APP_KEY", "APP_SECRET", "ShopPlatform"]

APP_KEY = "12345678"
APP_SECRET = "shop-appsecret-5d41402abc4b2a76b9719d911017c592"
_CST = timezone(timedelta(hours=8))


@dataclass
class ShopPlatform:
    base_url: str = ""
    seen: list[dict[str, str]] = field(default_factory=list)
    nonces: set[str] = field(default_factory=set)

    async def _top(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        text = "".join(f"{k}{v}" for k, v in sorted(query.items()) if k != "sign")
        if request.method == "POST" and request.content_type == "application/json":
            text += (await request.read()).decode()
        expected = hashlib.md5(f"{APP_SECRET}{text}{APP_SECRET}".encode(), usedforsecurity=False).hexdigest().upper()
        stamp = datetime.strptime(query.get("timestamp", "1970-01-01 00:00:00"), "%Y-%m-%d %H:%M:%S")
        age = abs(datetime.now(UTC) - stamp.replace(tzinfo=_CST))
        if query.get("sign") != expected or age > timedelta(minutes=10) or query.get("app_key") != APP_KEY:
            return web.json_response({"error_response": {"code": 25, "msg": "Invalid signature"}})
        self.seen.append(query)
        return web.json_response(
            {"trade_fullinfo_get_response": {"trade": {"tid": query.get("tid"), "status": "WAIT_SELLER_SEND_GOODS"}}}
        )

    async def _hmac(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        text = "&".join(f"{k}={v}" for k, v in sorted(query.items()) if k != "sign")
        expected = hmac.new(APP_SECRET.encode(), text.encode(), hashlib.sha256).hexdigest()
        fresh = abs(time.time() * 1000 - int(query.get("timestamp", "0"))) < 600_000
        nonce = query.get("nonce", "")
        if query.get("sign") != expected or not fresh or not nonce or nonce in self.nonces:
            return web.json_response({"code": 40003, "message": "sign error"}, status=403)
        self.nonces.add(nonce)
        self.seen.append(query)
        return web.json_response({"code": 0, "data": {"orders": [{"order_no": "SO20261207001", "amount": "1280.00"}]}})

    async def _headers(self, request: web.Request) -> web.Response:
        signed = {**request.query, **{k: request.headers.get(k, "") for k in ("X-Ca-Timestamp", "X-Ca-Nonce")}}
        text = "&".join(f"{k}={v}" for k, v in sorted(signed.items())) + (await request.read()).decode()
        expected = hmac.new(APP_SECRET.encode(), text.encode(), hashlib.sha256).hexdigest()
        fresh = abs(time.time() * 1000 - int(signed["X-Ca-Timestamp"] or "0")) < 600_000
        nonce = signed["X-Ca-Nonce"]
        if request.headers.get("X-Ca-Signature") != expected or not fresh or not nonce or nonce in self.nonces:
            return web.json_response({"code": 40003, "message": "sign error"}, status=403)
        self.nonces.add(nonce)
        self.seen.append(dict(request.query))
        order = await request.json()
        return web.json_response({"code": 0, "data": {"order_no": order.get("order_no"), "status": "CREATED"}})

    @classmethod
    @asynccontextmanager
    async def start(cls) -> AsyncIterator[ShopPlatform]:
        platform = cls()
        app = web.Application()
        app.router.add_route("*", "/router/rest", platform._top)
        app.router.add_get("/openapi/v1/orders", platform._hmac)
        app.router.add_post("/openapi/v2/orders", platform._headers)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # bound by start()
        platform.base_url = f"http://127.0.0.1:{port}"
        try:
            yield platform
        finally:
            await runner.cleanup()
