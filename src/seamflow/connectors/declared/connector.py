"""A declared connector at run time: an `http` connection built from the file, with operations.

`connector_class(file)` makes the connector class of one file. Its connections open an
`HttpConnector` whose base URL, sign-in and headers are the file's, filled from the connection's
settings; each operation is a `request` on it, paced to the declared `rate_limit`, then the
answer's declared error code decides success, `connector.transient` or `connector.rejected`,
and `output` picks what the step gets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any, ClassVar
from urllib.parse import quote

from pydantic import BaseModel

from seamflow import errors, redact
from seamflow.connectors.base import Action, Batch, Connection, Feed, parse_config
from seamflow.connectors.declared.inputs import input_model, schema_problems, settings_model
from seamflow.connectors.declared.pacing import Pacer
from seamflow.connectors.declared.render import render
from seamflow.connectors.declared.spec import ConnectorFile, ErrorCodes, Operation, RateLimit
from seamflow.connectors.http import HttpConnector
from seamflow.connectors.http.oauth2 import PendingAuthorization
from seamflow.connectors.openapi.feed import ListFeedInput, select
from seamflow.connectors.openapi.paging import Page, collect, items_of, value_at
from seamflow.ids import Json

__all__ = ["DeclaredConnector", "connector_class"]


class DeclaredConnector:
    """The base of every declared connector class; see the module docstring."""

    kind: ClassVar[str] = ""
    Config: ClassVar[type[BaseModel]]
    actions: ClassVar[Mapping[str, Action]] = {}
    file: ClassVar[ConnectorFile]
    raw: ClassVar[dict[str, Any]]
    """The file's data as written (templates unrendered), for the sign-in."""

    feeds: ClassVar[Mapping[str, Feed]] = {
        "list": Feed(
            "list",
            ListFeedInput,
            "poll",
            "New and changed items of a listing operation (every page of a paginated one), in order of their"
            " cursor field, as the openapi connector's; the dedupe key is operation:key:cursor value.",
        )
    }

    def __init__(self) -> None:
        self._http = HttpConnector()
        self._name = self.kind
        self._settings: dict[str, Json] = {}
        limit = self.file.rate_limit
        self._pacer = None if limit is None else Pacer(limit.per_second, limit.burst)
        codes = self.file.errors
        answered = [*(codes.statuses if codes else []), *([429] if limit else [])]
        self._expect = [*range(200, 300), *answered] if answered else None
        """The statuses the `http` layer hands back instead of judging them: the file's codes decide."""

    async def open(self, connection: Connection) -> None:
        """Check the connection's settings against the file's and open the HTTP connection.

        Raises:
            errors.InvalidInput: `connection.invalid`: a setting is missing or wrong, or the
                filled base URL or sign-in is not valid.
        """
        settings = parse_config(self.Config, connection).model_dump()
        for name, setting in self.file.settings.items():
            if setting.is_secret and settings.get(name) is not None:
                redact.register(str(settings[name]))
        self._name, self._settings = connection.name, settings
        values = {"config": settings}
        config: dict[str, Json] = {
            "base_url": render(self.file.base_url, values, connection.name),
            "headers": render(dict(self.file.headers), values, connection.name),
        }
        if self.raw.get("sign") is not None:
            config["sign"] = render(self.raw["sign"], values, connection.name)
        if self.raw.get("auth") is not None:
            config["auth"] = auth = render(self.raw["auth"], values, connection.name)
            codes = self.file.errors
            endpoint = auth.get("token_endpoint") if isinstance(auth, dict) else None
            if codes is not None and codes.revoked and isinstance(endpoint, dict):
                endpoint.setdefault("error_code", codes.code if isinstance(codes.code, str) else list[Json](codes.code))
                endpoint.setdefault("revoked_codes", list(codes.revoked))
        await self._http.open(replace(connection, config=config))  # its errors name this connector

    async def close(self) -> None:
        """Close the HTTP connection."""
        await self._http.close()

    def begin_authorization(self, redirect_uri: str) -> PendingAuthorization:
        """Start the OAuth2 authorization code grant of a file whose `auth:` is `oauth2` (see `HttpConnector`).

        Raises:
            errors.InvalidInput: `connection.invalid`: the file's sign-in is not the authorization code grant.
        """
        return self._http.begin_authorization(redirect_uri)

    async def finish_authorization(self, pending: PendingAuthorization, redirected: str) -> None:
        """Check the redirect URL, exchange its code and store the tokens (see `HttpConnector`)."""
        await self._http.finish_authorization(pending, redirected)

    async def call(self, action: str, params: Json, *, idempotency_key: str) -> Json:
        """Call operation `action` with the step's inputs.

        Raises:
            errors.Permanent: `connector.invalid_input` (inputs against the input schema),
                `connector.rejected` (a declared error code), or the `http` connector's errors.
            errors.Transient: a `retryable` error code, or the `http` connector's transient errors.
        """
        where = f"{self._name}.{action}"
        operation = self.file.operations.get(action)
        if operation is None:
            known = ", ".join(sorted(self.file.operations))
            raise errors.Permanent(f"unknown operation {errors.redact(action)}; expected one of {known}", where=where)
        inputs = params if isinstance(params, dict) else {}
        problems = schema_problems(operation.input, inputs, literal_only=False)
        if problems:
            said = "; ".join(f"with.{path}: {problem}" if path else f"with: {problem}" for path, problem in problems)
            raise errors.Permanent(f"invalid input: {said}", where=where, code="connector.invalid_input")
        values = {"config": self._settings, "input": inputs}
        path = _fill_path(operation.path, inputs, where)
        query = render(operation.query, values, where)
        body = render(operation.body, values, where) if operation.body is not None else None
        assert isinstance(query, dict) and (body is None or isinstance(body, dict))  # rendered from dicts
        if operation.paginate is None:
            answer = await self._send(operation, path, query, body, idempotency_key, where)
            return _output(answer, operation.output, where)

        async def fetch(page: Page, number: int) -> dict[str, Json]:
            page_values: dict[str, Json] = {k: int(v) if v.isdigit() else v for k, v in page.query.items()}
            in_body = operation.page_in == "body"
            page_query = query if in_body else {**query, **page_values}
            page_body = _with_values(body or {}, page_values) if in_body else body
            return await self._send(operation, path, page_query, page_body, f"{idempotency_key}:{number}", where)

        assert operation.paginate is not None
        return await collect(operation.paginate, fetch, where)

    async def poll(self, feed: str, params: Json, cursor: Json, *, limit: int) -> Batch:
        """The `list` feed: read the listing operation, return what is after `cursor` (see `openapi.feed`).

        Raises:
            errors.Permanent: an unknown feed or operation, settings the operation already declares
                (`paginate`, `since_param`), or the operation's own errors.
            errors.Transient: the operation's transient errors.
        """
        where = f"{self._name}.{feed}"
        if feed != "list":
            raise errors.Permanent(f"unknown feed {errors.redact(feed)}; expected list", where=where)
        settings = ListFeedInput.model_validate(params)
        operation = self.file.operations.get(settings.operation)
        if operation is None or settings.paginate is not None or settings.since_param is not None:
            known = ", ".join(sorted(self.file.operations))
            raise errors.Permanent(
                f"cannot poll {errors.redact(settings.operation)}; expected one of the operations {known},"
                " without paginate or since_param (the operation declares its pages)",
                where=where,
            )
        answer = await self.call(settings.operation, settings.params, idempotency_key=f"poll:{settings.operation}")
        path = settings.items if operation.paginate is None else "items"
        return select(settings, items_of(answer, path, where), cursor, limit, where)

    async def _send(
        self,
        operation: Operation,
        path: str,
        query: dict[str, Json],
        body: dict[str, Json] | None,
        key: str,
        where: str,
    ) -> dict[str, Json]:
        request: dict[str, Json] = {"method": operation.method, "path": path}
        if query:
            request["query"] = query
        if body is not None:
            request["json"] = body
        if self._expect is not None:
            request["expect"] = list[Json](self._expect)
        if self._pacer is not None:
            await self._pacer.wait()
        answer = await self._http.call("request", request, idempotency_key=key)
        assert isinstance(answer, dict)  # the http connector answers {status, headers, body}
        status = answer.get("status")
        limit = self.file.rate_limit
        if limit is not None:
            _raise_too_frequent(limit, self.file.errors, answer, where)
        if self.file.errors is not None:
            _raise_declared(self.file.errors, answer.get("body"), where)
        if isinstance(status, int) and status >= 400:  # a status declared to carry a code, without one
            raise errors.Permanent(
                f"HTTP {status} without {_code_paths(self.file.errors)}; got {errors.redact(answer.get('body'), 200)}",
                where=where,
                code="connector.rejected",
            )
        return answer


def _with_values(body: dict[str, Json], values: dict[str, Json]) -> dict[str, Json]:
    """A copy of `body` with each value set at its dotted name (`data.StartRow` sets `StartRow` inside `data`)."""
    out = dict(body)
    for name, value in values.items():
        head, dot, rest = name.partition(".")
        inner = out.get(head)
        out[head] = _with_values(inner if isinstance(inner, dict) else {}, {rest: value}) if dot else value
    return out


def _fill_path(path: str, inputs: dict[str, Json], where: str) -> str:
    """`path` with each `{name}` replaced by input `name`, URL-encoded."""
    filled = path
    for name, value in inputs.items():
        filled = filled.replace("{" + name + "}", quote(str(value), safe=""))
    if "{" in filled:
        raise errors.Permanent(
            f"the path {path!r} needs an input for each {{name}}; one was not given",
            where=where,
            code="connector.invalid_input",
        )
    return filled


def _code_of(codes: ErrorCodes | None, body: Json) -> Json:
    """The declared code in an answer's body (at the first of its paths present), or None."""
    for path in [] if codes is None else codes.code if isinstance(codes.code, list) else [codes.code]:
        try:
            return value_at(body, path)
        except KeyError:
            continue
    return None


def _code_paths(codes: ErrorCodes | None) -> str:
    return "a code" if codes is None else codes.code if isinstance(codes.code, str) else " or ".join(codes.code)


def _raise_too_frequent(limit: RateLimit, codes: ErrorCodes | None, answer: dict[str, Json], where: str) -> None:
    """Raise `connector.transient` with the wait if the answer says the app called too often."""
    status, code = answer.get("status"), _code_of(codes, answer.get("body"))
    is_code = code is not None and any(str(code) == str(known) for known in limit.codes)
    if status != 429 and not is_code:
        return
    headers = answer.get("headers")
    names = ["retry-after", *([limit.wait_header.lower()] if limit.wait_header else [])]
    said = [h for name in names if isinstance(headers, dict) and isinstance(h := headers.get(name), str)]
    wait_s = next((float(h) for h in said if h.strip().isdigit()), limit.wait_s)
    what = f"HTTP {status}" if status == 429 else f"{_code_paths(codes)}={errors.redact(code)}"
    raise errors.Transient(
        f"the system refused a call as too frequent ({what}); retrying after {wait_s:g}s"
        f" (declared rate_limit: {limit.per_second:g} per second)",
        where=where,
        retry_after=timedelta(seconds=wait_s),
        code="connector.rate_limited",
    )


def _raise_declared(codes: ErrorCodes, body: Json, where: str) -> None:
    """Raise the error a declared code in an answer's body means (none for an `ok` code or no code)."""
    code = _code_of(codes, body)
    if code is None or any(str(code) == str(ok) for ok in codes.ok):
        return
    said = ""
    for path in [] if codes.message is None else [codes.message] if isinstance(codes.message, str) else codes.message:
        try:
            said = f" ({path}={errors.redact(value_at(body, path), limit=200)})"
            break
        except KeyError:
            continue
    message = f"the system answered {_code_paths(codes)}={errors.redact(code)}{said}"
    if any(str(code) == str(again) for again in codes.retryable):
        raise errors.Transient(message + "; declared retryable", where=where)
    raise errors.Permanent(
        message + f"; expected {_code_paths(codes)} in {', '.join(map(str, codes.ok))}",
        where=where,
        code="connector.rejected",
    )


def _output(answer: dict[str, Json], output: str | dict[str, str] | None, where: str) -> Json:
    """What the step gets: the body, the value at a dotted path, or a mapping of names to paths."""
    body = answer.get("body")
    if output is None:
        return body
    path = output if isinstance(output, str) else ""
    try:
        if isinstance(output, dict):
            picked: dict[str, Json] = {}
            for name, path in output.items():
                picked[name] = value_at(body, path)
            return picked
        return value_at(body, path)
    except KeyError:
        raise errors.Permanent(
            f"the answer has nothing at {path!r} (the operation's output); got {errors.redact(body, 120)}", where=where
        ) from None


def connector_class(file: ConnectorFile, raw: dict[str, Any]) -> type[DeclaredConnector]:
    """The connector class of a declared connector file (`raw`: the file's data as written)."""
    actions = {
        name: Action(name, input_model(file.connector, name, op), op.description, op.is_idempotent)
        for name, op in file.operations.items()
    }
    namespace = {
        "kind": file.connector,
        "Config": settings_model(file),
        "actions": actions,
        "file": file,
        "raw": raw,
        "__doc__": file.description or file.title or f"The declared connector {file.connector}.",
    }
    return type(f"Declared_{file.connector}", (DeclaredConnector,), namespace)
