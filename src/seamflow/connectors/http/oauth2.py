"""Signing in with OAuth2 (RFC 6749): authorization code with PKCE (RFC 7636) and refresh tokens, password grant.

`seamflow connections authorize NAME` runs the authorization: `begin` builds the consent URL
with a `state` and a PKCE challenge, `finish` checks the redirect's `state` and exchanges its
code (with the verifier) for an access and a refresh token, which the connection's token cache
stores. Calls then carry `Authorization: Bearer <access token>`; it is refreshed before it
expires and on a 401, once across the cluster, and a rotated refresh token is stored with it.
A refresh token the provider refuses (`invalid_grant`) is `connection.needs_authorization`:
a Transient error, so the step's retry waits while someone runs `connections authorize` again.

The token requests are small form POSTs made with the connection's aiohttp session; a library
(authlib, oauthlib) would bring its own HTTP client or a sync core for the same four requests.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal, NoReturn

import aiohttp
import yarl
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from seamflow import errors
from seamflow.connectors.http.response import read_answer, sending_failed, timed_out
from seamflow.connectors.http.token_endpoint import remember
from seamflow.connectors.tokens import Grant, LocalTokens, Token, TokenCache, TokenKeeper
from seamflow.ids import Json

__all__ = ["OAuth2Auth", "OAuth2SignIn", "PendingAuthorization"]

_STRICT = ConfigDict(extra="forbid", frozen=True)
_ANSWER_MAX_BYTES = 64 * 1024


class OAuth2Auth(BaseModel):
    """`auth: {oauth2: …}` of an `http` connection; see the module docstring."""

    model_config = _STRICT
    grant: Literal["authorization_code", "password", "client_credentials"] = "authorization_code"
    token_url: str
    authorize_url: str | None = None
    """The provider's consent page (authorization code only)."""
    client_id: str
    client_secret: SecretStr | None = None
    """Sent as HTTP basic (`client_auth: basic`) or in the form (`post`); none for a public client."""
    client_auth: Literal["basic", "post"] = "basic"
    scopes: list[str] = Field(default_factory=list)
    redirect_port: int = Field(0, ge=0, le=65535)
    """The loopback port of `connections authorize` (`http://127.0.0.1:<port>/callback`); 0: any free port."""
    username: str | None = None
    password: SecretStr | None = None
    """The password grant's resource owner credentials."""
    refresh_early_s: int = Field(60, ge=0)

    @model_validator(mode="after")
    def _complete(self) -> OAuth2Auth:
        if self.grant == "authorization_code" and self.authorize_url is None:
            raise ValueError("the authorization_code grant needs authorize_url")
        if self.grant == "password" and (self.username is None or self.password is None):
            raise ValueError("the password grant needs username and password")
        return self


@dataclass(frozen=True, slots=True)
class PendingAuthorization:
    """An authorization under way: the consent URL and what checks and completes its redirect."""

    url: str
    state: str
    verifier: str
    redirect_uri: str


class OAuth2SignIn:
    """Obtains, refreshes and places a connection's OAuth2 access token."""

    def __init__(self, auth: OAuth2Auth, connection: str, tokens: TokenCache | None, timeout_s: float) -> None:
        self._auth = auth
        self._connection = connection
        self._keeper = TokenKeeper(
            tokens if tokens is not None else LocalTokens(), connection, timedelta(seconds=auth.refresh_early_s)
        )
        self._timeout_s = timeout_s
        self._remembered: str | None = None
        for secret in (auth.client_secret, auth.password):
            if secret is not None:
                remember(secret.get_secret_value())

    @property
    def is_authorizable(self) -> bool:
        """True for the authorization code grant, which `connections authorize` starts."""
        return self._auth.grant == "authorization_code"

    def begin(self, redirect_uri: str) -> PendingAuthorization:
        """The consent URL to open, with a fresh `state` and PKCE challenge (S256)."""
        assert self._auth.authorize_url is not None  # checked by the config
        state, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(64)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        query = {
            "response_type": "code",
            "client_id": self._auth.client_id,
            "redirect_uri": redirect_uri,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **({"scope": " ".join(self._auth.scopes)} if self._auth.scopes else {}),
        }
        url = str(yarl.URL(self._auth.authorize_url).update_query(query))
        return PendingAuthorization(url, state, verifier, redirect_uri)

    @property
    def redirect_port(self) -> int:
        """The loopback port `connections authorize` listens on (0: any free port)."""
        return self._auth.redirect_port

    async def finish(self, session: aiohttp.ClientSession, pending: PendingAuthorization, redirected: str) -> Token:
        """Check the redirect's `state`, exchange its code and store the tokens.

        Raises:
            errors.InvalidInput: `connection.authorization_failed`: the provider refused, or the
                redirect is not the one this authorization expects.
            errors.ConnectorError: the token request failed.
        """
        query = yarl.URL(redirected).query
        where = f"{self._connection}.authorize"
        if "error" in query:
            detail = errors.redact_text(query.get("error_description", ""), limit=200)
            self._refuse(f"the provider answered error={errors.redact(query['error'])} {detail}".strip(), where)
        if query.get("state") != pending.state:
            self._refuse("the redirect's state does not match this authorization; expected the URL it printed", where)
        code = query.get("code")
        if not code:
            self._refuse("the redirect has no code; expected the URL the browser was sent to after consent", where)
        remember(code)
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": pending.redirect_uri}
        grant = await self._request(session, {**form, "code_verifier": pending.verifier}, where)
        return await self._keeper.tokens.save(self._connection, grant)

    async def token(self, session: aiohttp.ClientSession, *, stale: Token | None = None) -> Token:
        """A usable access token: the cached one while fresh, else one refreshed once across the cluster."""

        async def fetch(cached: Token | None) -> Grant:
            return await self._renew(session, cached)

        try:
            token = await self._keeper.token(fetch, stale=stale)
        except errors.Transient as exc:
            if exc.code == "connection.needs_authorization":  # recorded after the renewal's lock is released
                await self._keeper.tokens.report(self._connection, exc.message)
            raise
        if token.value != self._remembered:  # registering computes every encoded form: once per token
            remember(token.value)
            self._remembered = token.value
        return token

    def place(self, token: Token, headers: dict[str, str], url: yarl.URL) -> yarl.URL:
        """Put the access token in the `Authorization` header."""
        headers["Authorization"] = f"Bearer {token.value}"
        return url

    def is_revoked_status(self, status: int) -> bool:
        """A 401 means the access token was refused: refresh once and send again."""
        return status == 401

    def is_revoked_answer(self, answer: Json) -> bool:
        """OAuth2 providers refuse a token by status, not in the body."""
        return False

    async def _renew(self, session: aiohttp.ClientSession, cached: Token | None) -> Grant:
        where = f"{self._connection}.sign_in"
        auth = self._auth
        if cached is not None and cached.refresh_token:
            remember(cached.refresh_token)
            return await self._request(
                session, {"grant_type": "refresh_token", "refresh_token": cached.refresh_token}, where
            )
        if auth.grant == "password":
            assert auth.username is not None and auth.password is not None
            form = {"grant_type": "password", "username": auth.username, "password": auth.password.get_secret_value()}
            return await self._request(session, self._with_scope(form), where)
        if auth.grant == "client_credentials":
            return await self._request(session, self._with_scope({"grant_type": "client_credentials"}), where)
        raise errors.Transient(
            f"connection {self._connection!r} is not authorized yet; expected `seamflow connections authorize"
            f" {self._connection}` to be run once",
            where=where,
            code="connection.needs_authorization",
        )

    def _with_scope(self, form: dict[str, str]) -> dict[str, str]:
        return {**form, "scope": " ".join(self._auth.scopes)} if self._auth.scopes else form

    async def _request(self, session: aiohttp.ClientSession, form: dict[str, str], where: str) -> Grant:
        """POST a token request (RFC 6749 §4.1.3, §4.3.2, §4.4.2, §6) and read its answer."""
        auth, headers = self._auth, {"Accept": "application/json"}
        form = {**form}
        secret = auth.client_secret.get_secret_value() if auth.client_secret else None
        if secret is not None and auth.client_auth == "basic":
            pair = f"{_form_encode(auth.client_id)}:{_form_encode(secret)}"  # RFC 6749 §2.3.1
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
            remember(base64.b64encode(pair.encode()).decode())
        else:
            form["client_id"] = auth.client_id
            if secret is not None:
                form["client_secret"] = secret
        url = yarl.URL(auth.token_url)
        try:
            async with session.post(url, data=form, headers=headers, allow_redirects=False) as response:
                if response.status in (400, 401):
                    body = await response.json(content_type=None)
                    self._refused(body, form["grant_type"], where)
                answer = await read_answer(response, None, _ANSWER_MAX_BYTES, where)
        except TimeoutError as exc:
            raise timed_out("POST", url, exc, self._timeout_s, where) from exc
        except (aiohttp.ClientError, ValueError) as exc:
            raise sending_failed("POST", url, exc, where) from None
        return _grant(answer, where)

    def _refused(self, body: Json, grant_type: str, where: str) -> NoReturn:
        """Raise the verdict on a token request the provider refused (RFC 6749 §5.2)."""
        code = body.get("error") if isinstance(body, dict) else None
        said = f"error={errors.redact(code)}" if code else "no error code"
        if grant_type == "refresh_token" and code == "invalid_grant":
            raise errors.Transient(
                f"the provider refused the refresh token ({said}): it was revoked or expired; expected"
                f" `seamflow connections authorize {self._connection}` to be run again",
                where=where,
                code="connection.needs_authorization",
            )
        raise errors.Permanent(
            f"the token endpoint refused the {grant_type} request ({said}); check client_id, client_secret"
            " and the grant's credentials",
            where=where,
            code="connector.sign_in_failed",
        )

    def _refuse(self, problem: str, where: str) -> NoReturn:
        raise errors.InvalidInput(f"{where}: {problem}", code="connection.authorization_failed")


def _grant(answer: Json, where: str) -> Grant:
    body = answer.get("body") if isinstance(answer, dict) else None
    token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(body, dict) or not isinstance(token, str) or not token:
        raise errors.Permanent(
            "the token endpoint answered without access_token; expected an RFC 6749 token answer",
            where=where,
            code="connector.sign_in_failed",
        )
    remember(token)
    refresh = body.get("refresh_token")
    if isinstance(refresh, str):
        remember(refresh)
    expires_in = body.get("expires_in")
    seconds = int(expires_in) if isinstance(expires_in, int | str) and str(expires_in).isdigit() else 3600
    return Grant(token, timedelta(seconds=seconds), refresh if isinstance(refresh, str) else None)


def _form_encode(value: str) -> str:
    return yarl.URL.build(query={"v": value}).raw_query_string[2:]
