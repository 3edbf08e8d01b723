"""A local HTTP server that answers every request 200 with JSON and keeps what it received.

Stands in for a SaaS API whose documents a test reads (the `openapi` connector's public
documents): the test checks the method, path, query, headers and body that arrived.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web
from multidict import CIMultiDict, MultiDict

__all__ = ["Echo", "Seen"]


@dataclass(frozen=True)
class Seen:
    """One request as it arrived."""

    method: str
    path: str
    query: MultiDict[str]
    headers: CIMultiDict[str]
    body: bytes


@dataclass
class Echo:
    """The server's address and the requests it received, oldest first."""

    url: str = ""
    seen: list[Seen] = field(default_factory=list)

    async def _answer(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.seen.append(
            Seen(request.method, request.path, MultiDict(request.query), CIMultiDict(request.headers), body)
        )
        return web.json_response({"ok": True, "path": request.path})

    def last(self) -> Seen:
        assert self.seen, "no request reached the echo server"
        return self.seen[-1]

    @classmethod
    @asynccontextmanager
    async def start(cls) -> AsyncIterator[Echo]:
        server = cls()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", server._answer)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # bound by start()
        server.url = f"http://127.0.0.1:{port}"
        try:
            yield server
        finally:
            await runner.cleanup()
