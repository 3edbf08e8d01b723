"""Security headers on every answer of the REST API and its HTML pages (the console, the API docs).

Every answer says `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`; an HTML
page also gets a Content-Security-Policy that loads only from Seamflow itself and may not be
framed (`frame-ancestors 'none'`, and `X-Frame-Options: DENY` for older browsers). The API
docs pages (`/docs`, `/redoc`) load Swagger UI and ReDoc from their CDN, so their policy also
allows that one origin.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["DOCS_CSP", "PAGE_CSP", "with_security_headers"]

PAGE_CSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"
"""The Content-Security-Policy of HTML pages."""
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net;"
    " style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com;"
    " font-src 'self' https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com"
    " https://cdn.redoc.ly; worker-src 'self' blob:; frame-ancestors 'none'; object-src 'none'"
)
"""The policy of `/docs` and `/redoc`, whose pages come from FastAPI with scripts from a CDN."""
_DOCS_PATHS = ("/docs", "/redoc")
_ALWAYS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]


def with_security_headers(app: ASGIApp) -> ASGIApp:
    """Wrap an ASGI app so that its HTTP answers carry the security headers."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        csp = (DOCS_CSP if scope["path"] in _DOCS_PATHS else PAGE_CSP).encode()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [h for h in _ALWAYS if h[0] not in present]
                content_type = next((v for n, v in headers if n.lower() == b"content-type"), b"")
                if content_type.startswith(b"text/html") and b"content-security-policy" not in present:
                    headers += [(b"content-security-policy", csp), (b"x-frame-options", b"DENY")]
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, send_with_headers)

    return guarded
