"""`check()` of the http and email connectors against real local servers: each failure in its own words."""

from __future__ import annotations

import asyncio
import socket
import ssl
import warnings
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
import trustme
from aiohttp import web
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from seamflow import connectors, errors
from seamflow.connectors.email import EmailConnector
from seamflow.ids import Json

TOKEN = "chk-t0ken-8d2e61"
PASSWORD = "chk-pa55-3b9f70"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def opened(kind: str, config: Mapping[str, Json]) -> AsyncIterator[Any]:
    connector = connectors.HttpConnector() if kind == "http" else EmailConnector()
    connection = connectors.Connection(name="target", connector=kind, config=dict(config), timeout=timedelta(seconds=5))
    await connector.open(connection)
    try:
        yield connector
    finally:
        await connector.close()


@asynccontextmanager
async def http_server(
    answers: Mapping[str, int], *, tls: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """A local aiohttp server: path → status; 401 unless the bearer token is right; records request headers."""
    seen: list[dict[str, str]] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"error": "bad token", "got": request.headers.get("Authorization")}, status=401)
        return web.json_response({"path": request.path}, status=answers.get(request.path, 200))

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # started: the server exists
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


@pytest.fixture
def server_tls() -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


# --- http ---------------------------------------------------------------------------------------


async def test_http_check_reaches_the_base_url_with_the_credentials() -> None:
    async with http_server({}) as (url, seen), opened("http", {"base_url": url, "auth": {"bearer": TOKEN}}) as http:
        answer = await http.check()
    assert answer == f"reached GET {url}/: HTTP 200"
    assert seen[0]["Authorization"] == f"Bearer {TOKEN}"


async def test_http_check_says_credentials_refused_on_401_without_the_token() -> None:
    async with (
        http_server({}) as (url, _),
        opened("http", {"base_url": url, "auth": {"bearer": "wrong-t0ken"}}) as http,
    ):
        with pytest.raises(errors.Permanent, match="credentials refused") as failure:
            await http.check()
    assert "HTTP 401" in failure.value.message and "wrong-t0ken" not in failure.value.message


async def test_http_check_says_credentials_refused_on_403() -> None:
    async with http_server({"/me": 403}) as (url, _):
        async with opened("http", {"base_url": url, "auth": {"bearer": TOKEN}, "check_path": "me"}) as http:
            with pytest.raises(errors.Permanent, match=r"credentials refused: GET .*/me answered HTTP 403"):
                await http.check()


async def test_http_check_path_that_answers_404_fails_but_a_404_base_url_only_warns() -> None:
    async with http_server({"/me": 404, "/": 404}) as (url, _):
        async with opened("http", {"base_url": url, "auth": {"bearer": TOKEN}, "check_path": "/me"}) as http:
            with pytest.raises(errors.Permanent, match=r"GET .*/me answered HTTP 404; expected a status below 400"):
                await http.check()
        async with opened("http", {"base_url": url, "auth": {"bearer": TOKEN}}) as http:
            assert "HTTP 404 (set check_path" in await http.check()


async def test_http_check_5xx_is_transient() -> None:
    async with http_server({"/health": 503}) as (url, _):
        async with opened("http", {"base_url": url, "auth": {"bearer": TOKEN}, "check_path": "health"}) as http:
            with pytest.raises(errors.Transient, match="HTTP 503"):
                await http.check()


async def test_http_check_on_a_closed_port_says_refused() -> None:
    async with opened("http", {"base_url": f"http://127.0.0.1:{free_port()}/api"}) as http:
        with pytest.raises(errors.Permanent, match=r"connection to 127\.0\.0\.1:\d+ was refused"):
            await http.check()


async def test_http_check_on_an_unknown_name_says_dns() -> None:
    async with opened("http", {"base_url": "http://nonexistent.invalid/api"}) as http:
        with pytest.raises(errors.Permanent, match=r"host name 'nonexistent\.invalid' does not resolve \(DNS\)"):
            await http.check()


async def test_http_check_on_a_self_signed_certificate_says_not_trusted(server_tls: ssl.SSLContext) -> None:
    async with http_server({}, tls=server_tls) as (url, seen):
        async with opened("http", {"base_url": url, "auth": {"bearer": TOKEN}}) as http:
            with pytest.raises(errors.Permanent, match=r"TLS certificate of 127\.0\.0\.1 is not trusted"):
                await http.check()
        assert seen == [], "no request is sent over an untrusted connection"
        async with opened("http", {"base_url": url, "auth": {"bearer": TOKEN}, "verify_tls": False}) as http:
            assert (await http.check()).endswith("HTTP 200")


async def test_http_check_never_shows_an_api_key_sent_in_the_query() -> None:
    key = "qk-9a8b7c6d5e"
    async with http_server({}) as (url, seen):
        async with opened("http", {"base_url": url, "auth": {"api_key": {"value": key, "query": "key"}}}) as http:
            with pytest.raises(errors.Permanent, match="credentials refused") as failure:
                await http.check()
    assert key not in failure.value.message and "key=" not in failure.value.message
    assert len(seen) == 1


async def test_http_check_without_base_url_says_what_to_configure() -> None:
    async with opened("http", {}) as http:
        with pytest.raises(errors.Permanent, match="expected base_url or an absolute check_path"):
            await http.check()


# --- email --------------------------------------------------------------------------------------


class Accepting:
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "250 OK"


def only_sales(server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"sales",
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


@asynccontextmanager
async def smtp_server(*, server_tls: ssl.SSLContext | None = None, **options: Any) -> AsyncIterator[int]:
    def protocol() -> SMTP:
        with warnings.catch_warnings():  # AUTH without TLS is what these local tests want
            warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
            return SMTP(Accepting(), hostname="mx.test", **options)

    server = await asyncio.get_running_loop().create_server(protocol, "127.0.0.1", 0, ssl=server_tls)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def mail_config(port: int, **extra: Json) -> dict[str, Json]:
    return {"host": "127.0.0.1", "port": port, "security": "none", "from": "sales@example.cn", **extra}


AUTH: dict[str, Any] = {"authenticator": only_sales, "auth_required": True, "auth_require_tls": False}


async def test_email_check_connects_and_logs_in() -> None:
    async with smtp_server(**AUTH) as port:
        async with opened("email", mail_config(port, username="sales", password=PASSWORD)) as mailer:
            answer = await mailer.check()
    assert answer == f"connected to 127.0.0.1:{port} (mx.test) with no encryption, logged in as sales"


async def test_email_check_with_a_wrong_password_says_credentials_refused_without_it() -> None:
    async with smtp_server(**AUTH) as port:
        async with opened("email", mail_config(port, username="sales", password="wr0ng-pa55")) as mailer:
            with pytest.raises(errors.Permanent, match=r"credentials refused.*login of 'sales'.*535") as failure:
                await mailer.check()
    assert "wr0ng-pa55" not in failure.value.message


async def test_email_check_on_a_closed_port_says_refused() -> None:
    async with opened("email", mail_config(free_port())) as mailer:
        with pytest.raises(errors.Permanent, match=r"connection to 127\.0\.0\.1:\d+ was refused"):
            await mailer.check()


async def test_email_check_on_an_unknown_name_says_dns() -> None:
    async with opened("email", {**mail_config(25), "host": "nonexistent.invalid"}) as mailer:
        with pytest.raises(errors.Permanent, match=r"'nonexistent\.invalid' does not resolve \(DNS\)"):
            await mailer.check()


async def test_email_check_on_a_self_signed_certificate_says_not_trusted(server_tls: ssl.SSLContext) -> None:
    async with smtp_server(server_tls=server_tls) as port:
        async with opened("email", mail_config(port, security="ssl")) as mailer:
            with pytest.raises(errors.Permanent, match=r"TLS certificate of .* is not trusted"):
                await mailer.check()
        async with opened("email", mail_config(port, security="ssl", verify_tls=False)) as mailer:
            assert "with TLS, no login configured" in await mailer.check()
