"""The `http` connector: calls any HTTP/JSON system from a step, such as `shop.post`.

Each connection owns one aiohttp session with a keep-alive pool, reused by all its calls.
Every action passes the step's idempotency key as an `Idempotency-Key` header.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import ClassVar

import aiohttp
import yarl
from pydantic import BaseModel, ValidationError

from seamflow import errors
from seamflow.connectors.base import Action, Connection, field_problems
from seamflow.connectors.http.check import check_target, probe
from seamflow.connectors.http.config import (
    HmacAuth,
    HttpConfig,
    auth_parts,
    sign,
    validate_config,
)
from seamflow.connectors.http.inputs import (
    ACTIONS,
    HttpInput,
    RequestInput,
    encode_body,
    query_params,
)
from seamflow.connectors.http.oauth2 import OAuth2SignIn, PendingAuthorization
from seamflow.connectors.http.pinning import GuardedConnector
from seamflow.connectors.http.response import read_answer, sending_failed, timed_out
from seamflow.connectors.http.signing import Signing, sign_request
from seamflow.connectors.http.token_endpoint import TokenRevoked, TokenSignIn
from seamflow.connectors.tokens import Token
from seamflow.ids import Json

__all__ = ["HttpConnector"]

_KEEPALIVE_S = 4.0
"""How long an idle connection stays open: below the 5 s after which many servers (uvicorn,
Apache, Node) close it, so that a call seldom meets a socket the server is closing."""


@dataclass(frozen=True, slots=True)
class _Request:
    """A request ready to send, and the statuses that count as success."""

    method: str
    url: yarl.URL
    headers: dict[str, str]
    body: bytes | None
    expect: list[int] | None


class HttpConnector:
    """Calls HTTP/JSON systems: actions `request`, `get`, `post`, `put`, `patch`, `delete`.

    Every action is idempotent by key: it sends `Idempotency-Key: <idempotency_key>`
    unless the step's `headers` name that header. A call returns
    `{"status": int, "headers": {lower-cased name: value}, "body": JSON or text}`;
    JSON bodies keep exact numbers (fractions are Decimal).
    """

    kind: ClassVar[str] = "http"
    Config: ClassVar[type[BaseModel]] = HttpConfig
    actions: ClassVar[Mapping[str, Action]] = ACTIONS

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._name = "http"
        self._base_url: str | None = None
        self._auth_query: list[tuple[str, str]] = []
        self._timeout_s = 0.0
        self._max_bytes = 0
        self._hmac: HmacAuth | None = None
        self._check_path: str | None = None
        self._signin: TokenSignIn | OAuth2SignIn | None = None
        self._signing: Signing | None = None

    async def open(self, connection: Connection) -> None:
        """Validate the connection's config, remember its secrets and open its session.

        Raises:
            errors.InvalidInput: the config is wrong; the message names the connection and field.
        """
        config = validate_config(connection)
        headers, params = auth_parts(config.auth)
        await self.close()  # opening again replaces the session
        self._name = connection.name
        base = config.base_url
        self._base_url = None if base is None else base if base.endswith("/") else base + "/"
        self._auth_query = list(params.items())
        self._timeout_s = connection.timeout.total_seconds()
        self._max_bytes = config.response_max_bytes
        self._hmac = config.auth.hmac if config.auth else None
        self._check_path = config.check_path
        self._signin = _sign_in(config, connection)
        self._signing = config.sign
        self._session = _open_session(config, {**config.headers, **headers}, connection)

    async def close(self) -> None:
        """Close the connection's session and its sockets."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def begin_authorization(self, redirect_uri: str) -> PendingAuthorization:
        """Start an OAuth2 authorization code grant: the consent URL, its `state` and PKCE verifier.

        Raises:
            errors.InvalidInput: `connection.invalid`: the connection has no `auth.oauth2` with that grant.
        """
        if not isinstance(self._signin, OAuth2SignIn) or not self._signin.is_authorizable:
            raise errors.InvalidInput(
                f"connection {self._name!r} does not sign in with the OAuth2 authorization code grant;"
                " expected auth: {oauth2: {grant: authorization_code, …}}",
                code="connection.invalid",
            )
        return self._signin.begin(redirect_uri)

    async def finish_authorization(self, pending: PendingAuthorization, redirected: str) -> None:
        """Check the redirect URL, exchange its code and store the tokens (see `http.oauth2`)."""
        assert isinstance(self._signin, OAuth2SignIn) and self._session is not None  # begin_authorization ran
        await self._signin.finish(self._session, pending, redirected)

    async def check(self) -> str:
        """GET `check_path` (or `base_url`) with the connection's credentials; say what answered.

        Raises:
            errors.Permanent: the host name does not resolve, the connection is refused, the TLS
                certificate is not trusted, the credentials are refused (401/403), or
                `check_path` answered another 4xx.
            errors.Transient: no answer in time, or a 5xx answer.
        """
        where = f"{self._name}.check"
        if self._session is None:
            raise errors.SeamflowError(f"{where}: connection not open", code="connector.closed")
        url, is_configured = check_target(self._base_url, self._check_path, where)
        if self._auth_query:
            url = url.extend_query(self._auth_query)
        headers = sign(b"", self._hmac) if self._hmac is not None else {}
        if self._signin is not None:
            url = self._signin.place(await self._signin.token(self._session), headers, url)
        return await probe(self._session, url, headers, is_configured, where)

    async def call(self, action: str, params: Json, *, idempotency_key: str) -> Json:
        """Send one request and return its status, headers and body.

        Args:
            action: `request`, `get`, `post`, `put`, `patch` or `delete`.
            params: the step's `with` inputs (see `HttpInput` and `RequestInput`).
            idempotency_key: sent as the `Idempotency-Key` header.

        Raises:
            errors.Transient: timeout, connection failure, 429 or 5xx (with `retry_after`
                from a `Retry-After` header on 429 and 503).
            errors.Permanent: bad inputs, any other unexpected status, or a body larger
                than `response_max_bytes`.
        """
        where = f"{self._name}.{action}"
        spec = ACTIONS.get(action)
        if spec is None:
            raise errors.Permanent(
                f"unknown action {errors.redact(action)}; expected one of {', '.join(ACTIONS)}",
                where=where,
            )
        try:
            inputs = spec.input.model_validate(params)
        except ValidationError as exc:
            problems = "; ".join(map(str, field_problems(exc, "with")))
            raise errors.Permanent(f"invalid input: {problems}", where=where) from None
        assert isinstance(inputs, HttpInput)
        method = inputs.method if isinstance(inputs, RequestInput) else action.upper()
        if self._session is None:
            raise errors.SeamflowError(f"{where}: connection not open", code="connector.closed")
        url = self._url(inputs, where)
        headers = {"Idempotency-Key": idempotency_key}
        body = encode_body(inputs, headers)
        _override(headers, inputs.headers)
        if self._hmac is not None:
            _override(headers, sign(body or b"", self._hmac))
        request = _Request(method, url, headers, body, inputs.expect)
        if self._signin is None:
            return await self._send(self._session, request, where)
        return await self._send_signed_in(self._session, self._signin, request, where)

    async def _send_signed_in(
        self, session: aiohttp.ClientSession, signin: TokenSignIn | OAuth2SignIn, request: _Request, where: str
    ) -> Json:
        """Send with the connection's token; if it was revoked early, renew it once and send again."""
        token = await signin.token(session)
        try:
            return await self._send(session, _with_token(signin, token, request), where, signin)
        except TokenRevoked:
            renewed = await signin.token(session, stale=token)
        try:
            return await self._send(session, _with_token(signin, renewed, request), where, signin)
        except TokenRevoked:
            raise errors.Permanent(
                "the system refused the token right after it was renewed; expected the renewed token to be"
                " accepted (is the app allowed to call this API?)",
                where=where,
                code="connector.token_refused",
            ) from None

    def _url(self, inputs: HttpInput, where: str) -> yarl.URL:
        """The request's URL: `url`, or `base_url` joined with `path`; then the key and step query."""
        if inputs.url is not None:
            text = inputs.url
        elif self._base_url is not None:
            text = self._base_url + (inputs.path or "").lstrip("/")
        else:
            raise errors.Permanent("path needs base_url in the connection's config", where=where)
        pairs = self._auth_query + query_params(inputs.query) if inputs.query else self._auth_query
        try:
            url = yarl.URL(text)
            return url.extend_query(pairs) if pairs else url
        except (ValueError, TypeError) as exc:
            raise errors.Permanent(
                f"could not build the request: {type(exc).__name__}: {errors.redact(str(exc))}", where=where
            ) from None

    async def _send(
        self,
        session: aiohttp.ClientSession,
        request: _Request,
        where: str,
        signin: TokenSignIn | OAuth2SignIn | None = None,
    ) -> Json:
        """Send `request` and read its answer; with `signin`, raise `TokenRevoked` if it refused the token."""
        if self._signing is not None:  # last: the signature covers every parameter, a token's too
            url, signed = sign_request(request.url, request.body, self._signing)
            request = replace(request, url=url, headers={**request.headers, **signed})
        method, url = request.method, request.url
        try:
            async with session.request(
                method, url, headers=request.headers, data=request.body, allow_redirects=False
            ) as response:
                if signin is not None and signin.is_revoked_status(response.status):
                    raise TokenRevoked
                answer = await read_answer(response, request.expect, self._max_bytes, where)
                if signin is not None and signin.is_revoked_answer(answer):
                    raise TokenRevoked
                return answer
        except TimeoutError as exc:  # also aiohttp's ServerTimeoutError, and waiting for a free socket
            raise timed_out(method, url, exc, self._timeout_s, where) from exc
        except aiohttp.ClientConnectionError as exc:  # keep the cause: it names the host and the OS error
            raise sending_failed(method, url, exc, where) from exc
        except (aiohttp.ClientError, ValueError, TypeError) as exc:  # a bad header or URL; a broken answer
            # from None: a ClientResponseError's repr holds the request's headers, credentials included.
            raise sending_failed(method, url, exc, where) from None


def _sign_in(config: HttpConfig, connection: Connection) -> TokenSignIn | OAuth2SignIn | None:
    """The connection's sign-in, if its `auth` is a kind that obtains tokens."""
    timeout_s = connection.timeout.total_seconds()
    if config.auth is not None and config.auth.token_endpoint is not None:
        return TokenSignIn(config.auth.token_endpoint, connection.name, connection.tokens, timeout_s)
    if config.auth is not None and config.auth.oauth2 is not None:
        return OAuth2SignIn(config.auth.oauth2, connection.name, connection.tokens, timeout_s)
    return None


def _with_token(signin: TokenSignIn | OAuth2SignIn, token: Token, request: _Request) -> _Request:
    """`request` carrying `token` where the connection's `send` says."""
    headers = dict(request.headers)
    url = signin.place(token, headers, request.url)
    return _Request(request.method, url, headers, request.body, request.expect)


def _override(headers: dict[str, str], extra: Mapping[str, str]) -> None:
    """Set `extra` in `headers`, replacing a header of the same name in any letter case."""
    for name, value in extra.items():
        lower = name.lower()
        for old in [old for old in headers if old.lower() == lower]:
            del headers[old]
        headers[name] = value


def _open_session(config: HttpConfig, headers: dict[str, str], connection: Connection) -> aiohttp.ClientSession:
    """Open the connection's session: one keep-alive pool of `max_connections` sockets, guarded.

    Must run in the event loop that will use it (aiohttp binds the session to it).
    """
    return aiohttp.ClientSession(
        connector=GuardedConnector(
            connection.outbound,
            connection.name,
            limit=config.max_connections,
            keepalive_timeout=_KEEPALIVE_S,
            ssl=config.verify_tls,  # True: the system's CA certificates; False: no check
        ),
        headers={"User-Agent": "seamflow", **headers},
        timeout=aiohttp.ClientTimeout(total=connection.timeout.total_seconds()),
        cookie_jar=aiohttp.DummyCookieJar(),  # calls are independent: no cookie carries over
        trust_env=False,  # no proxy from the environment: targets are explicit
        raise_for_status=False,
    )
