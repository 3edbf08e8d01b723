"""The outbound guard in an aiohttp session: names are resolved and checked once, then pinned.

aiohttp connects to exactly the addresses its resolver returns and keeps the URL's host for
the `Host` header and TLS (SNI, certificate), so a resolver that checks what it returns pins
the connection to checked addresses. Hosts spelled as addresses skip the resolver; a request
hook checks those before each request, redirects included.
"""

from __future__ import annotations

import socket
from types import SimpleNamespace

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from seamflow.connectors.guard import Outbound

__all__ = ["GuardedResolver", "guarded_session_parts"]


class GuardedResolver(AbstractResolver):
    """Resolves through the connection's `Outbound` and returns only addresses it checked."""

    def __init__(self, outbound: Outbound, where: str) -> None:
        self._outbound = outbound
        self._where = where

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


def guarded_session_parts(outbound: Outbound, where: str) -> tuple[GuardedResolver, list[aiohttp.TraceConfig]]:
    """The resolver for a session's `TCPConnector` and the trace that checks address-spelled hosts.

    Args:
        outbound: the connection's guard (`Connection.outbound`).
        where: the connection's name, for the refusal's message.
    """

    async def on_request_start(
        session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestStartParams
    ) -> None:
        host = params.url.raw_host
        if host is not None:
            outbound.check_literal(host, where)

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    return GuardedResolver(outbound, where), [trace]
