"""How the `http` connector reads an answer: a bounded body, exact JSON, and the verdict on
a failure (Transient for timeouts, connection failures, 429 and 5xx; Permanent for the rest)."""

from __future__ import annotations

from datetime import UTC, timedelta
from email.utils import parsedate_to_datetime

import aiohttp
import yarl

from seamflow import clock, codec, errors
from seamflow.ids import Json

__all__ = ["read_answer", "sending_failed", "timed_out"]

_ERROR_BODY_BYTES = 2048
"""How much of a failure's body is read and shown in the error message."""


async def read_answer(response: aiohttp.ClientResponse, expect: list[int] | None, max_bytes: int, where: str) -> Json:
    """Return `{"status", "headers", "body"}` of an accepted answer, or raise the verdict.

    Args:
        response: a response whose body is not read yet; the caller releases it.
        expect: the statuses that count as success; None means every status below 400.
        max_bytes: the largest body accepted, after content decoding.
        where: `connection.action`, for the error.

    Raises:
        errors.Transient: 429 or 5xx; `retry_after` comes from `Retry-After` on 429 and 503.
        errors.Permanent: another unexpected status, a larger body, or malformed JSON.
    """
    status = response.status
    if not (status < 400 if expect is None else status in expect):
        data, is_cut = await _read_capped(response, _ERROR_BODY_BYTES, is_prefix_wanted=True)
        body = _decode(data, response).strip()
        if is_cut:  # the reason is usually at the start: show it, and say that more was sent
            declared = response.headers.get("content-length", "")
            more = f"{int(declared) - len(data):,} more bytes" if declared.isdigit() else "the answer had more"
            body = f"{body}… [truncated, {more}]"
        raise _status_error(response, body, expect, where)
    data, is_cut = await _read_capped(response, max_bytes)
    if is_cut:
        raise errors.Permanent(
            f"HTTP {status} with a body larger than response_max_bytes ({max_bytes} bytes) "
            f"{_sent(response.method, response.url)}",
            where=where,
        )
    return {"status": status, "headers": _headers_of(response), "body": _parse_body(response, data, where)}


def sending_failed(method: str, url: yarl.URL, exc: Exception, where: str) -> errors.ConnectorError:
    """Return the verdict on a request that got no complete answer; wrap it once, never let it escape.

    Connection failures and broken answers are Transient; a request aiohttp refuses to send is Permanent.
    """
    message = _failure(method, url, exc)
    if isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        return errors.Transient(message, where=where)
    return errors.Permanent(message, where=where)


def timed_out(method: str, url: yarl.URL, exc: TimeoutError, timeout_s: float, where: str) -> errors.Transient:
    """Return the verdict on a call that took longer than the connection's timeout (also waiting for a socket)."""
    return errors.Transient(f"timed out after {timeout_s:g}s, {_failure(method, url, exc)}", where=where)


def _failure(method: str, url: yarl.URL, exc: Exception) -> str:
    detail = f": {errors.redact_text(str(exc), limit=200)}" if str(exc) else ""
    return f"{type(exc).__name__}{detail} {_sent(method, url)}"


def _headers_of(response: aiohttp.ClientResponse) -> dict[str, Json]:
    """The answer's headers by lower-cased name; a repeated header becomes one comma-separated value."""
    headers: dict[str, Json] = {}
    for name, value in response.headers.items():
        name, value = name.lower(), _header_text(value)
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _header_text(value: str) -> str:
    """Undo aiohttp's surrogate escapes: a value that is not UTF-8 is read as Latin-1, never kept
    with lone surrogates (they cannot be journaled). GBK file names in Content-Disposition do this."""
    if value.isascii():
        return value
    raw = value.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


async def _read_capped(
    response: aiohttp.ClientResponse, limit: int, *, is_prefix_wanted: bool = False
) -> tuple[bytes, bool]:
    """Read at most `limit` decoded bytes; return them and whether the body was longer.

    A body declared longer than `limit` is not read at all, unless `is_prefix_wanted` (an
    error's body: its first bytes are the reason a person needs).
    """
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit and not is_prefix_wanted:
        return b"", True
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > limit:
            chunks.append(chunk[: len(chunk) - (size - limit)])
            return b"".join(chunks), True
        chunks.append(chunk)
    return b"".join(chunks), False


def _decode(data: bytes, response: aiohttp.ClientResponse) -> str:
    try:
        return data.decode(response.charset or "utf-8", errors="replace")
    except LookupError:  # an unknown charset name from the server
        return data.decode("utf-8", errors="replace")


def _parse_body(response: aiohttp.ClientResponse, data: bytes, where: str) -> Json:
    media = response.headers.get("content-type", "").partition(";")[0].strip().lower()
    if not (media == "application/json" or media.endswith("+json")):
        return _decode(data, response)
    if not data.strip():
        return None
    try:
        return codec.loads(data)
    except (ValueError, RecursionError) as exc:
        raise errors.Permanent(
            f"HTTP {response.status} with {media} that is not valid JSON "
            f"({type(exc).__name__}) {_sent(response.method, response.url)}",
            where=where,
        ) from None


def _status_error(
    response: aiohttp.ClientResponse, body: str, expect: list[int] | None, where: str
) -> errors.ConnectorError:
    status = response.status
    wanted = f"; expected one of {expect}" if expect is not None else ""
    # The body first: it is the reason a person needs, also where a listing cuts the message.
    message = (
        f"HTTP {status} {_header_text(response.reason or '')}{wanted}: "
        f"{errors.redact_text(body, limit=_ERROR_BODY_BYTES + 60)} {_sent(response.method, response.url)}"
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


def _sent(method: str, url: yarl.URL) -> str:
    """`(METHOD url)` without the query: it may carry an API key."""
    try:
        target = f"{url.origin()}{url.path}"  # the origin drops user and password too
    except ValueError:  # no host: aiohttp refused to send it
        target = str(url.with_query(None).with_fragment(None))
    return f"({method} {errors.redact_text(target, limit=200)})"
