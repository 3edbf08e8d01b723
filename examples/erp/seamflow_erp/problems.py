"""RFC 9457 problem details: every error the API returns says what went wrong, where, and what was expected."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = ["PROBLEM_RESPONSES", "FieldProblem", "Problem", "ProblemBody", "install_problem_handlers"]

log = logging.getLogger("seamflow_erp")
MEDIA_TYPE = "application/problem+json"


class FieldProblem(BaseModel):
    """One invalid input: `pointer` (JSON Pointer into the body) or `parameter` / `header`, and what is wrong."""

    detail: str
    pointer: str | None = None
    parameter: str | None = None
    header: str | None = None


class ProblemBody(BaseModel):
    """An RFC 9457 problem document; `code` is the stable machine-readable name of `type`."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldProblem] = []


class Problem(Exception):
    """An error that becomes a problem+json response. `code` is stable (README lists every code)."""

    def __init__(
        self, status: int, code: str, detail: str, *, errors: list[FieldProblem] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors or []
        self.extra = extra

    @classmethod
    def not_found(cls, entity: str, key: object) -> Problem:
        return cls(404, "not_found", f"{entity} {key} does not exist")

    @classmethod
    def invalid(cls, pointer: str, detail: str) -> Problem:
        """One body field is invalid; `pointer` like `#/lines/0/sku`."""
        return cls(
            422,
            "invalid_input",
            f"{pointer.removeprefix('#/')}: {detail}",
            errors=[FieldProblem(pointer=pointer, detail=detail)],
        )

    def to_body(self) -> dict[str, Any]:
        body = ProblemBody(
            type=f"/problems/{self.code.replace('_', '-')}",
            title=self.code.replace("_", " ").capitalize(),
            status=self.status,
            detail=self.detail,
            code=self.code,
            errors=self.errors,
        ).model_dump(exclude_none=True)
        return {**body, **self.extra}


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemBody, "content": {MEDIA_TYPE: {}}, "description": text}
    for status, text in [
        (401, "Missing or wrong bearer token"),
        (404, "Not found"),
        (409, "Conflict"),
        (422, "Invalid input"),
    ]
}


def _problem_response(problem: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(problem.to_body(), status_code=problem.status, media_type=MEDIA_TYPE, headers=headers)


def _where(loc: tuple[int | str, ...]) -> dict[str, str]:
    source, *path = loc or ("body",)
    if source == "body":
        return {"pointer": "#/" + "/".join(str(part) for part in path)}
    if source == "header":
        return {"header": str(path[0]) if path else ""}
    return {"parameter": ".".join(str(part) for part in path)}


def install_problem_handlers(app: FastAPI) -> None:
    """Turn every error (ours, validation, unknown route, crash) into problem+json."""

    @app.exception_handler(Problem)
    async def _on_problem(_request: Request, exc: Problem) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _problem_response(exc, headers)

    @app.exception_handler(RequestValidationError)
    async def _on_invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            FieldProblem(
                detail=str(err.get("msg", "invalid")).removeprefix("Value error, "), **_where(tuple(err.get("loc", ())))
            )
            for err in exc.errors()
        ]
        where = "; ".join(
            f"{(e.pointer or '').removeprefix('#/') or e.parameter or e.header}: {e.detail}" for e in errors
        )
        return _problem_response(Problem(422, "invalid_input", where, errors=errors))

    @app.exception_handler(StarletteHTTPException)
    async def _on_http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _problem_response(Problem(exc.status_code, code, str(exc.detail)))

    @app.exception_handler(Exception)
    async def _on_crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _problem_response(Problem(500, "internal_error", "the ERP failed to handle this request; see its log"))
