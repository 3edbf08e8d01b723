"""Credentials on each request, as the document's security requirements say.

Every security scheme kind of OpenAPI 3.0/3.1: http bearer and basic, apiKey in a header, query
or cookie, oauth2 (authorization code with PKCE, client credentials, password; implicit is
refused with the reason) and openIdConnect (its discovery document gives the endpoints), the
last two through `signin.py`. An operation's `security` replaces the document's; its entries
are alternatives (OR) whose schemes all apply together (AND); `[]` or `{}` means no credentials.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp
import yarl

from seamflow import errors, redact
from seamflow.connectors.http.oauth2 import OAuth2SignIn, PendingAuthorization
from seamflow.connectors.openapi.config import Credentials
from seamflow.connectors.openapi.document import Document, Operation
from seamflow.connectors.openapi.signin import TOKEN_KINDS, Place, choose_grant, open_sign_in
from seamflow.connectors.tokens import Token, TokenCache
from seamflow.ids import Json

__all__ = ["Authenticator", "Outgoing"]

_NEEDS = {"bearer": ("token",), "basic": ("username", "password"), "apiKey": ("value",)}


@dataclass(slots=True)
class Outgoing:
    """The headers and query parameters of a request being built, and the tokens it carries by scheme."""

    headers: dict[str, str] = field(default_factory=dict)
    query: list[tuple[str, str]] = field(default_factory=list)
    tokens: dict[str, Token] = field(default_factory=dict)


def _kind(scheme: dict[str, Json]) -> str:
    if scheme.get("type") == "http":
        return str(scheme.get("scheme", "")).lower()
    return str(scheme.get("type"))


def _remember(value: str) -> None:
    """Mask `value`, and its form in a query string as sent, in error messages."""
    redact.register(value)
    redact.register(yarl.URL("http://x/").with_query({"k": value}).raw_query_string[2:])


@dataclass(frozen=True, slots=True)
class SignInSettings:
    """What the token schemes' sign-ins need beside the document: the connection and its token cache."""

    connection: str
    timeout_s: float
    tokens: TokenCache | None = None


class Authenticator:
    """Adds the credentials an operation's security requirement asks for."""

    def __init__(self, document: Document, credentials: dict[str, Credentials], settings: SignInSettings) -> None:
        """Check that each configured scheme exists in the document and has what its kind needs.

        Raises:
            errors.InvalidInput: `connection.invalid`, naming the scheme and the problem (never a value).
        """
        problems = []
        self._grants: dict[str, str] = {}
        for name, given in credentials.items():
            problem = self._problem(document, name, given)
            if problem is not None:
                problems.append(f"auth.{name}: {problem}")
            _remember_all(given)
        if problems:
            connection = settings.connection
            raise errors.InvalidInput(f"connection {connection!r}: " + "; ".join(problems), code="connection.invalid")
        self._document = document
        self._schemes = document.schemes
        self._settings = settings
        self._credentials = credentials
        self._signins: dict[str, OAuth2SignIn] = {}

    def _problem(self, document: Document, name: str, given: Credentials) -> str | None:
        scheme = document.schemes.get(name)
        if scheme is None:
            return f"no security scheme of that name in the document; it has {', '.join(document.schemes) or 'none'}"
        kind = _kind(scheme)
        if kind in TOKEN_KINDS:
            grant, problem = choose_grant(scheme, given)
            if grant is not None:
                self._grants[name] = grant
            return problem
        needs = _NEEDS.get(kind)
        if needs is None:
            return f"security scheme kind {kind!r} is not supported; expected http basic or bearer, apiKey, oauth2"
        missing = [f for f in needs if getattr(given, f) is None]
        return f"missing {', '.join(missing)} (a {kind} scheme needs {', '.join(needs)})" if missing else None

    async def open_sign_ins(self, session: aiohttp.ClientSession, base: yarl.URL) -> None:
        """Prepare the sign-in of every token scheme with credentials (openIdConnect: read its discovery document).

        Raises:
            errors.InvalidInput: `connection.invalid`: a scheme without token URL, a refused discovery document.
            errors.Transient: a discovery document's URL does not answer now.
        """
        one = len(self._grants) == 1  # one token: kept under the connection's name, as an http connection's
        for name, grant in self._grants.items():
            place = Place(
                connection=self._settings.connection,
                scheme=name,
                cache_key=self._settings.connection if one else f"{self._settings.connection}:{name}",
                base=base,
                session=session,
                tokens=self._settings.tokens,
                timeout_s=self._settings.timeout_s,
            )
            scopes = sorted(
                {s for op in self._document.operations.values() for a in op.security for s in a.get(name, [])}
            )
            self._signins[name] = await open_sign_in(self._schemes[name], self._credentials[name], grant, scopes, place)

    def authorization(self, redirect_uri: str) -> tuple[OAuth2SignIn, PendingAuthorization]:
        """Start the authorization code grant of the connection's one scheme that uses it.

        Raises:
            errors.InvalidInput: `connection.invalid`: no scheme (or more than one) uses the authorization code flow.
        """
        found = [(n, s) for n, s in self._signins.items() if s.is_authorizable]
        if len(found) != 1:
            what = "no security scheme with credentials uses" if not found else "several security schemes use"
            raise errors.InvalidInput(
                f"connection {self._settings.connection!r}: {what} the authorization code flow;"
                " expected credentials (client_id, client_secret) for exactly one oauth2 or openIdConnect"
                " scheme with authorizationCode",
                code="connection.invalid",
            )
        return found[0][1], found[0][1].begin(redirect_uri)

    def is_callable(self, operation: Operation) -> bool:
        """True if the connection's credentials satisfy one alternative of the operation's security."""
        return not operation.security or any(all(n in self._credentials for n in a) for a in operation.security)

    async def apply(
        self,
        operation: Operation,
        out: Outgoing,
        session: aiohttp.ClientSession,
        where: str,
        refused: Mapping[str, Token] | None = None,
    ) -> None:
        """Add the credentials of the first security alternative that the connection can satisfy.

        Args:
            refused: tokens a previous try of this request carried and the API refused (a 401):
                their schemes' tokens are renewed, once across the cluster.

        Raises:
            errors.Permanent: the operation needs credentials that `auth:` does not hold.
            errors.Transient: `connection.needs_authorization`, or a token URL that does not answer.
        """
        if not operation.security:
            return
        # An alternative with credentials beats `{}` (optional auth): send them when we have them.
        for alternative in sorted(operation.security, key=lambda a: not a):
            if all(name in self._credentials for name in alternative):
                for name in alternative:
                    await self._add(name, out, session, (refused or {}).get(name))
                return
        needed = " or ".join(" and ".join(alternative) for alternative in operation.security)
        raise errors.Permanent(
            f"operation {operation.operation_id} needs credentials for the security scheme {needed}; "
            "give them under auth: in connections.yaml",
            where=where,
        )

    async def _add(self, name: str, out: Outgoing, session: aiohttp.ClientSession, stale: Token | None) -> None:
        scheme, given = self._schemes[name], self._credentials[name]
        kind = _kind(scheme)
        if kind == "bearer" and given.token is not None:
            out.headers["Authorization"] = f"Bearer {given.token.get_secret_value()}"
        elif kind == "basic" and given.password is not None:
            out.headers["Authorization"] = f"Basic {_basic_pair(given)}"
        elif kind == "apiKey" and given.value is not None:
            key, place, value = str(scheme.get("name", "")), scheme.get("in"), given.value.get_secret_value()
            if place == "query":
                out.query.append((key, value))
            elif place == "cookie":
                cookie = out.headers.get("Cookie")
                out.headers["Cookie"] = f"{cookie}; {key}={value}" if cookie else f"{key}={value}"
            else:
                out.headers[key] = value
        elif name in self._signins:
            token = await self._signins[name].token(session, stale=stale)
            out.headers["Authorization"] = f"Bearer {token.value}"
            out.tokens[name] = token


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
