"""`POST /hooks/<path>`: the webhook trigger. Reads the raw body with a size bound, checks the
signature over the bytes received, parses strictly, and answers only after the event is committed.

JSON is UTF-8 (RFC 8259), but OA, ERP and POS systems in China often send GBK. A body whose
`Content-Type` declares `charset=gbk`, `gb2312` or `gb18030` is decoded as GB18030 (a
superset of the other two, so every GBK or GB2312 body decodes the same) and stored as text;
a body that declares nothing must be UTF-8.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from seamflow import clock, codec, engine, errors
from seamflow.api.oa_callbacks import OaCallbacks
from seamflow.api.problems import problem, problem_from_error
from seamflow.api.rate_limits import HookRateLimits
from seamflow.flows import CompiledFlow, spec
from seamflow.ids import Json

__all__ = ["HOOKS_PREFIX", "WebhookLimits", "handle_webhook"]

HOOKS_PREFIX = "/hooks/"

_IGNORED: dict[str, Json] = {"status": "ignored", "reason": "the flow's when condition is false"}
_DROPPED_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization", "x-api-key"})
_UTF8_CHARSETS = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})
_GB_CHARSETS = frozenset({"gb18030", "gbk", "x-gbk", "cp936", "gb2312"})
"""Labels decoded as GB18030: GBK and GB2312 (and their Windows/Java names) are its subsets."""
_SUPPORTED_CHARSETS = "utf-8, gbk, gb2312 or gb18030"


@dataclass(frozen=True, slots=True)
class WebhookLimits:
    """Bounds for incoming webhook requests."""

    max_body_bytes: int = 10 * 1024 * 1024
    """Largest body accepted, before and after decompression (default 10 MiB)."""
    json: codec.Limits = field(default_factory=codec.Limits)
    rates: HookRateLimits = field(default_factory=HookRateLimits, compare=False)
    """This process's buckets for the flows' `rate_limit`s."""


_PATHS_SHOWN = 10
_CALLBACKS = OaCallbacks()
"""For callers that bring none; `create_app` gives each app its own."""


def _unknown_path(path: str, known: Mapping[str, object]) -> str:
    """`no flow has the webhook path 'x'; known paths: orders, ping` (at most `_PATHS_SHOWN` of them)."""
    paths = sorted(known)
    if not paths:
        return f"no flow has the webhook path {errors.redact(path)}; no flow has a webhook trigger"
    shown = ", ".join(paths[:_PATHS_SHOWN]) + (
        f" and {len(paths) - _PATHS_SHOWN} more" if len(paths) > _PATHS_SHOWN else ""
    )
    return f"no flow has the webhook path {errors.redact(path)}; known paths: {shown} (POST /hooks/<path>)"


async def handle_webhook(
    request: Request,
    eng: engine.Engine,
    limits: WebhookLimits,
    context: Mapping[str, object],
    callbacks: OaCallbacks | None = None,
) -> Response:
    """Accept one webhook request (or OA callback, with `callbacks`) for the flow registered at its path."""
    path = request.scope["path"].removeprefix(HOOKS_PREFIX).strip("/")
    flow = eng.catalog.by_path.get(path)
    is_oa = flow is not None and flow.spec.trigger.oa is not None
    if request.method != "POST" and not is_oa:
        return problem(405, "http.405", "webhooks accept POST only", headers={"Allow": "POST"})
    if flow is None:
        known: list[Json] = [f"{HOOKS_PREFIX}{p}" for p in sorted(eng.catalog.by_path)]
        return problem(404, "webhook.unknown_path", _unknown_path(path, eng.catalog.by_path), known_paths=known)
    refused = _over_rate_limit(flow, limits.rates)
    if refused is not None:
        return refused
    if flow.spec.trigger.oa is not None:
        try:
            raw = await _read_body(request, limits.max_body_bytes)
            return await (callbacks or _CALLBACKS).handle(request, raw, eng, flow, context)
        except errors.SeamflowError as exc:
            return problem_from_error(exc)
        except ClientDisconnect:
            return Response(status_code=499)
    try:
        raw = await _read_body(request, limits.max_body_bytes)
        await _check_signature(flow, raw, request.headers, context, eng)
        body = _decode(raw, request.headers, limits)
        event = engine.Event(
            "webhook",
            body,
            dedupe_key=request.headers.get("idempotency-key") or None,
            headers={k: v for k, v in request.headers.items() if k not in _DROPPED_HEADERS},
            query=dict(request.query_params),
        )
        accepted = await eng.accept(flow, event)
        if accepted is None:
            return Response(codec.dumps(_IGNORED), 200, media_type="application/json")
    except errors.SeamflowError as exc:
        return problem_from_error(exc)
    except ClientDisconnect:
        return Response(status_code=499)
    webhook = flow.spec.trigger.webhook
    assert webhook is not None
    if webhook.mode == "sync" and not accepted.is_duplicate:
        return await _await_response(eng, accepted, webhook.response_timeout.total_seconds())
    answer: dict[str, Json] = {
        "run_id": accepted.run_id,
        "event_id": accepted.event_id,
        "duplicate": accepted.is_duplicate,
    }
    return Response(codec.dumps(answer), 200 if accepted.is_duplicate else 202, media_type="application/json")


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise errors.PayloadInvalid(
            f"body of {declared} bytes exceeds the limit of {limit} bytes", code="payload.too_large", http_status=413
        )
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise errors.PayloadInvalid(
                f"body exceeds the limit of {limit} bytes", code="payload.too_large", http_status=413
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _over_rate_limit(flow: CompiledFlow, rates: HookRateLimits) -> Response | None:
    webhook = flow.spec.trigger.webhook
    if webhook is None or webhook.rate_limit is None:
        return None
    wait_s = rates.take(flow.spec.id, webhook.rate_limit)
    if wait_s is None:
        return None
    limit = webhook.rate_limit
    return problem(
        429,
        "webhook.rate_limited",
        f"the webhook of flow {flow.spec.id} accepts {limit.requests} requests per"
        f" {limit.per.total_seconds():g} s; retry after {wait_s} s",
        headers={"Retry-After": str(wait_s)},
    )


async def _check_signature(
    flow: CompiledFlow, raw: bytes, headers: Mapping[str, str], context: Mapping[str, object], eng: engine.Engine
) -> None:
    webhook = flow.spec.trigger.webhook
    if webhook is None or webhook.signature is None or flow.signature_secret is None:
        return
    sig = webhook.signature
    given = headers.get(sig.header.lower())
    if not given:
        raise errors.Unauthorized(f"missing signature header {sig.header}", code="webhook.signature_missing")
    signed_at = _signed_at(sig, headers) if sig.timestamp_header else None
    content = raw if signed_at is None else f"{signed_at}.".encode() + raw
    secret = str(flow.signature_secret.render(context))
    expected = sig.prefix + hmac.new(secret.encode(), content, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(given.strip().encode(), expected.encode()):
        covered = "the body" if signed_at is None else f"'<{sig.timestamp_header}>.' followed by the body"
        raise errors.Unauthorized(
            f"signature in {sig.header} does not match HMAC-SHA256 of {covered};"
            f" expected {sig.prefix or ''}<hex digest>",
            code="webhook.signature_invalid",
        )
    if signed_at is None:
        return
    digest = hashlib.sha256(expected.encode()).hexdigest()
    until = datetime.fromtimestamp(signed_at, UTC) + sig.tolerance
    if not await eng.db.remember_webhook_signature(flow.spec.id, digest, until):
        raise errors.Unauthorized(
            f"this signature in {sig.header} was accepted before; expected a new timestamp and signature per request",
            code="webhook.signature_replayed",
        )


def _signed_at(sig: spec.SignatureSpec, headers: Mapping[str, str]) -> int:
    """The Unix time in the timestamp header, checked against the tolerance."""
    name = str(sig.timestamp_header)
    value = headers.get(name.lower(), "").strip()
    if not value:
        raise errors.Unauthorized(f"missing timestamp header {name}", code="webhook.signature_missing")
    if not value.isdigit() or len(value) > 12:
        raise errors.Unauthorized(
            f"timestamp in {name} is {errors.redact(value)}; expected Unix time in seconds, e.g. 1765094400",
            code="webhook.signature_stale",
        )
    signed_at = int(value)
    skew = abs(clock.now().timestamp() - signed_at)
    tolerance = sig.tolerance.total_seconds()
    if skew > tolerance:
        raise errors.Unauthorized(
            f"timestamp in {name} is {skew:.0f} s from the server's clock; expected within {tolerance:g} s"
            " (a stale or replayed request, or a sender whose clock is off)",
            code="webhook.signature_stale",
        )
    return signed_at


def _decode(raw: bytes, headers: Mapping[str, str], limits: WebhookLimits) -> Json:
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("gzip", "deflate"):
        raw = _inflate(raw, encoding, limits.max_body_bytes)
    elif encoding not in ("identity", ""):
        raise errors.PayloadInvalid(
            f"content encoding {errors.redact(encoding)} is not supported; expected gzip, deflate or none",
            code="payload.encoding",
            http_status=415,
        )
    media_type, _, parameters = headers.get("content-type", "").partition(";")
    content_type = media_type.strip().lower()
    if not raw and not content_type:
        return None
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise errors.PayloadInvalid(
            f"content type {errors.redact(content_type or 'none')} is not supported; expected application/json",
            code="payload.content_type",
            http_status=415,
        )
    return _parse(raw, _charset(parameters), limits)


def _parse(raw: bytes, charset: str | None, limits: WebhookLimits) -> Json:
    """Parse a JSON body in its declared charset; one that declares none must be UTF-8."""
    if charset in _GB_CHARSETS:
        raw = _from_gb18030(raw, charset)
    elif charset is not None and charset not in _UTF8_CHARSETS:
        raise errors.PayloadInvalid(
            f"charset {errors.redact(charset)} in Content-Type is not supported; expected {_SUPPORTED_CHARSETS}",
            code="payload.charset",
            http_status=415,
        )
    try:
        return codec.parse_untrusted(raw, limits.json)
    except errors.PayloadInvalid as exc:
        if exc.code != "payload.encoding" or charset is not None:
            raise
        raise errors.PayloadInvalid(
            f"{exc.message}; the Content-Type declares no charset, so the body must be UTF-8;"
            " expected UTF-8, or a declared charset such as application/json; charset=gbk",
            code=exc.code,
        ) from None


def _charset(parameters: str) -> str | None:
    """The `charset` parameter of a Content-Type (lower case, unquoted), or None when there is none."""
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower() or None
    return None


def _from_gb18030(raw: bytes, charset: str) -> bytes:
    """Decode a body declared GBK/GB2312/GB18030 and return it as UTF-8, the encoding JSON parsing expects."""
    try:
        text = raw.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise errors.PayloadInvalid(
            f"body is not valid {charset} (decoded as GB18030, its superset):"
            f" byte {exc.start} is {raw[exc.start : exc.start + 1]!r}; expected text in the declared charset",
            code="payload.encoding",
        ) from None
    return text.encode("utf-8")


def _inflate(raw: bytes, encoding: str, limit: int) -> bytes:
    wbits = 31 if encoding == "gzip" else 15
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise errors.PayloadInvalid(f"body is not valid {encoding} data: {exc}", code="payload.encoding") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise errors.PayloadInvalid(
            f"decompressed body exceeds the limit of {limit} bytes", code="payload.too_large", http_status=413
        )
    if not inflater.eof:
        raise errors.PayloadInvalid(f"body is truncated {encoding} data", code="payload.encoding")
    if inflater.unused_data:  # trailing bytes or a second gzip member: refused, never silently dropped
        raise errors.PayloadInvalid(
            f"{len(inflater.unused_data)} bytes follow the end of the {encoding} data; expected one {encoding} stream",
            code="payload.encoding",
        )
    return out


async def _await_response(eng: engine.Engine, accepted: object, timeout_s: float) -> Response:
    run_id = accepted.run_id  # type: ignore[attr-defined]  # store.Accepted
    future = eng.response_for(run_id)
    try:
        answer = await asyncio.wait_for(future, timeout_s)
    except TimeoutError:
        eng.forget_response(run_id)
        body = {
            "run_id": run_id,
            "duplicate": False,
            "detail": f"the flow did not respond within {timeout_s:g} s; the run continues",
        }
        return Response(codec.dumps(body), 202, media_type="application/json")
    assert isinstance(answer, dict)
    content = answer.get("body")
    headers = {str(k): str(v) for k, v in (answer.get("headers") or {}).items()}  # type: ignore[union-attr]
    headers.setdefault("X-Seamflow-Run-Id", run_id)
    status = int(answer.get("status") or 200)  # type: ignore[arg-type]
    if isinstance(content, str):
        return Response(content, status, headers=headers, media_type="text/plain; charset=utf-8")
    return Response(codec.dumps(content), status, headers=headers, media_type="application/json")
