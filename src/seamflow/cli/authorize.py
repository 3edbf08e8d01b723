"""`seamflow connections authorize NAME`: the OAuth2 authorization code grant, run once by a person.

It prints the provider's consent URL and takes the redirect the browser is sent to after consent:
on a loopback listener (`http://127.0.0.1:<port>/callback`, RFC 8252), or pasted (`--paste`) when
the browser runs on another machine. The tokens are stored encrypted in the project's database,
where every `seamflow serve` process finds them.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from seamflow import connectors, engine
    from seamflow.cli.project import ProjectPaths

__all__ = ["authorize", "stored_tokens", "token_problems"]

_PAGE = (
    "<!doctype html><meta charset=utf-8><title>Seamflow</title>"
    "<p>Seamflow received the authorization. You may close this window."
)


async def authorize(
    paths: ProjectPaths, configs: Mapping[str, Mapping[str, Any]], name: str, *, is_paste: bool, timeout_s: float
) -> None:
    """Run the authorization of connection `name` and store its tokens.

    Raises:
        errors.SeamflowError: the connection is unknown or not an OAuth2 authorization code
            connection, the provider refused, the redirect does not match, or none came in time.
    """
    from seamflow import engine
    from seamflow.cli.project import open_store

    db = open_store(paths)
    await db.open()
    try:
        tokens = engine.StoredTokens(db, lambda: engine.secrets.read_key(paths.root))
        pool = engine.Pool(
            configs,
            secrets=engine.load_secrets(root=paths.root),
            env=engine.load_env(),
            tokens=tokens,
            outbound=engine.project_outbound(paths.root),
        )
        async with engine.authorizing(pool, name) as connector:
            connection = pool.resolve(name)
            await _authorize(connector, connection, is_paste=is_paste, timeout_s=timeout_s)
        from seamflow.cli.audit import record_cli_action

        await record_cli_action(db, "connection.authorized", f"connection:{name}")
    finally:
        await db.close()
    click.echo(f"authorized: {name}: access and refresh tokens stored encrypted in the database")


async def _authorize(
    connector: engine.Authorizes, connection: connectors.Connection, *, is_paste: bool, timeout_s: float
) -> None:
    from seamflow import errors

    port = _port_of(connection, connector)
    listener = None if is_paste else _bind(port)
    bound = listener.getsockname()[1] if listener else port or 8976
    pending = connector.begin_authorization(f"http://127.0.0.1:{bound}/callback")
    click.echo(f"Open this URL in a browser and consent:\n{pending.url}", err=True)
    try:
        if listener is None:
            click.echo("Then paste the address the browser was sent to (http://127.0.0.1:…/callback?…):", err=True)
            redirected = (await asyncio.to_thread(sys.stdin.readline)).strip()
        else:
            click.echo(f"Waiting for the redirect on http://127.0.0.1:{bound}/callback …", err=True)
            async with asyncio.timeout(timeout_s):
                redirected = await _receive(listener)
    except TimeoutError:
        raise errors.InvalidInput(
            f"no redirect reached http://127.0.0.1:{bound}/callback within {timeout_s:g}s;"
            " expected the browser to be sent there after consent (or use --paste)",
            code="connection.authorization_failed",
        ) from None
    await connector.finish_authorization(pending, redirected)


def _port_of(connection: connectors.Connection, connector: engine.Authorizes) -> int:
    """The `redirect_port` under `auth:` (http: `auth.oauth2`; openapi: `auth.<scheme>`; a declarative
    connector: its file's `auth.oauth2`); 0: any free port."""
    raw = getattr(type(connector), "raw", None)  # a declarative connector's file, as written
    auth = raw.get("auth") if isinstance(raw, dict) else connection.config.get("auth")
    for settings in auth.values() if isinstance(auth, dict) else ():
        port = settings.get("redirect_port") if isinstance(settings, dict) else None
        if isinstance(port, int):
            return port
    return 0


def _bind(port: int) -> socket.socket:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen()  # a browser that is quicker than the listener's start waits in the backlog, not refused
    return listener


async def _receive(listener: socket.socket) -> str:
    """Serve `/callback` on the loopback socket until the browser arrives; return the URL it was sent to."""
    from aiohttp import web

    arrived: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def callback(request: web.Request) -> web.Response:
        if not arrived.done():
            arrived.set_result(str(request.url))
        return web.Response(text=_PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/callback", callback)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.SockSite(runner, listener).start()
        return await arrived
    finally:
        await runner.cleanup()


async def token_problems(paths: ProjectPaths, infos: Iterable[engine.ConnectionInfo] = ()) -> dict[str, str]:
    """Connection name → why it needs authorization, from the project's database; {} if it has none yet.

    `infos`: the connections listed; one that signs in by consent and has no tokens yet needs it too.
    """
    from seamflow import engine, errors, store
    from seamflow.cli.project import open_store

    db = open_store(paths)
    if isinstance(db, store.SqliteStore) and not db.path.exists():
        return {}
    try:
        await db.open()
        try:
            return await engine.authorization_problems(db, infos)
        finally:
            await db.close()
    except errors.StoreError:  # the list shows the configuration even when the database is out of reach
        return {}


@asynccontextmanager
async def stored_tokens(paths: ProjectPaths) -> AsyncIterator[engine.StoredTokens | None]:
    """The tokens connections obtained, in the project's database; None if it has no database yet."""
    from seamflow import engine, store
    from seamflow.cli.project import open_store

    db = open_store(paths)
    if isinstance(db, store.SqliteStore) and not db.path.exists():
        yield None
        return
    await db.open()
    try:
        yield engine.StoredTokens(db, lambda: engine.secrets.read_key(paths.root))
    finally:
        await db.close()
