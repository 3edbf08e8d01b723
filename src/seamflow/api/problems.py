"""RFC 9457 problem details: every error answer says what went wrong, where, and what was expected."""

from __future__ import annotations

from starlette.responses import Response

from seamflow import codec, errors, redact
from seamflow.ids import Json

__all__ = ["problem", "problem_from_error"]

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def problem(status: int, code: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Json) -> Response:
    """An `application/problem+json` answer; `code` is the stable error code (docs/reference/errors.md)."""
    body: dict[str, Json] = {
        "type": f"https://seamflow.dev/errors/{code}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "code": code,
        "detail": detail,
        **extra,
    }
    return Response(codec.dumps(body), status_code=status, media_type="application/problem+json", headers=headers)


def problem_from_error(exc: errors.SeamflowError) -> Response:
    """The problem answer for one of our errors (its message is already free of secrets)."""
    status = getattr(exc, "http_status", 500)
    headers = None
    retry_after = getattr(exc, "retry_after_s", None)
    if retry_after is not None:
        headers = {"Retry-After": str(retry_after)}
    problems = getattr(exc, "problems", None)
    extra: dict[str, Json] = {}
    if problems:
        extra["errors"] = [{"where": str(p.where), "problem": p.problem, "expected": p.expected} for p in problems]
    return problem(status, exc.code, redact.mask_text(exc.message), headers=headers, **extra)
