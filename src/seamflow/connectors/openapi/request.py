"""Turning an operation's checked inputs into an HTTP request: path, query, headers, cookies and body."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import quote, urlencode

import yarl

from seamflow import codec, errors
from seamflow.connectors.openapi.auth import Outgoing
from seamflow.connectors.openapi.document import Operation
from seamflow.connectors.openapi.paging import Page
from seamflow.connectors.tokens import Token
from seamflow.ids import Json

__all__ = ["Draft", "Request", "build_request"]


@dataclass(frozen=True, slots=True)
class Request:
    """A request ready to send."""

    method: str
    url: yarl.URL
    headers: dict[str, str]
    body: bytes | None
    tokens: dict[str, Token] = field(default_factory=dict)
    """The access tokens it carries, by security scheme: renewed if the API refuses them."""


@dataclass(slots=True)
class Draft:
    """A request still taking credentials (`out`) before it is sent."""

    method: str
    url: yarl.URL
    out: Outgoing
    body: bytes | None

    def finish(self) -> Request:
        """The request with the credentials' query parameters added (unless a next-page link already has them)."""
        present = set(self.url.query)
        query = [(name, value) for name, value in self.out.query if name not in present]
        url = self.url.extend_query(query) if query else self.url
        return Request(self.method, url, self.out.headers, self.body, self.out.tokens)


def _text(value: Json) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal | int | str):
        return str(value)
    return codec.dumps_text(value)


def build_request(
    operation: Operation, inputs: dict[str, Json], base: yarl.URL, page: Page, key: str, where: str
) -> Draft:
    """The request for `operation` with `inputs` (already checked against the document).

    Raises:
        errors.Permanent: a next-page link to another origin, or a body the operation's media type cannot carry.
    """
    path = operation.path
    query: list[tuple[str, str]] = []
    out = Outgoing(headers={"Idempotency-Key": key})
    cookies = []
    for parameter in operation.parameters:
        if parameter.name not in inputs or inputs[parameter.name] is None:
            continue
        value = inputs[parameter.name]
        if parameter.where == "path":
            path = path.replace("{" + parameter.name + "}", quote(_text(value), safe=""))
        elif parameter.where == "query":
            query += _query_pairs(parameter.name, value)
        elif parameter.where == "header":
            out.headers[parameter.name] = _text(value)
        else:
            cookies.append(f"{parameter.name}={quote(_text(value), safe='')}")
    if cookies:
        out.headers["Cookie"] = "; ".join(cookies)
    url = yarl.URL(str(base).rstrip("/") + path, encoded=True)
    if page.url is not None:
        url = _next_page(url, page.url, base, where)
    else:
        wanted = [(name, value) for name, value in query if name not in page.query] + list(page.query.items())
        url = url.with_query(wanted) if wanted else url
    body = _body(operation, inputs.get("body"), out, where) if "body" in inputs else None
    return Draft(operation.method, url, out, body)


def _query_pairs(name: str, value: Json) -> list[tuple[str, str]]:
    """Form style, exploded (the OpenAPI default): a list repeats the name, an object gives one pair per field."""
    if isinstance(value, list):
        return [(name, _text(item)) for item in value]
    if isinstance(value, dict):
        return [(field, _text(item)) for field, item in value.items()]
    return [(name, _text(value))]


def _next_page(url: yarl.URL, link: yarl.URL, base: yarl.URL, where: str) -> yarl.URL:
    target = url.join(link)
    if target.origin() != base.origin():
        raise errors.Permanent(
            f"the next-page link leads to {errors.redact(str(target.origin()))}, not {base.origin()}; "
            "credentials are sent to the API's origin only",
            where=where,
        )
    return target


def _body(operation: Operation, value: Json, out: Outgoing, where: str) -> bytes | None:
    media = operation.body.media_type if operation.body is not None else "application/json"
    if media == "application/json" or media.endswith("+json"):
        out.headers["Content-Type"] = media
        return codec.dumps(value)
    if media == "application/x-www-form-urlencoded" and isinstance(value, dict):
        out.headers["Content-Type"] = media
        return urlencode([pair for field, item in value.items() for pair in _query_pairs(field, item)]).encode()
    if isinstance(value, str):
        out.headers["Content-Type"] = media
        return value.encode()
    raise errors.Permanent(f"body: operation {operation.operation_id} takes {media}; expected text for it", where=where)
