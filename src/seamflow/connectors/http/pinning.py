"""The outbound guard in an aiohttp session: names are resolved and checked once, then pinned.

aiohttp connects to exactly the addresses its resolver returns and keeps the URL's host for
the `Host` header and TLS (SNI, certificate), so a resolver that checks what it returns pins
the connection to checked addresses. Hosts spelled as addresses skip the resolver; the
connector checks those before each request, redirects included.
"""

from __future__ import annotations

import socket
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client_reqrep import ClientRequest
from aiohttp.connector import Connection
from aiohttp.tracing import Trace

from seamflow.connectors.guard import Outbound

__all__ = ["GuardedConnector", "GuardedResolver"]


class GuardedResolver(AbstractResolver):
    """Resolves through the connection's `Outbound` and returns only addresses it checked."""

    def __init__(self, outbound: Outbound, where: str) -> None:
        self._outbound = outbound
        self._where = where
        self._passed: set[str] = set()
        """Hosts that passed `check_literal`: an address spelled in a URL means the same address
        forever, so a request to a host seen before costs one set lookup."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The checked addresses of `host`, each with `host` kept as the name for TLS."""
        addresses = await self._outbound.resolve_checked(host, port, self._where)
        wanted = [a for a in addresses if family in (socket.AF_UNSPEC, _family(a.version))] or addresses
        return [
            ResolveResult(
                hostname=host,
                host=str(address),
                port=port,
                family=_family(address.version),
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in wanted
        ]

    async def close(self) -> None:
        """Nothing to release: lookups run in the event loop's executor."""


def _family(version: int) -> socket.AddressFamily:
    return socket.AF_INET6 if version == 6 else socket.AF_INET


class GuardedConnector(aiohttp.TCPConnector):
    """A `TCPConnector` that checks every request's host before it takes or opens a connection.

    Names go through `GuardedResolver` (checked, then pinned); a host spelled as an address
    skips aiohttp's resolver, so `connect` checks it — for each request, redirects included.
    """

    def __init__(self, outbound: Outbound, where: str, **options: Any) -> None:
        super().__init__(resolver=GuardedResolver(outbound, where), **options)
        self._outbound = outbound
        self._where = where
        self._passed: set[str] = set()
        """Hosts that passed `check_literal`: an address spelled in a URL means the same address
        forever, so a request to a host seen before costs one set lookup."""

    async def connect(
        self,
        req: ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 - the signature of aiohttp's BaseConnector.connect
    ) -> Connection:
        """Refuse an address-spelled or metadata host, then get a connection as aiohttp does."""
        host = req.url.raw_host
        if host is not None and host not in self._passed:
            self._outbound.check_literal(host, self._where)
            if len(self._passed) < 1024:
                self._passed.add(host)
        return await super().connect(req, traces, timeout)
