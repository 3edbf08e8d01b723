"""The engine's token cache for connections that sign in: in the store, encrypted, shared by the cluster.

A token a connection obtained (DingTalk's `access_token`, Feishu's `tenant_access_token`) is
sealed with the project's secret key, like `secrets.enc.yaml`, bound to the connection's name,
and stored in `connection_tokens`. Every process and worker reads it there; a renewal holds the
store's token lock, so that one process asks the system while the others wait and take its token.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from cryptography.fernet import InvalidToken

from seamflow import clock, codec, connectors, redact, store
from seamflow.engine import metrics
from seamflow.engine.secrets import SecretKey

__all__ = ["StoredTokens"]


class StoredTokens:
    """A `connectors.TokenCache` over the store; the key is read the first time a token is sealed or opened."""

    def __init__(self, db: store.TokenStore, key: Callable[[], SecretKey]) -> None:
        """Args:
        db: the store the cluster shares.
        key: reads the project's secret key (`engine.secrets.read_key`), called once when first needed.
        """
        self._db = db
        self._read_key = key
        self._key: SecretKey | None = None

    async def current(self, connection: str) -> connectors.Token | None:
        """The token stored for `connection`, or None (none yet, or sealed with another key)."""
        return self._open(await self._db.read_token(connection))

    async def renew(
        self, connection: str, *, stale: connectors.Token | None, early: timedelta, fetch: connectors.Fetch
    ) -> connectors.Token:
        """Return a usable token; only the process holding the store's lock calls `fetch`, once.

        A rotated refresh token is stored in the same transaction as the access token it came with.

        Raises:
            errors.ConnectorError: what `fetch` raised (nothing is stored then).
            errors.InvalidInput: the project's secret key cannot be read.
        """
        fetched: list[connectors.Token] = []

        async def obtain(row: store.ConnectionToken | None) -> tuple[str, datetime] | None:
            cached = self._open(row)
            if connectors.is_usable(cached, stale=stale, early=early):
                return None
            return self._sealed(connection, await fetch(cached), cached, fetched)

        row = await self._db.renew_token(connection, obtain)
        if row is not None and row.problem is None:
            metrics.CONNECTION_NEEDS_AUTHORIZATION.labels(connection).set(0)
        return self._result(row, fetched)

    async def save(self, connection: str, grant: connectors.Grant) -> connectors.Token:
        """Store `grant` as the connection's token, replacing what is stored (`connections authorize`)."""
        fetched: list[connectors.Token] = []

        async def obtain(row: store.ConnectionToken | None) -> tuple[str, datetime] | None:
            return self._sealed(connection, grant, self._open(row), fetched)

        token = self._result(await self._db.renew_token(connection, obtain), fetched)
        metrics.CONNECTION_NEEDS_AUTHORIZATION.labels(connection).set(0)
        return token

    async def report(self, connection: str, problem: str | None) -> None:
        """Record that `connection` needs authorization (`connections list`, the API, `/metrics`)."""
        await self._db.report_token_problem(connection, problem)
        metrics.CONNECTION_NEEDS_AUTHORIZATION.labels(connection).set(0 if problem is None else 1)

    def _sealed(
        self,
        connection: str,
        grant: connectors.Grant,
        cached: connectors.Token | None,
        fetched: list[connectors.Token],
    ) -> tuple[str, datetime]:
        expires_at = clock.now() + grant.lifetime
        refresh = grant.refresh_token or (cached.refresh_token if cached else None)  # not every answer rotates it
        token = connectors.Token(grant.access_token, expires_at, 0, refresh)
        fetched.append(token)
        payload = codec.dumps({"name": connection, "access": token.value, "refresh": refresh}).decode()
        return self._key_now().cipher.encrypt(payload.encode()).decode(), expires_at

    def _result(self, row: store.ConnectionToken | None, fetched: list[connectors.Token]) -> connectors.Token:
        assert row is not None  # obtain kept a usable row or stored a new one
        if fetched:
            new = fetched[0]
            return connectors.Token(new.value, row.expires_at, row.version, new.refresh_token)
        token = self._open(row)
        assert token is not None
        return token

    def _key_now(self) -> SecretKey:
        if self._key is None:
            self._key = self._read_key()
        return self._key

    def _open(self, row: store.ConnectionToken | None) -> connectors.Token | None:
        """The token of `row`, or None if it cannot be opened with this key or belongs to another name."""
        if row is None:
            return None
        try:
            payload = codec.loads(self._key_now().cipher.decrypt(row.sealed.encode()))
        except InvalidToken:  # the key was replaced: the token is renewed and sealed with the new key
            return None
        if not isinstance(payload, dict) or payload.get("name") != row.connection:
            return None
        access, refresh = payload.get("access"), payload.get("refresh")
        if not isinstance(access, str):
            return None
        for value in (access, refresh):
            if isinstance(value, str):
                redact.register(value)
        return connectors.Token(access, row.expires_at, row.version, refresh if isinstance(refresh, str) else None)
