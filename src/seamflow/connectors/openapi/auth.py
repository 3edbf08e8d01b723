"""Credentials on each request, as the document's security schemes say: http bearer and basic,
apiKey in a header, query or cookie, and oauth2 client credentials (the token cached until it expires)."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import aiohttp
import yarl

from seamflow import clock, errors, redact
from seamflow.connectors.http.response import read_answer, sending_failed, timed_out
from seamflow.connectors.openapi.config import Credentials
from seamflow.connectors.openapi.document import Document, Operation
from seamflow.ids import Json

__all__ = ["Authenticator", "Outgoing"]

_EARLY = timedelta(seconds=30)
"""A cached oauth2 token is renewed this long before it expires: a request must not carry a stale one."""
_NEEDS = {
    "bearer": ("token",),
    "basic": ("username", "password"),
    "apiKey": ("value",),
    "oauth2": ("client_id", "client_secret"),
}


@dataclass(slots=True)
class Outgoing:
    """The headers and query parameters of a request being built."""

    headers: dict[str, str] = field(default_factory=dict)
    query: list[tuple[str, str]] = field(default_factory=list)


def _kind(scheme: dict[str, Json]) -> str:
    if scheme.get("type") == "http":
        return str(scheme.get("scheme", "")).lower()
    return str(scheme.get("type"))


def _remember(value: str) -> None:
    """Mask `value`, and its form in a query string as sent, in error messages."""
    redact.register(value)
    redact.register(yarl.URL("http://x/").with_query({"k": value}).raw_query_string[2:])


class Authenticator:
    """Adds the credentials an operation's security requirement asks for."""

    def __init__(
        self, document: Document, credentials: dict[str, Credentials], connection: str, timeout_s: float
    ) -> None:
        """Check that each configured scheme exists in the document and has what its kind needs.

        Raises:
            errors.InvalidInput: `connection.invalid`, naming the scheme and the missing field (never a value).
        """
        problems = []
        for name, given in credentials.items():
            scheme = document.schemes.get(name)
            if scheme is None:
                known = ", ".join(document.schemes) or "none"
                problems.append(f"auth.{name}: no security scheme of that name in the document; it has {known}")
                continue
            kind = _kind(scheme)
            needs = _NEEDS.get(kind)
            if needs is None or (kind == "oauth2" and _token_url(scheme) is None):
                problems.append(f"auth.{name}: security scheme kind {kind!r} is not supported")
                continue
            missing = [f for f in needs if getattr(given, f) is None]
            if missing:
                problems.append(f"auth.{name}: missing {', '.join(missing)} (a {kind} scheme needs {', '.join(needs)})")
            _remember_all(given)
        if problems:
            raise errors.InvalidInput(f"connection {connection!r}: " + "; ".join(problems), code="connection.invalid")
        self._schemes = document.schemes
        self._timeout_s = timeout_s
        self._credentials = credentials
        self._tokens: dict[str, tuple[str, datetime]] = {}
        self._lock = asyncio.Lock()

    async def apply(
        self, operation: Operation, out: Outgoing, session: aiohttp.ClientSession, base: yarl.URL, where: str
    ) -> None:
        """Add the credentials of the first security alternative that the connection can satisfy.

        Raises:
            errors.Permanent: the operation needs credentials that `auth:` does not hold.
        """
        if not operation.security:
            return
        # An alternative with credentials beats `{}` (optional auth): send them when we have them.
        for alternative in sorted(operation.security, key=lambda a: not a):
            if all(name in self._credentials for name in alternative):
                for name, scopes in alternative.items():
                    await self._add(name, scopes, out, session, base, where)
                return
        needed = " or ".join(" and ".join(alternative) for alternative in operation.security)
        raise errors.Permanent(
            f"operation {operation.operation_id} needs credentials for the security scheme {needed}; "
            "give them under auth: in connections.yaml",
            where=where,
        )

    async def _add(
        self, name: str, scopes: list[str], out: Outgoing, session: aiohttp.ClientSession, base: yarl.URL, where: str
    ) -> None:
        scheme, given = self._schemes[name], self._credentials[name]
        kind = _kind(scheme)
        if kind == "bearer" and given.token is not None:
            out.headers["Authorization"] = f"Bearer {given.token.get_secret_value()}"
        elif kind == "basic" and given.password is not None:
            out.headers["Authorization"] = f"Basic {_basic_pair(given)}"
        elif kind == "apiKey" and given.value is not None:
            key, place = str(scheme.get("name", "")), scheme.get("in")
            if place == "query":
                out.query.append((key, given.value.get_secret_value()))
            elif place == "cookie":
                out.headers["Cookie"] = f"{key}={given.value.get_secret_value()}"
            else:
                out.headers[key] = given.value.get_secret_value()
        elif kind == "oauth2":
            token = await self._token(name, given.scopes or scopes, session, base, where)
            out.headers["Authorization"] = f"Bearer {token}"

    async def _token(
        self, name: str, scopes: list[str], session: aiohttp.ClientSession, base: yarl.URL, where: str
    ) -> str:
        """An access token of the client credentials flow, from the cache while it is fresh."""
        async with self._lock:  # one token request at a time: concurrent calls wait for it
            cached = self._tokens.get(name)
            if cached is not None and clock.now() < cached[1]:
                return cached[0]
            token, lifetime = await self._fetch_token(name, scopes, session, base, where)
            self._tokens[name] = (token, clock.now() + lifetime - _EARLY)
            return token

    async def _fetch_token(
        self, name: str, scopes: list[str], session: aiohttp.ClientSession, base: yarl.URL, where: str
    ) -> tuple[str, timedelta]:
        given = self._credentials[name]
        assert given.client_id is not None and given.client_secret is not None
        url = base.join(yarl.URL(_token_url(self._schemes[name]) or ""))
        form = {"grant_type": "client_credentials", **({"scope": " ".join(scopes)} if scopes else {})}
        pair = base64.b64encode(f"{given.client_id}:{given.client_secret.get_secret_value()}".encode()).decode()
        here = f"{where} (token for {name})"
        try:
            async with session.post(
                url, data=form, headers={"Authorization": f"Basic {pair}"}, allow_redirects=False
            ) as response:
                answer = await read_answer(response, None, 1024 * 1024, here)
        except TimeoutError as exc:
            raise timed_out("POST", url, exc, self._timeout_s, here) from exc
        except aiohttp.ClientError as exc:
            raise sending_failed("POST", url, exc, here) from None
        body = answer.get("body") if isinstance(answer, dict) else None
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise errors.Permanent("the token URL answered without access_token", where=here)
        _remember(token)
        expires_in = body.get("expires_in") if isinstance(body, dict) else None
        seconds = int(expires_in) if isinstance(expires_in, int | str) and str(expires_in).isdigit() else 3600
        return token, timedelta(seconds=seconds)


def _token_url(scheme: dict[str, Json]) -> str | None:
    flows = scheme.get("flows")
    flow = flows.get("clientCredentials") if isinstance(flows, dict) else None
    url = flow.get("tokenUrl") if isinstance(flow, dict) else None
    return url if isinstance(url, str) else None


def _basic_pair(given: Credentials) -> str:
    password = given.password.get_secret_value() if given.password else ""
    return base64.b64encode(f"{given.username}:{password}".encode()).decode()


def _remember_all(given: Credentials) -> None:
    for secret in (given.token, given.value, given.password, given.client_secret):
        if secret is not None:
            _remember(secret.get_secret_value())
    if given.password is not None:
        _remember(_basic_pair(given))  # a server echoing the header must not reveal the pair either
    if given.client_id is not None and given.client_secret is not None:
        pair = f"{given.client_id}:{given.client_secret.get_secret_value()}"
        _remember(base64.b64encode(pair.encode()).decode())
