"""How the `http` connector reads an answer: a bounded body, exact JSON, and the verdict on
a failure (Transient for timeouts, connection failures, 429 and 5xx; Permanent for the rest)."""

from __future__ import annotations

from datetime import UTC, timedelta
from email.utils import parsedate_to_datetime

import httpx

from seamflow import clock, codec, errors
from seamflow.ids import Json

__all__ = ["read_answer", "sending_failed"]

_ERROR_BODY_BYTES = 2048
"""How much of a failure's body is read and shown in the error message."""


async def read_answer(response: httpx.Response, expect: list[int] | None, max_bytes: int, where: str) -> Json:
    """Return `{"status", "headers", "body"}` of an accepted answer, or raise the verdict.

    Args:
        response: a streamed response; the caller closes it.
        expect: the statuses that count as success; None means every status below 400.
        max_bytes: the largest body accepted, after content decoding.
        where: `connection.action`, for the error.

    Raises:
        errors.Transient: 429 or 5xx; `retry_after` comes from `Retry-After` on 429 and 503.
        errors.Permanent: another unexpected status, a larger body, or malformed JSON.
    """
    status = response.status_code
    if not (status < 400 if expect is None else status in expect):
        data, _ = await _read_capped(response, _ERROR_BODY_BYTES)
        raise _status_error(response, _decode(data, response), expect, where)
    data, is_cut = await _read_capped(response, max_bytes)
    if is_cut:
        raise errors.Permanent(
            f"HTTP {status} with a body larger than response_max_bytes ({max_bytes} bytes) {_sent(response.request)}",
            where=where,
        )
    return {
        "status": status,
        "headers": dict(response.headers.items()),
        "body": _parse_body(response, data, where),
    }


def sending_failed(
    request: httpx.Request, exc: httpx.HTTPError | httpx.InvalidURL | httpx.StreamError, where: str
) -> errors.ConnectorError:
    """Return the verdict on a request that got no answer; wrap it once, never let it escape.

    Timeouts and connection failures are Transient; a request httpx refuses to send is Permanent.
    """
    detail = f": {errors.redact(str(exc), limit=200)}" if str(exc) else ""
    message = f"{type(exc).__name__}{detail} {_sent(request)}"
    if isinstance(exc, httpx.TimeoutException):
        timeout_s = (request.extensions.get("timeout") or {}).get("read")
        return errors.Transient(f"timed out after {timeout_s}s, {message}", where=where)
    if isinstance(exc, httpx.TransportError) and not isinstance(
        exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError
    ):
        return errors.Transient(message, where=where)
    return errors.Permanent(message, where=where)


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
            f"HTTP {response.status_code} with {media} that is not valid JSON "
            f"({type(exc).__name__}) {_sent(response.request)}",
            where=where,
        ) from None


def _status_error(response: httpx.Response, body: str, expect: list[int] | None, where: str) -> errors.ConnectorError:
    status = response.status_code
    wanted = f"; expected one of {expect}" if expect is not None else ""
    # The body first: it is the reason a person needs, also where a listing cuts the message.
    message = (
        f"HTTP {status} {response.reason_phrase}{wanted}: "
        f"{errors.redact(body, limit=_ERROR_BODY_BYTES)} {_sent(response.request)}"
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


def _sent(request: httpx.Request) -> str:
    """`(METHOD url)` without the query: it may carry an API key."""
    url = request.url
    shown = errors.redact(f"{url.scheme}://{url.netloc.decode()}{url.path}", limit=200)
    return f"({request.method} {shown})"
