"""Serving the console's files: `/console/…` from `static/`, compressed, with a strict content policy."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from seamflow import api

__all__ = ["LANGUAGES", "PREFIX", "STATIC", "mount"]

PREFIX: Final = "/console"
STATIC: Final = Path(__file__).parent / "static"
"""The console's files: index.html, js/, css/, i18n/<language>.json."""
LANGUAGES: Final = ("en", "zh-CN")
"""The message catalogues under static/i18n/, the first being the fallback."""

_POLICY: Final = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
"""Nothing from elsewhere: no CDN, no inline script, no framing by another site."""


class _Headers:
    """Adds the content policy and no-sniff headers to every console answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", _POLICY.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"cache-control", b"no-cache"),  # revalidate by ETag: a new version is seen at once
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def mount(app: api.SeamflowApp) -> None:
    """Serve the console at `/console/` of `app` (and send `/` there)."""
    files = StaticFiles(directory=STATIC, html=True)
    app.api.mount(PREFIX, _Headers(GZipMiddleware(files, minimum_size=512)), name="console")

    async def home(_: Request) -> Response:
        return RedirectResponse(PREFIX + "/", status_code=307)

    app.api.add_route("/", home, methods=["GET"], include_in_schema=False)
