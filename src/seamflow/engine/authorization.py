"""A connection's OAuth2 authorization code grant, run once by a person: from the CLI or from the console.

`begin_authorization` gives the provider's consent URL with a fresh `state` and PKCE verifier;
`finish_authorization` checks the redirect the browser was sent to, exchanges its code and stores
the tokens (encrypted, in the store, where every serve process finds them). Both open the
connection on its own, never the shared instance, so the process that finishes need not be the
one that began: the CLI's loopback listener and the console's callback route (any process of a
serve group) use the same two calls.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from seamflow import connectors, errors, store
from seamflow.engine.connections import ConnectionInfo, Pool

__all__ = [
    "Authorization",
    "Authorizes",
    "authorization_problems",
    "authorizing",
    "begin_authorization",
    "finish_authorization",
]

_NOT_YET = "not authorized yet: no tokens are stored for this connection"

_AUTHORIZABLE = ("http", "openapi")
"""Connectors that run the authorization code grant: `http` with auth.oauth2, `openapi` by its document;
and every declarative connector (its file's `auth: {oauth2: …}`; others refuse in `begin_authorization`)."""


class Authorizes(Protocol):
    """A connector that runs the OAuth2 authorization code grant (`http`, `openapi`, declarative)."""

    async def open(self, connection: connectors.Connection) -> None: ...
    async def close(self) -> None: ...
    def begin_authorization(self, redirect_uri: str) -> Any: ...
    async def finish_authorization(self, pending: Any, redirected: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Authorization:
    """An authorization code grant begun for a connection: where to send the person, and what finishes it."""

    connection: str
    url: str
    """The provider's consent page, with the client, redirect URI, `state` and PKCE challenge."""
    state: str
    verifier: str
    """The PKCE code verifier; it never leaves the server."""
    redirect_uri: str


@asynccontextmanager
async def authorizing(pool: Pool, name: str) -> AsyncIterator[Authorizes]:
    """Connection `name` opened on its own for its authorization, closed at the end.

    Raises:
        errors.NotFound: no connection is called `name`.
        errors.InvalidInput: `connection.invalid`: its connector cannot run the authorization code grant.
    """
    connection = pool.resolve(name)
    if connection.connector not in _AUTHORIZABLE and not connectors.is_declared(connection.connector):
        raise errors.InvalidInput(
            f"connection {name!r} uses the {connection.connector} connector; expected an http connection"
            " with auth: {oauth2: …}, an openapi connection whose document declares authorizationCode,"
            " or a declarative connector whose file has auth: {oauth2: …}",
            code="connection.invalid",
        )
    kind = connectors.available_connectors()[connection.connector]
    connector: Authorizes = kind()  # type: ignore[assignment]  # the Connector protocol lacks the two methods
    await connector.open(connection)
    try:
        yield connector
    finally:
        await connector.close()


async def begin_authorization(pool: Pool, name: str, redirect_uri: str) -> Authorization:
    """Begin connection `name`'s authorization: the consent URL and the `state` and verifier that finish it.

    Raises:
        errors.NotFound: no connection is called `name`.
        errors.InvalidInput: `connection.invalid`: it does not sign in with the authorization code grant.
    """
    async with authorizing(pool, name) as connector:
        pending = connector.begin_authorization(redirect_uri)
    return Authorization(name, pending.url, pending.state, pending.verifier, pending.redirect_uri)


async def finish_authorization(pool: Pool, begun: Authorization, redirected: str) -> None:
    """Check `redirected` (the URL the provider sent the browser to), exchange its code and store the tokens.

    Raises:
        errors.InvalidInput: `connection.authorization_failed`: the provider refused (`error=`), or the
            redirect's `state` or code is not the one `begun` expects.
        errors.ConnectorError: the token request failed.
    """
    async with authorizing(pool, begun.connection) as connector:
        # Beginning again on this process picks the sign-in that finishes (an openapi document may
        # have several schemes); the state and verifier are the ones the consent URL was made with.
        fresh = connector.begin_authorization(begun.redirect_uri)
        pending = dataclasses.replace(fresh, state=begun.state, verifier=begun.verifier)
        await connector.finish_authorization(pending, redirected)


async def authorization_problems(db: store.TokenStore, infos: Iterable[ConnectionInfo]) -> dict[str, str]:
    """Connection name → why it needs authorization: its provider refused its refresh token, or it signs
    in by a person's consent (`ConnectionInfo.is_authorizable`) and has no tokens yet."""
    problems = await db.list_token_problems()
    for info in infos:
        if info.is_authorizable and info.name not in problems and await db.read_token(info.name) is None:
            problems[info.name] = _NOT_YET
    return problems
