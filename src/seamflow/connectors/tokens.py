"""Where a connection keeps the token it obtained by signing in, and when a cached token may be used.

A connector that signs in (a token endpoint such as DingTalk's `gettoken`) asks its connection's
`TokenCache` for the current token and renews it through the cache. The engine's cache keeps
tokens in the store, encrypted, for every process of the cluster, and renews under a lock so
that one process asks the system; `LocalTokens` keeps them in this process only (for
`seamflow connections test`, or a connector opened without an engine).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from seamflow import clock

__all__ = ["Fetch", "Grant", "LocalTokens", "Token", "TokenCache", "TokenKeeper", "is_usable"]


@dataclass(frozen=True, slots=True)
class Token:
    """A connection's access token, when it expires, how many times it was renewed, and its refresh token."""

    value: str
    expires_at: datetime
    version: int
    refresh_token: str | None = None
    """OAuth2: what obtains the next access token (rotated by some providers on each use)."""

    def __repr__(self) -> str:  # the values are credentials: never in a repr, a log or an error
        return f"Token(value='***', expires_at={self.expires_at.isoformat()}, version={self.version})"


@dataclass(frozen=True, slots=True)
class Grant:
    """What a token endpoint answered: the access token, its lifetime and, for OAuth2, a refresh token."""

    access_token: str
    lifetime: timedelta
    refresh_token: str | None = None

    def __repr__(self) -> str:
        return f"Grant(access_token='***', lifetime={self.lifetime})"


Fetch = Callable[["Token | None"], Awaitable[Grant]]
"""Ask the system for a new token, given the cached one (whose refresh token an OAuth2 renewal uses)."""


def is_usable(cached: Token | None, *, stale: Token | None, early: timedelta) -> bool:
    """Whether `cached` may be used instead of asking for a new token.

    Args:
        cached: the token found (under the renewal lock).
        stale: the token the caller saw refused, if any: a cached token of the same version is
            that token, so it is not usable; a newer one was renewed by someone else meanwhile.
        early: a token expiring within this margin is renewed now, before a request carries it.
    """
    if cached is None or (stale is not None and cached.version <= stale.version):
        return False
    return clock.now() + early < cached.expires_at


class TokenCache(Protocol):
    """Tokens by connection name, renewed once even when many calls (or processes) ask at once."""

    async def current(self, connection: str) -> Token | None:
        """The cached token of `connection`, fresh or not, or None."""
        ...

    async def renew(self, connection: str, *, stale: Token | None, early: timedelta, fetch: Fetch) -> Token:
        """Return a usable token (see `is_usable`), calling `fetch` only if the cache holds none.

        A refresh token that `fetch` gets back replaces the cached one in the same write.

        Raises:
            errors.ConnectorError: what `fetch` raised.
        """
        ...

    async def save(self, connection: str, grant: Grant) -> Token:
        """Store `grant` as the connection's token, whatever is cached (`connections authorize`)."""
        ...

    async def report(self, connection: str, problem: str | None) -> None:
        """Record that `connection` cannot sign in until it is authorized again (None: it can)."""
        ...


class LocalTokens:
    """A `TokenCache` in this process's memory: one renewal at a time per connection."""

    def __init__(self) -> None:
        self._tokens: dict[str, Token] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def current(self, connection: str) -> Token | None:
        """The cached token of `connection`, or None."""
        return self._tokens.get(connection)

    async def renew(self, connection: str, *, stale: Token | None, early: timedelta, fetch: Fetch) -> Token:
        """Return a usable token, fetching a new one if the cached one is missing, refused or expiring."""
        async with self._locks.setdefault(connection, asyncio.Lock()):
            cached = self._tokens.get(connection)
            if cached is not None and is_usable(cached, stale=stale, early=early):
                return cached
            return self._keep(connection, await fetch(cached), cached)

    async def save(self, connection: str, grant: Grant) -> Token:
        """Keep `grant` as the connection's token."""
        async with self._locks.setdefault(connection, asyncio.Lock()):
            return self._keep(connection, grant, self._tokens.get(connection))

    async def report(self, connection: str, problem: str | None) -> None:
        """Nothing to keep: a process-local cache has nobody to show a status to."""

    def _keep(self, connection: str, grant: Grant, cached: Token | None) -> Token:
        version = 1 if cached is None else cached.version + 1
        refresh = grant.refresh_token or (cached.refresh_token if cached else None)  # not every answer rotates it
        token = Token(grant.access_token, clock.now() + grant.lifetime, version, refresh)
        self._tokens[connection] = token
        return token


class TokenKeeper:
    """One connection's token in one process: the cached token while usable, else one renewal at a time.

    Many calls that find the token expired or refused at once wait for the first one's renewal
    and take its token: the cache is asked to renew once per process, and it renews once per
    cluster (`TokenCache.renew`). Without this, each call would queue for the store's lock.
    """

    def __init__(self, tokens: TokenCache, connection: str, early: timedelta) -> None:
        self.tokens = tokens
        self._connection = connection
        self._early = early
        self._renewing = asyncio.Lock()
        self._last: Token | None = None
        """The token this process last used: reused without reading the cache until it expires or
        is refused (a token another process renewed early is found when this one's is refused)."""

    async def token(self, fetch: Fetch, *, stale: Token | None = None) -> Token:
        """A usable token: the one in use, the cached one, or one renewed (after `stale` was refused)."""
        last = self._last
        if last is not None and is_usable(last, stale=stale, early=self._early):
            return last
        if stale is None:
            cached = await self.tokens.current(self._connection)
            if cached is not None and is_usable(cached, stale=None, early=self._early):
                self._last = cached
                return cached
        async with self._renewing:
            cached = await self.tokens.current(self._connection)  # renewed while this call waited?
            if cached is None or not is_usable(cached, stale=stale, early=self._early):
                cached = await self.tokens.renew(self._connection, stale=stale, early=self._early, fetch=fetch)
            self._last = cached
            return cached
