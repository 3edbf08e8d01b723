"""Signing in through a token endpoint that is not OAuth2: a declared call whose answer holds a token.

This is how DingTalk (`appkey` + `appsecret` → `access_token`), WeCom (`corpid` + `corpsecret`
→ `access_token`) and Feishu (`app_id` + `app_secret` → `tenant_access_token`) work; a login
whose answer sets a session cookie (Kingdee K/3 Cloud's `ValidateUser` → `kdservice-sessionid`)
is the same mechanism with the token read from `Set-Cookie` and sent as a cookie. The token
is cached for the connection (in the store, for the whole cluster, when the engine opened it),
renewed `refresh_early_s` before it expires, and renewed once more when a call is refused
because the system revoked it early (a 401, or a declared error code in a 200 answer).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

import aiohttp
import yarl
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from seamflow import codec, errors, redact
from seamflow.connectors.http.response import read_answer, sending_failed, timed_out
from seamflow.connectors.tokens import Grant, LocalTokens, Token, TokenCache, TokenKeeper
from seamflow.ids import Json

__all__ = ["TokenEndpointAuth", "TokenPlacement", "TokenRequest", "TokenRevoked", "TokenSignIn", "pick", "remember"]

_STRICT = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
_TOKEN_ANSWER_MAX_BYTES = 64 * 1024


class TokenRequest(BaseModel):
    """The call that obtains a token; its values usually read secrets (`{{ secrets.dingtalk_appsecret }}`)."""

    model_config = _STRICT
    method: Literal["GET", "POST"] = "POST"
    url: str
    """The token endpoint, e.g. `https://oapi.dingtalk.com/gettoken`."""
    query: dict[str, str] = Field(default_factory=dict)
    json_body: dict[str, Any] | None = Field(None, alias="json")
    """Sent as a JSON body (Feishu)."""
    form: dict[str, str] | None = None
    """Sent as `application/x-www-form-urlencoded`."""
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @model_validator(mode="after")
    def _one_body(self) -> TokenRequest:
        if self.json_body is not None and self.form is not None:
            raise ValueError("give json or form, not both")
        return self


class TokenPlacement(BaseModel):
    """Where the token goes on later calls: a header (with a template), a query parameter or a cookie."""

    model_config = _STRICT
    header: str | None = None
    """E.g. `Authorization` (with `template: "Bearer {token}"`) or `x-acs-dingtalk-access-token`."""
    template: str = "{token}"
    """The header's value; `{token}` is replaced by the token."""
    query: str | None = None
    """E.g. `access_token` (DingTalk's and WeCom's server APIs)."""
    cookie: str | None = None
    """A session cookie's name, e.g. `kdservice-sessionid` (Kingdee K/3 Cloud)."""

    @model_validator(mode="after")
    def _one_place(self) -> TokenPlacement:
        if [self.header, self.query, self.cookie].count(None) != 2:
            raise ValueError("give exactly one of header, query or cookie")
        if "{token}" not in self.template:
            raise ValueError("template must contain {token}")
        return self


class TokenEndpointAuth(BaseModel):
    """`auth: {token_endpoint: …}` of an `http` connection; see the module docstring."""

    model_config = _STRICT
    request: TokenRequest
    token_path: str = "access_token"  # noqa: S105 - a path into the answer, not a token
    """Dotted path of the token in the JSON answer, e.g. `tenant_access_token` or `data.accessToken`."""
    token_cookie: str | None = None
    """Read the token from this cookie of the answer's `Set-Cookie` instead (a login session, e.g.
    `kdservice-sessionid`); `token_path` is then not used."""
    expires_in_path: str | None = "expires_in"
    """Dotted path of the token's lifetime in seconds; None, or absent from the answer: `lifetime_s`."""
    lifetime_s: int = Field(7200, ge=1)
    refresh_early_s: int = Field(300, ge=0)
    """A token expiring within this many seconds is renewed before a call carries it."""
    send: TokenPlacement
    revoked_status: list[int] = Field(default_factory=lambda: [401])
    """HTTP statuses meaning "the token was refused": renew once and send the call again."""
    error_code: str | list[str] | None = None
    """Dotted path of an error code in a 200 answer, e.g. `errcode` (DingTalk, WeCom) or `code` (Feishu);
    a list: the first path present (`Result.ResponseStatus.MsgCode`, `0.0.Result.ResponseStatus.MsgCode`)."""
    revoked_codes: list[int | str] = Field(default_factory=list)
    """Values of `error_code` meaning the token was refused, e.g. `[40014, 42001]`."""


class TokenRevoked(Exception):
    """A call was refused because of its token (inside the connector only: it renews and retries)."""


def pick(body: Json, path: str | list[str]) -> Json:
    """The value at a dotted path of a JSON answer (a number picks from a list), or None.

    A list of paths: the value at the first one present.
    """
    if isinstance(path, list):
        return next((found for p in path if (found := pick(body, p)) is not None), None)
    value = body
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


class TokenSignIn:
    """Obtains, caches and places a connection's token; see the module docstring."""

    def __init__(self, auth: TokenEndpointAuth, connection: str, tokens: TokenCache | None, timeout_s: float) -> None:
        self._auth = auth
        self._connection = connection
        self._keeper = TokenKeeper(
            tokens if tokens is not None else LocalTokens(), connection, timedelta(seconds=auth.refresh_early_s)
        )
        self._timeout_s = timeout_s
        self._remembered: str | None = None

    async def token(self, session: aiohttp.ClientSession, *, stale: Token | None = None) -> Token:
        """A token usable now: the cached one while fresh, else a renewed one (asked once across the cluster)."""

        async def fetch(_cached: Token | None) -> Grant:
            return await self._fetch(session)

        token = await self._keeper.token(fetch, stale=stale)
        if token.value != self._remembered:  # registering computes every encoded form: once per token
            remember(token.value)
            self._remembered = token.value
        return token

    def place(self, token: Token, headers: dict[str, str], url: yarl.URL) -> yarl.URL:
        """Put `token` where `send` says: into `headers`, or into the returned URL's query."""
        send = self._auth.send
        if send.header is not None:
            headers[send.header] = send.template.replace("{token}", token.value)
            return url
        if send.cookie is not None:  # the session's DummyCookieJar keeps none: the token is the only cookie
            headers["Cookie"] = f"{send.cookie}={token.value}"
            return url
        assert send.query is not None
        return url.update_query({send.query: token.value})

    def is_revoked_status(self, status: int) -> bool:
        """Whether an answer's HTTP status says the token was refused."""
        return status in self._auth.revoked_status

    def is_revoked_answer(self, answer: Json) -> bool:
        """Whether an accepted answer's body carries an error code meaning the token was refused."""
        if self._auth.error_code is None or not isinstance(answer, dict):
            return False
        code = pick(answer.get("body"), self._auth.error_code)
        return code is not None and any(str(code) == str(known) for known in self._auth.revoked_codes)

    async def _fetch(self, session: aiohttp.ClientSession) -> Grant:
        request = self._auth.request
        where = f"{self._connection}.sign_in"
        url = yarl.URL(request.url)
        url = url.update_query(request.query) if request.query else url
        headers = dict(request.headers)
        data: bytes | None = None
        if request.json_body is not None:
            data = codec.dumps(request.json_body)
            headers["Content-Type"] = "application/json; charset=utf-8"
        elif request.form is not None:
            data = yarl.URL.build(query=request.form).raw_query_string.encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            async with session.request(
                request.method, url, headers=headers, data=data, allow_redirects=False
            ) as response:
                answer = await read_answer(response, None, _TOKEN_ANSWER_MAX_BYTES, where)
                cookie = response.cookies.get(self._auth.token_cookie) if self._auth.token_cookie else None
        except TimeoutError as exc:
            raise timed_out(request.method, url, exc, self._timeout_s, where) from exc
        except aiohttp.ClientError as exc:
            raise sending_failed(request.method, url, exc, where) from None
        return self._read_token(answer, None if cookie is None else cookie.value, where)

    def _read_token(self, answer: Json, cookie: str | None, where: str) -> Grant:
        body = answer.get("body") if isinstance(answer, dict) else None
        token = pick(body, self._auth.token_path) if self._auth.token_cookie is None else cookie
        if not isinstance(token, str) or not token:
            said = _error_fields(body, self._auth.error_code)
            wanted = self._auth.token_path if self._auth.token_cookie is None else f"cookie {self._auth.token_cookie}"
            raise errors.Permanent(
                f"the token endpoint answered without {wanted}{said}; expected an answer with the"
                f" token at {wanted} (check the app's key and secret, or the user name and password)",
                where=where,
                code="connector.sign_in_failed",
            )
        remember(token)
        lifetime = pick(body, self._auth.expires_in_path) if self._auth.expires_in_path else None
        seconds = int(lifetime) if isinstance(lifetime, int | str) and str(lifetime).isdigit() else None
        return Grant(token, timedelta(seconds=seconds or self._auth.lifetime_s))


def _error_fields(body: Json, error_code: str | list[str] | None) -> str:
    """What a refusal said (its code and message fields), values masked; never the whole body."""
    if not isinstance(body, dict):
        return ""
    declared = error_code if isinstance(error_code, list) else [error_code] if error_code else []
    names = [*declared, "errcode", "code", "errmsg", "msg", "message", "LoginResultType", "Message"]
    said = [f"{n}={errors.redact(pick(body, n), limit=120)}" for n in dict.fromkeys(names) if pick(body, n) is not None]
    return f" (it said {', '.join(said)})" if said else ""


def remember(token: str) -> None:
    """Mask a token obtained at run time, and its form in a query string as sent, everywhere."""
    redact.register(token)
    redact.register(yarl.URL("http://x/").with_query({"k": token}).raw_query_string[2:])
