"""The `http` connector: calls any HTTP/JSON system from a step, such as `shop.post`.

Each connection owns one `httpx.AsyncClient`, so one keep-alive pool serves all its calls.
Every action passes the step's idempotency key as an `Idempotency-Key` header.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, timedelta
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlencode

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from seamflow import clock, codec, errors
from seamflow.connectors.base import Action, Connection
from seamflow.ids import Json

__all__ = ["HttpConnector"]

_STRICT = ConfigDict(extra="forbid", frozen=True)
_ERROR_BODY_BYTES = 2048
_CONNECTIONS_PER_POOL = 4
_LIBRARY_LOGGERS = ("httpx", "httpcore.connection", "httpcore.http11", "httpcore.http2")


class BasicAuth(BaseModel):
    """HTTP Basic credentials (`Authorization: Basic …`)."""

    model_config = _STRICT
    username: str
    password: SecretStr


class ApiKeyAuth(BaseModel):
    """A static API key, sent in a header (`X-API-Key` unless named) or a query parameter."""

    model_config = _STRICT
    value: SecretStr
    header: str | None = None
    query: str | None = None

    @model_validator(mode="after")
    def _one_place(self) -> ApiKeyAuth:
        if self.header is not None and self.query is not None:
            raise ValueError("give header or query, not both")
        return self


class HmacAuth(BaseModel):
    """An HMAC-SHA256 signature of each request, hex in `header` after `prefix`.

    Without `timestamp_header` the signed bytes are the raw request body. With it, the
    Unix time in seconds is sent in that header and the signed bytes are
    `<timestamp>.<raw body>` (the timestamp, a full stop, then the body).
    """

    model_config = _STRICT
    secret: SecretStr
    header: str = "X-Signature"
    prefix: str = ""
    timestamp_header: str | None = None


class Auth(BaseModel):
    """How the connection authenticates: exactly one of the four kinds."""

    model_config = _STRICT
    bearer: SecretStr | None = None
    basic: BasicAuth | None = None
    api_key: ApiKeyAuth | None = None
    hmac: HmacAuth | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Auth:
        given = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of bearer, basic, api_key, hmac (got {len(given)})")
        return self


class HttpConfig(BaseModel):
    """The settings of an `http` connection in `connections.yaml`."""

    model_config = _STRICT
    base_url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    auth: Auth | None = None
    verify_tls: bool = True
    max_connections: int = Field(100, ge=1)
    response_max_bytes: int = Field(10 * 1024 * 1024, ge=1)

    @field_validator("base_url")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


_Scalar = str | int | Decimal | bool
_Primitive = str | int | float | bool | None  # what httpx accepts in a query


class HttpInput(BaseModel):
    """Inputs of `get`, `post`, `put`, `patch` and `delete`."""

    model_config = ConfigDict(extra="forbid")
    url: str | None = None
    """An absolute URL (`https://…`)."""
    path: str | None = None
    """A path appended to the connection's `base_url`; give `url` or `path`."""
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, _Scalar | list[_Scalar]] = Field(default_factory=dict)
    json_body: Any = Field(None, alias="json")
    form: dict[str, str | list[str]] | None = None
    content: str | None = None
    expect: list[Annotated[int, Field(ge=100, le=599)]] | None = None
    """Statuses that count as success; by default every status below 400."""

    @model_validator(mode="after")
    def _coherent(self) -> HttpInput:
        if (self.url is None) == (self.path is None):
            raise ValueError("give exactly one of url (absolute) or path (relative to base_url)")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://; use path for base_url")
        bodies = ("json_body" in self.model_fields_set) + (self.form is not None)
        if bodies + (self.content is not None) > 1:
            raise ValueError("give at most one of json, form, content")
        return self


class RequestInput(HttpInput):
    """Inputs of `request`: those of the shortcuts plus the method."""

    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


_KEY_NOTE = "Sends the step's idempotency key as the `Idempotency-Key` header."
_ACTIONS: dict[str, Action] = {
    "request": Action("request", RequestInput, f"Any HTTP request. {_KEY_NOTE}", True),
    **{
        verb: Action(verb, HttpInput, f"An HTTP {verb.upper()} request. {_KEY_NOTE}", True)
        for verb in ("get", "post", "put", "patch", "delete")
    },
}


class HttpConnector:
    """Calls HTTP/JSON systems: actions `request`, `get`, `post`, `put`, `patch`, `delete`.

    Every action is idempotent by key: it sends `Idempotency-Key: <idempotency_key>`
    unless the step's `headers` name that header. A call returns
    `{"status": int, "headers": {lower-cased name: value}, "body": JSON or text}`;
    JSON bodies keep exact numbers (fractions are Decimal).
    """

    kind: ClassVar[str] = "http"
    Config: ClassVar[type[BaseModel]] = HttpConfig
    actions: ClassVar[Mapping[str, Action]] = _ACTIONS

    def __init__(self) -> None:
        self._pools: tuple[httpx.AsyncClient, ...] = ()
        self._next_pool: Callable[[], httpx.AsyncClient] = _not_open
        self._name = "http"
        self._has_base_url = False
        self._max_bytes = 0
        self._timeout_s = 0.0
        self._signer: _Signer | None = None

    async def open(self, connection: Connection) -> None:
        """Validate the connection's config, remember its secrets and open the pool.

        Raises:
            errors.InvalidInput: the config is wrong; the message names the connection and field.
        """
        config = _validate_config(connection)
        headers, params = _auth_parts(config.auth)
        _guard_library_logs()
        self._name = connection.name
        self._has_base_url = config.base_url is not None
        self._max_bytes = config.response_max_bytes
        self._timeout_s = connection.timeout.total_seconds()
        self._signer = _Signer.of(config.auth.hmac) if config.auth and config.auth.hmac else None
        self._pools = _open_pools(config, {**config.headers, **headers}, params, self._timeout_s)
        self._next_pool = itertools.cycle(self._pools).__next__

    async def close(self) -> None:
        """Close the connection's pools."""
        pools, self._pools, self._next_pool = self._pools, (), _not_open
        for pool in pools:
            await pool.aclose()

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
        spec = _ACTIONS.get(action)
        if spec is None:
            raise errors.Permanent(
                f"unknown action {errors.redact(action)}; expected one of {', '.join(_ACTIONS)}",
                where=where,
            )
        try:
            inputs = spec.input.model_validate(params)
        except ValidationError as exc:
            problems = _describe(exc, "with")
            raise errors.Permanent(f"invalid input: {problems}", where=where) from None
        assert isinstance(inputs, HttpInput)
        method = inputs.method if isinstance(inputs, RequestInput) else action.upper()
        if not self._pools:
            raise errors.SeamflowError(f"{where}: connection not open", code="connector.closed")
        request = self._build(method, inputs, idempotency_key, where)
        return await self._send(request, inputs.expect, where)

    def _build(self, method: str, inputs: HttpInput, key: str, where: str) -> httpx.Request:
        if inputs.path is not None and not self._has_base_url:
            raise errors.Permanent("path needs base_url in the connection's config", where=where)
        headers = httpx.Headers({"Idempotency-Key": key})
        try:
            content = _encode_body(inputs, headers)
            headers.update(inputs.headers)
            request = self._pools[0].build_request(  # the pools differ only in their sockets
                method,
                inputs.url or inputs.path or "",
                headers=headers,
                params=_query(inputs.query) if inputs.query else None,
                content=content,
            )
        except (httpx.InvalidURL, httpx.HTTPError, ValueError, TypeError) as exc:
            raise errors.Permanent(
                f"could not build the request: {type(exc).__name__}: {errors.redact(str(exc))}",
                where=where,
            ) from None
        if self._signer is not None:
            self._signer.sign(request)
        return request

    async def _send(self, request: httpx.Request, expect: list[int] | None, where: str) -> Json:
        try:
            response = await self._next_pool().send(request, stream=True)
            try:
                return await self._answer(response, expect, where)
            finally:
                await response.aclose()
        except httpx.TimeoutException as exc:
            raise errors.Transient(
                f"{request.method} {_target(request)} timed out after {self._timeout_s:g}s "
                f"({type(exc).__name__})",
                where=where,
            ) from exc
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
            raise errors.Permanent(_failed(request, exc), where=where) from None
        except httpx.TransportError as exc:
            raise errors.Transient(_failed(request, exc), where=where) from exc
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
            raise errors.Permanent(_failed(request, exc), where=where) from None

    async def _answer(self, response: httpx.Response, expect: list[int] | None, where: str) -> Json:
        status = response.status_code
        is_success = status < 400 if expect is None else status in expect
        if not is_success:
            data, _ = await _read_capped(response, _ERROR_BODY_BYTES)
            raise _status_error(response, _decode(data, response), expect, where)
        data, is_cut = await _read_capped(response, self._max_bytes)
        if is_cut:
            raise errors.Permanent(
                f"{response.request.method} {_target(response.request)} answered {status} with a "
                f"body larger than response_max_bytes ({self._max_bytes} bytes)",
                where=where,
            )
        return {
            "status": status,
            "headers": dict(response.headers.items()),
            "body": _parse_body(response, data, where),
        }


def _open_pools(
    config: HttpConfig, headers: dict[str, str], params: dict[str, str], timeout_s: float
) -> tuple[httpx.AsyncClient, ...]:
    """Open the connection's keep-alive pools: several small ones, used in turn.

    httpcore scans (and polls) every connection of a pool on each request, so one pool of
    n connections costs O(n) CPU per call. Pools of at most 4 keep a call's cost flat
    (measured with 16 concurrent calls: one pool 1,100 µs of CPU per call, four 440 µs).
    """
    count = -(-config.max_connections // _CONNECTIONS_PER_POOL)
    sizes = [
        config.max_connections // count + (i < config.max_connections % count) for i in range(count)
    ]
    tls = httpx.create_ssl_context(verify=config.verify_tls)  # built once: it loads the CA file
    return tuple(
        httpx.AsyncClient(
            base_url=config.base_url or "",
            headers={"User-Agent": "seamflow", **headers},
            params=params,
            timeout=timeout_s,
            limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
            verify=tls,
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment: targets are explicit
        )
        for size in sizes
    )


def _not_open() -> httpx.AsyncClient:
    raise AssertionError("the connection is not open")  # call() checks before sending


@dataclass(frozen=True, slots=True)
class _Signer:
    """Adds the HMAC signature (and timestamp) headers to a built request."""

    key: bytes
    header: str
    prefix: str
    timestamp_header: str | None

    @classmethod
    def of(cls, auth: HmacAuth) -> _Signer:
        key = auth.secret.get_secret_value().encode()
        return cls(key, auth.header, auth.prefix, auth.timestamp_header)

    def sign(self, request: httpx.Request) -> None:
        message = request.content
        if self.timestamp_header is not None:
            stamp = str(int(clock.now().timestamp()))
            request.headers[self.timestamp_header] = stamp
            message = stamp.encode() + b"." + message
        digest = hmac.new(self.key, message, hashlib.sha256).hexdigest()
        request.headers[self.header] = self.prefix + digest


_log_secrets: set[str] = set()


class _MaskSecrets(logging.Filter):
    """Masks this connector's secrets in records of httpx/httpcore (URLs, echoed headers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _log_secrets:
            return True
        text = record.getMessage()
        masked = text
        for secret in _log_secrets:
            masked = masked.replace(secret, "***")
        if masked != text:
            record.msg, record.args = masked, None
        return True


_MASK = _MaskSecrets()


def _guard_library_logs() -> None:
    for name in _LIBRARY_LOGGERS:
        logging.getLogger(name).addFilter(_MASK)  # adding the same filter twice is a no-op


def _remember_secret(value: str) -> None:
    """Mask `value` (and its query-string form) in error messages and library logs."""
    for form in {value, str(httpx.QueryParams({"k": value}))[2:]}:
        errors.register_secret(form)
        if len(form) >= 4:
            _log_secrets.add(form)


def _auth_parts(auth: Auth | None) -> tuple[dict[str, str], dict[str, str]]:
    """Return the fixed headers and query parameters that carry the credentials."""
    if auth is None:
        return {}, {}
    if auth.bearer is not None:
        token = auth.bearer.get_secret_value()
        _remember_secret(token)
        return {"Authorization": f"Bearer {token}"}, {}
    if auth.basic is not None:
        password = auth.basic.password.get_secret_value()
        pair = base64.b64encode(f"{auth.basic.username}:{password}".encode()).decode()
        _remember_secret(password)
        _remember_secret(pair)  # a server echoing the header must not reveal the pair either
        return {"Authorization": f"Basic {pair}"}, {}
    if auth.api_key is not None:
        key = auth.api_key.value.get_secret_value()
        _remember_secret(key)
        if auth.api_key.query is not None:
            return {}, {auth.api_key.query: key}
        return {auth.api_key.header or "X-API-Key": key}, {}
    assert auth.hmac is not None
    _remember_secret(auth.hmac.secret.get_secret_value())
    return {}, {}


def _validate_config(connection: Connection) -> HttpConfig:
    try:
        return HttpConfig.model_validate(dict(connection.config))
    except ValidationError as exc:
        problems = [
            errors.Problem(
                errors.Location(path=_field_path(f"{connection.name}.config", error["loc"])),
                error["msg"],
            )
            for error in exc.errors(include_url=False, include_input=False)
        ]
        failure = errors.InvalidInput(
            f"connection {connection.name!r} has an invalid http config: "
            + "; ".join(map(str, problems)),
            code="connection.invalid",
        )
        failure.problems = problems
        raise failure from None


def _field_path(root: str, loc: tuple[int | str, ...]) -> str:
    return ".".join([root, *(str(part) for part in loc)])


def _describe(exc: ValidationError, root: str) -> str:
    """Name each bad field and what is wrong, without echoing the values."""
    return "; ".join(
        f"{_field_path(root, error['loc'])}: {error['msg']}"
        for error in exc.errors(include_url=False, include_input=False)
    )


def _encode_body(inputs: HttpInput, headers: httpx.Headers) -> bytes | None:
    if "json_body" in inputs.model_fields_set:
        headers["Content-Type"] = "application/json"
        return codec.dumps(inputs.json_body)
    if inputs.form is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        return urlencode(inputs.form, doseq=True).encode()
    if inputs.content is not None:
        headers["Content-Type"] = "text/plain; charset=utf-8"
        return inputs.content.encode()
    return None


def _query(query: dict[str, _Scalar | list[_Scalar]]) -> list[tuple[str, _Primitive]]:
    pairs: list[tuple[str, _Primitive]] = []
    for name, value in query.items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((name, str(item) if isinstance(item, Decimal) else item))
    return pairs


async def _read_capped(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """Read at most `limit` decoded bytes; return them and whether the body was longer."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return b"", True
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            chunks.append(chunk[: len(chunk) - (size - limit)])
            return b"".join(chunks), True
        chunks.append(chunk)
    return b"".join(chunks), False


def _decode(data: bytes, response: httpx.Response) -> str:
    try:
        return data.decode(response.charset_encoding or "utf-8", errors="replace")
    except LookupError:  # an unknown charset name from the server
        return data.decode("utf-8", errors="replace")


def _parse_body(response: httpx.Response, data: bytes, where: str) -> Json:
    media = response.headers.get("content-type", "").partition(";")[0].strip().lower()
    if not (media == "application/json" or media.endswith("+json")):
        return _decode(data, response)
    if not data.strip():
        return None
    try:
        return codec.loads(data)
    except (ValueError, RecursionError) as exc:
        raise errors.Permanent(
            f"{response.request.method} {_target(response.request)} answered "
            f"{response.status_code} with {media} that is not valid JSON ({type(exc).__name__})",
            where=where,
        ) from None


def _status_error(
    response: httpx.Response, body: str, expect: list[int] | None, where: str
) -> errors.ConnectorError:
    status = response.status_code
    wanted = f"; expected one of {expect}" if expect is not None else ""
    message = (
        f"{response.request.method} {_target(response.request)} answered {status} "
        f"{response.reason_phrase}{wanted}; body: {errors.redact(body, limit=_ERROR_BODY_BYTES)}"
    )
    if status == 429 or status >= 500:
        delay = None
        if status in (429, 503):
            delay = _retry_after(response.headers.get("retry-after"))
        return errors.Transient(message, where=where, retry_after=delay)
    return errors.Permanent(message, where=where)


def _retry_after(value: str | None) -> timedelta | None:
    """Read `Retry-After` as delta-seconds or an HTTP-date; None if absent or malformed."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when - clock.now(), timedelta(0))


def _target(request: httpx.Request) -> str:
    """The request's scheme, host and path, without the query (it may carry an API key)."""
    url = request.url
    return errors.redact(f"{url.scheme}://{url.netloc.decode()}{url.path}", limit=200)


def _failed(request: httpx.Request, exc: Exception) -> str:
    detail = errors.redact(str(exc), limit=200) if str(exc) else ""
    return f"{request.method} {_target(request)} failed: {type(exc).__name__} {detail}".rstrip()
