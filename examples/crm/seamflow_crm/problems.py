"""Errors as RFC 9457 problem details (`application/problem+json`), each naming the fields at fault.

```
Problem (ProblemError)
├── InvalidInput          422  a field is wrong; `errors` lists each field with what was expected
├── Unauthorized          401  no or a wrong bearer token
├── NotFound              404  no such record
├── Conflict              409  the record's state forbids the change (e.g. signing a cancelled contract)
└── PreconditionFailed    412  If-Match / version is stale: someone else changed the record first
```
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Self

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = [
    "Conflict",
    "FieldError",
    "InvalidInput",
    "NotFound",
    "PreconditionFailed",
    "Problem",
    "ProblemError",
    "Unauthorized",
    "install_handlers",
    "problem_responses",
]

MEDIA_TYPE = "application/problem+json"
_TYPE_PREFIX = "urn:seamflow-crm:problem:"
log = logging.getLogger("seamflow_crm")


class FieldError(BaseModel):
    """One wrong field."""

    field: str = Field(description='Where, as a path: "lines[0].unit_price"', examples=["phone"])
    pointer: str = Field(description="Where, as a JSON pointer into the request body", examples=["#/phone"])
    detail: str = Field(description="What is wrong and what was expected")


class Problem(BaseModel):
    """An RFC 9457 problem detail."""

    type: str = Field(examples=[f"{_TYPE_PREFIX}invalid-input"])
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None


class ProblemError(Exception):
    """An error the API answers with a problem detail."""

    status = 500
    code = "internal"
    title = "Internal error"

    def __init__(self, detail: str, *, errors: Sequence[FieldError] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors)

    @classmethod
    def field(cls, path: str, detail: str) -> Self:
        """The error about one field, given as a dotted path ("lines.0.qty")."""
        error = _field_error([part for part in path.split(".") if part], detail)
        return cls(f"{error.field}: {detail}", errors=[error])

    def to_problem(self, instance: str) -> Problem:
        """The problem detail for this error at `instance` (the request path)."""
        return Problem(
            type=_TYPE_PREFIX + self.code,
            title=self.title,
            status=self.status,
            detail=self.detail,
            instance=instance,
            errors=self.errors or None,
        )


class InvalidInput(ProblemError):
    """A field is missing or wrong."""

    status, code, title = 422, "invalid-input", "Invalid input"


class Unauthorized(ProblemError):
    """No bearer token, or not the right one."""

    status, code, title = 401, "unauthorized", "Unauthorized"


class NotFound(ProblemError):
    """No such record."""

    status, code, title = 404, "not-found", "Not found"


class Conflict(ProblemError):
    """The record's current state does not allow this change."""

    status, code, title = 409, "conflict", "Conflict"


class PreconditionFailed(ProblemError):
    """The change was based on an older version of the record."""

    status, code, title = 412, "precondition-failed", "Precondition failed"


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    """A problem detail as an HTTP response."""
    body = problem.model_dump(mode="json", exclude_none=True)
    return JSONResponse(body, status_code=problem.status, media_type=MEDIA_TYPE, headers=headers)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI `responses` entries for these error statuses (FastAPI's `responses=`)."""
    return {status: {"model": Problem, "description": _DESCRIPTIONS[status]} for status in statuses}


_DESCRIPTIONS = {
    401: "No or a wrong bearer token",
    404: "No such record",
    409: "The record's state does not allow this change",
    412: "The record changed since the given version (If-Match)",
    422: "Invalid input; `errors` names each field",
}


def install_handlers(app: FastAPI) -> None:
    """Answer every error, ours and the framework's, with a problem detail."""

    @app.exception_handler(ProblemError)
    async def on_problem(request: Request, exc: ProblemError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
        return problem_response(exc.to_problem(request.url.path), headers)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [_from_pydantic(error) for error in exc.errors()]
        detail = "; ".join(f"{error.field}: {error.detail}" for error in errors)
        return problem_response(InvalidInput(detail, errors=errors).to_problem(request.url.path))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        problem = Problem(type="about:blank", title=str(exc.detail), status=exc.status_code)
        problem.instance = request.url.path
        return problem_response(problem, dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        problem = Problem(type=_TYPE_PREFIX + "internal", title="Internal error", status=500)
        return problem_response(problem)


_EXPECTED = {
    r"^1[3-9]\d{9}$": "expected a mainland China mobile number: 11 digits matching ^1[3-9]\\d{9}$, e.g. 13812345678",
    r"^\d{1,13}(\.\d{1,2})?$": 'expected an amount as a decimal string with at most two decimals, e.g. "199.00"',
    r"^[0-9A-Z]{18}$": "expected a unified social credit code: 18 digits or upper-case letters",
}


def _from_pydantic(error: object) -> FieldError:
    assert isinstance(error, dict)  # RequestValidationError.errors() gives dicts
    location = [str(part) for part in error.get("loc", ())]
    if location and location[0] in {"body", "query", "path", "header"}:
        where = location[0]
        location = location[1:]
        if where == "header" and location:
            location = [location[0].title()]
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if error.get("type") == "extra_forbidden":
        message = "unknown field; not one this request accepts"
    elif error.get("type") == "string_pattern_mismatch":
        pattern = str(error.get("ctx", {}).get("pattern", ""))
        message = _EXPECTED.get(pattern, message)
    return _field_error(location, message)


def _field_error(location: list[str], detail: str) -> FieldError:
    field = ""
    for part in location:
        field += f"[{part}]" if part.isdigit() else (f".{part}" if field else part)
    return FieldError(field=field or "body", pointer="#/" + "/".join(location), detail=detail)
