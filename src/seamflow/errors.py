"""The error tree: every failure says what went wrong, where, and what was expected.

```
SeamflowError                      code: stable dotted string (docs/reference/errors.md)
├── InvalidInput → FlowInvalid, ExpressionError, PayloadInvalid      (HTTP 4xx, exit 2)
├── Unauthorized                                                     (401)
├── NotFound, Conflict                                               (404, 409)
├── Overloaded (engine.runtime)                                      (503 with Retry-After)
├── ConnectorError → Transient (retry, same idempotency key) | Permanent (dead letter)
└── StoreError                                                       (driver error in __cause__)
```
Values reach a message only through `redact()`, which masks every secret the redactor knows
(`seamflow.redact`, one registry for the whole process).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from seamflow import redact as redactor

__all__ = [
    "Conflict",
    "ConnectorError",
    "ExpressionError",
    "FlowInvalid",
    "InvalidInput",
    "Location",
    "NotFound",
    "PayloadInvalid",
    "Permanent",
    "Problem",
    "SeamflowError",
    "StoreError",
    "Transient",
    "Unauthorized",
    "redact",
    "redact_text",
    "truncate",
]

_MAX_SHOWN = 80
_SECRETISH = re.compile(r"(?i)(password|passwd|secret|token|api[_-]?key|authorization)=([^&\s]+)")


def redact(value: object, limit: int = _MAX_SHOWN) -> str:
    """Return a short, secret-free rendering of `value` for an error message or a log line.

    Every secret registered with `seamflow.redact.register` is masked (in each of its encoded
    forms), then anything that looks like `password=…`/`token=…`; the result is cut to `limit`.
    """
    text = redactor.mask_text(repr(value))
    text = _SECRETISH.sub(r"\1=***", text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def redact_text(text: str, limit: int = _MAX_SHOWN) -> str:
    """Return `text` secret-free and at most about `limit` characters long, *not* quoted or escaped.

    For text that is already a message (an exception's text, an answer's body): `redact()`
    shows a value with `repr`, which quotes and escapes it, so a message passed through it
    (once when the error was raised, again when it was journaled) showed its quotes escaped
    twice over. A cut text ends with `truncate`'s marker.
    """
    text = _SECRETISH.sub(r"\1=***", redactor.mask_text(text))
    return truncate(text, limit)


def truncate(text: str, limit: int) -> str:
    """Return `text` cut to `limit` characters with a marker that says how much was left out.

    Example: `truncate("x" * 12_400, 55)` ends with `… [truncated, 12,385 more characters]`.
    """
    if len(text) <= limit:
        return text
    kept = max(limit - 40, 1)
    return f"{text[:kept]}… [truncated, {len(text) - kept:,} more characters]"


@dataclass(frozen=True, slots=True)
class Location:
    """Where a problem is: a file (or request) with line/column, and a path inside the document."""

    file: str | None = None
    line: int | None = None
    column: int | None = None
    path: str | None = None

    def __str__(self) -> str:
        parts = []
        if self.file:
            pos = self.file
            if self.line is not None:
                pos += f":{self.line}"
                if self.column is not None:
                    pos += f":{self.column}"
            parts.append(pos)
        if self.path:
            parts.append(self.path)
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem: where it is, what was found, what was expected."""

    where: Location
    problem: str
    expected: str | None = None

    def __str__(self) -> str:
        head = f"{self.where}: " if str(self.where) else ""
        tail = f"; expected {self.expected}" if self.expected else ""
        return f"{head}{self.problem}{tail}"


class SeamflowError(Exception):
    """Base of every error Seamflow raises on purpose."""

    code: str = "seamflow.error"
    http_status: int = 500
    exit_code: int = 1

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class InvalidInput(SeamflowError):
    """The caller sent something we cannot accept; fixing the input fixes the error."""

    code = "input.invalid"
    http_status = 400
    exit_code = 2

    def __init__(
        self,
        message: str | None = None,
        *,
        where: Location | None = None,
        problem: str | None = None,
        expected: str | None = None,
        code: str | None = None,
    ) -> None:
        self.problems: list[Problem] = []
        if problem is not None:
            self.problems.append(Problem(where or Location(), problem, expected))
        super().__init__(message or "; ".join(map(str, self.problems)) or "invalid input", code=code)


class FlowInvalid(InvalidInput):
    """A flow file breaks the format; carries every problem found, not only the first."""

    code = "flow.invalid"

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(map(str, problems)))
        self.problems = list(problems)


class ExpressionError(InvalidInput):
    """An expression is malformed, reaches for something forbidden, or exceeds its bounds."""

    code = "expression.invalid"


class PayloadInvalid(InvalidInput):
    """An incoming event body is not acceptable (malformed, too big, too deep, bad signature)."""

    code = "payload.invalid"

    def __init__(self, message: str, *, code: str = "payload.invalid", http_status: int = 400) -> None:
        super().__init__(message, code=code)
        self.http_status = http_status


class Unauthorized(SeamflowError):
    """Missing or wrong credentials (API token, webhook signature)."""

    code = "auth.unauthorized"
    http_status = 401
    exit_code = 2


class NotFound(SeamflowError):
    """The named flow, run, event or connection does not exist."""

    code = "not_found"
    http_status = 404
    exit_code = 2


class Conflict(SeamflowError):
    """The request contradicts the current state (e.g. replaying a run that is not dead)."""

    code = "conflict"
    http_status = 409
    exit_code = 2


class ConnectorError(SeamflowError):
    """A call to another system failed; `where` names `connection.action`."""

    code = "connector.error"

    def __init__(self, message: str, *, where: str = "", code: str | None = None) -> None:
        super().__init__(f"{where}: {message}" if where else message, code=code)
        self.where = where


class Transient(ConnectorError):
    """Worth retrying with the same idempotency key (timeout, 429, 5xx, connection refused)."""

    code = "connector.transient"

    def __init__(
        self,
        message: str,
        *,
        where: str = "",
        retry_after: timedelta | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, where=where, code=code)
        self.retry_after = retry_after


class Permanent(ConnectorError):
    """Retrying will not help (4xx other than 429, bad input for the target)."""

    code = "connector.permanent"


class StoreError(SeamflowError):
    """The store failed; the driver's error is in `__cause__`."""

    code = "store.error"


class LeaseLost(StoreError):
    """This process no longer holds the run: its lease expired and another worker took it over.

    The step result that was being written is refused (fencing); the new owner's result counts.
    """

    code = "run.lease_lost"
