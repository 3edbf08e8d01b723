"""The `openapi` connector: every operation of an OpenAPI-described REST system as an action,
its inputs checked against the document before the request is sent.

Each connection reads its document once when it opens and owns one aiohttp session with a
keep-alive pool. Answers are read and classified as the `http` connector does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import aiohttp
import yarl
from pydantic import BaseModel, ValidationError

from seamflow import errors, redact
from seamflow.connectors.base import Action, Batch, Connection, Feed, field_problems, parse_config
from seamflow.connectors.http.oauth2 import OAuth2SignIn, PendingAuthorization
from seamflow.connectors.http.pinning import GuardedConnector
from seamflow.connectors.http.response import read_answer, sending_failed, timed_out
from seamflow.connectors.openapi.actions import OPEN_ACTIONS, operation_actions, unknown_operation
from seamflow.connectors.openapi.auth import Authenticator, SignInSettings
from seamflow.connectors.openapi.config import OpenApiConfig
from seamflow.connectors.openapi.document import Document, Operation
from seamflow.connectors.openapi.feed import FEEDS, ListFeedInput, select
from seamflow.connectors.openapi.paging import Page, Paginate, collect, items_of
from seamflow.connectors.openapi.request import Request, build_request
from seamflow.connectors.openapi.schemas import InputCheck, invalid_input
from seamflow.connectors.openapi.servers import base_url
from seamflow.connectors.openapi.source import read_document, read_local_document
from seamflow.connectors.tokens import Token
from seamflow.ids import Json

__all__ = ["OpenApiConnector"]

log = logging.getLogger("seamflow.connectors.openapi")

_KEEPALIVE_S = 4.0
"""Below the 5 s after which many servers close an idle connection (as the `http` connector)."""


class OpenApiConnector:
    """Calls a REST system described by an OpenAPI 3.0/3.1 document: one action per operation, and `call`.

    A step's inputs are the operation's parameters by name, `body`, and optionally
    `paginate`. They are checked against the document's schemas before anything is sent;
    a bad input is `errors.Permanent` with code `connector.invalid_input`. Every request
    carries the step's idempotency key as `Idempotency-Key`. A call returns `{"status",
    "headers", "body"}`, or with `paginate` `{"items", "pages", "has_more"}`.
    """

    kind: ClassVar[str] = "openapi"
    Config: ClassVar[type[BaseModel]] = OpenApiConfig
    actions: ClassVar[Mapping[str, Action]] = OPEN_ACTIONS
    feeds: ClassVar[Mapping[str, Feed]] = FEEDS

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._name = "openapi"
        self._document: Document | None = None
        self._base = yarl.URL()
        self._auth: Authenticator | None = None
        self._checks: dict[str, InputCheck] = {}
        self._timeout_s = 0.0
        self._max_bytes = 0
        self._check_operation: str | None = None
        self._later: tuple[OpenApiConfig, Connection] | None = None
        """The document to read at the first call: its URL did not answer when the connection opened."""
        self._reading = asyncio.Lock()
        self._authorizing: OAuth2SignIn | None = None

    @classmethod
    def actions_of(cls, name: str, config: Mapping[str, Json], root: Path) -> Mapping[str, Action] | None:
        """The exact actions of a connection whose document is a local file, for `flow validate`.

        Each action's input model checks literal inputs against the operation's schemas
        (`literal_problems`); `call` also checks a literal `operation`. None when the document
        is a URL (validation does not use the network) or a template.

        Raises:
            errors.InvalidInput: `connection.invalid`: the file cannot be read or is not a valid document.
        """
        source = config.get("document")
        if not isinstance(source, str) or not source:
            return None
        limit = config.get("document_max_bytes")
        max_bytes = limit if isinstance(limit, int) else OpenApiConfig.model_fields["document_max_bytes"].default
        document = read_local_document(source, root, max_bytes=max_bytes, connection=name)
        return None if document is None else operation_actions(document)

    async def open(self, connection: Connection) -> None:
        """Validate the config, read the document (fetched if it is a URL) and open the session.

        Once open, the instance's `actions` are exactly the document's operations and `call`.
        A document URL that does not answer, with no copy kept from an earlier fetch, does not
        stop the connection from opening: the document is read at the first call (which fails
        as `errors.Transient` while the system is away), so a process starts while a system is down.

        Raises:
            errors.InvalidInput: `connection.invalid`: the config, the document or the credentials are wrong.
        """
        config = parse_config(OpenApiConfig, connection)
        await self.close()  # opening again replaces the session
        self._name = connection.name
        self._timeout_s = connection.timeout.total_seconds()
        self._max_bytes = config.response_max_bytes
        self._session = _open_session(config, connection)
        self._later = None
        try:
            await self._read_document(config, connection)
        except errors.Transient as exc:
            log.info("%s; the document is read at the first call", redact.mask_text(exc.message))
            self._later = (config, connection)
        except BaseException:
            await self.close()
            raise

    async def _read_document(self, config: OpenApiConfig, connection: Connection) -> None:
        assert self._session is not None
        document, url = await read_document(
            config.document,
            self._session,
            max_bytes=config.document_max_bytes,
            connection=connection.name,
            keep_in=connection.state_dir,
        )
        self._base = base_url(config, document, url, connection.name)
        settings = SignInSettings(connection.name, self._timeout_s, connection.tokens)
        auth = Authenticator(document, config.auth, settings)
        await auth.open_sign_ins(self._session, self._base)
        self._auth = auth
        if config.check_operation is not None and document.find(config.check_operation) is None:
            raise errors.InvalidInput(
                f"connection {connection.name!r}: check_operation {config.check_operation!r} is not an "
                f"operation of {document.source}",
                code="connection.invalid",
            )
        self._document, self._checks = document, {}
        self._check_operation = config.check_operation
        # The class's `actions` answer any name (validation cannot read the document); an open
        # connection knows its operations, so the instance shadows them with the exact list.
        vars(self)["actions"] = operation_actions(document)

    async def _ready(self, where: str) -> None:
        """Read the document now if it could not be read when the connection opened (one reader at a time).

        Raises:
            errors.Transient: the document's URL still does not answer.
            errors.Permanent: the document is wrong (a 4xx answer, a broken document).
        """
        if self._later is None:
            return
        async with self._reading:
            if self._later is not None:
                try:
                    await self._read_document(*self._later)
                except errors.InvalidInput as exc:
                    raise errors.Permanent(exc.message, where=where) from None
                self._later = None

    async def close(self) -> None:
        """Close the connection's session and its sockets."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def begin_authorization(self, redirect_uri: str) -> PendingAuthorization:
        """Start the authorization code grant of the document's oauth2/openIdConnect scheme (`connections authorize`).

        The consent URL, token URL and scopes come from the document; the client from `auth:`.

        Raises:
            errors.InvalidInput: `connection.invalid`: the document is not read yet, or no scheme
                with credentials uses the authorization code flow.
        """
        if self._auth is None or self._later is not None:
            raise errors.InvalidInput(
                f"connection {self._name!r}: its OpenAPI document could not be read; expected it to answer"
                " before authorizing",
                code="connection.invalid",
            )
        self._authorizing, pending = self._auth.authorization(redirect_uri)
        return pending

    async def finish_authorization(self, pending: PendingAuthorization, redirected: str) -> None:
        """Check the redirect URL, exchange its code and store the tokens (see `http.oauth2`)."""
        assert self._authorizing is not None and self._session is not None  # begin_authorization ran
        await self._authorizing.finish(self._session, pending, redirected)

    def callable_actions(self) -> list[str]:
        """The actions whose security requirement the connection's credentials satisfy."""
        document, _ = self._opened(f"{self._name}.actions")
        assert self._auth is not None
        return [name for name, operation in document.operations.items() if self._auth.is_callable(operation)]

    async def call(self, action: str, params: Json, *, idempotency_key: str) -> Json:
        """Call one operation: `action` is its action name, or `call` with `operation:` among the inputs.

        Raises:
            errors.Permanent: an unknown operation, inputs that break the document (`connector.invalid_input`,
                before any request), missing credentials, 4xx other than 429, a body that cannot be read.
            errors.Transient: timeout, connection failure, 429 or 5xx (`retry_after` from `Retry-After`).
        """
        where = f"{self._name}.{action}"
        await self._ready(where)
        operation, inputs = self._operation_of(action, params, where)
        raw_paginate = inputs.pop("paginate", None)
        paginate = _paginate(raw_paginate, where) if raw_paginate is not None else None
        inputs = self._checked(operation, inputs, where)
        if paginate is None:
            return await self._exchange(operation, inputs, idempotency_key, Page({}), where)

        async def fetch(page: Page, number: int) -> dict[str, Json]:
            key = idempotency_key if number == 1 else f"{idempotency_key}:{number}"
            return await self._exchange(operation, inputs, key, page, where)

        return await collect(paginate, fetch, where)

    async def poll(self, feed: str, params: Json, cursor: Json, *, limit: int) -> Batch:
        """The `list` feed: items of a listing operation newer than `cursor`, at most `limit`.

        Raises:
            errors.Permanent: unknown feed or operation, bad settings, items without the key or cursor field.
            errors.Transient: the listing could not be read now.
        """
        where = f"{self._name}.{feed}"
        if feed not in FEEDS:
            raise errors.Permanent(
                f"unknown feed {errors.redact(feed)}; expected one of {', '.join(FEEDS)}", where=where
            )
        try:
            settings = ListFeedInput.model_validate(params)
        except ValidationError as exc:
            problems = "; ".join(map(str, field_problems(exc, "with")))
            raise errors.Permanent(f"invalid feed settings: {problems}", where=where) from None
        await self._ready(where)
        operation = self._find(settings.operation, where)
        inputs = dict(settings.params)
        if settings.since_param is not None and isinstance(cursor, dict) and cursor.get("value") is not None:
            inputs[settings.since_param] = cursor["value"]
        inputs = self._checked(operation, inputs, where)
        key = f"{self._name}:{feed}:{settings.operation}"
        if settings.paginate is None:
            answer = await self._exchange(operation, inputs, key, Page({}), where)
            found, has_more = items_of(answer.get("body"), settings.items, where), False
        else:
            paginate = settings.paginate
            if paginate.items is None:
                paginate = paginate.model_copy(update={"items": settings.items})

            async def fetch(page: Page, number: int) -> dict[str, Json]:
                return await self._exchange(operation, inputs, f"{key}:{number}", page, where)

            listing = await collect(paginate, fetch, where)
            items, has_more = listing["items"], listing["has_more"] is True
            assert isinstance(items, list)
            found = items
        batch = select(settings, found, cursor, limit, where)
        batch.more = batch.more or (has_more and bool(batch.items))  # no items: waiting beats spinning
        return batch

    async def check(self) -> str:
        """Prove the document loaded and the API answers; with `check_operation`, that the credentials work.

        Raises:
            errors.Permanent: the API cannot be reached, or `check_operation` was refused (401/403: credentials).
            errors.Transient: the API did not answer in time.
        """
        await self._ready(f"{self._name}.check")
        document, session = self._opened(f"{self._name}.check")
        where = f"{self._name}.check"
        status = await self._reach(session, self._base, where)
        line = (
            f"OpenAPI document {document.title!r} ({document.version}, {len(document.operations)} operations); "
            f"{_shown(self._base)} answered HTTP {status}"
        )
        if self._check_operation is None:
            return line
        operation = self._find(self._check_operation, where)
        request = await self._build(operation, self._checked(operation, {}, where), "seamflow-check", Page({}), where)
        status = await self._reach(session, request.url, where, request)
        if status in (401, 403):
            raise errors.Permanent(
                f"credentials refused: {operation.operation_id} answered HTTP {status} ({_shown(request.url)})",
                where=where,
            )
        if status >= 400:
            raise errors.Permanent(
                f"{operation.operation_id} answered HTTP {status} ({_shown(request.url)})", where=where
            )
        return f"{line}; {operation.operation_id} answered HTTP {status}"

    def _opened(self, where: str) -> tuple[Document, aiohttp.ClientSession]:
        if self._document is None or self._session is None:
            raise errors.SeamflowError(f"{where}: connection not open", code="connector.closed")
        return self._document, self._session

    def _find(self, name: str, where: str) -> Operation:
        document, _ = self._opened(where)
        operation = document.find(name)
        if operation is None:
            problem, expected = unknown_operation(document, name)
            raise errors.Permanent(f"{problem}; expected {expected}", where=where, code="connector.invalid_input")
        return operation

    def _operation_of(self, action: str, params: Json, where: str) -> tuple[Operation, dict[str, Json]]:
        if not isinstance(params, dict):
            raise invalid_input([f"inputs: got {errors.redact(params)}, expected a mapping"], where)
        inputs = dict(params)
        if action != "call":
            return self._find(action, where), inputs
        name = inputs.pop("operation", None)
        if not isinstance(name, str) or not name:
            raise invalid_input([f"operation: got {errors.redact(name)}; expected an operationId"], where)
        return self._find(name, where), inputs

    def _checked(self, operation: Operation, inputs: dict[str, Json], where: str) -> dict[str, Json]:
        document, _ = self._opened(where)
        check = self._checks.get(operation.action)
        if check is None:
            check = self._checks[operation.action] = InputCheck(document, operation, where)
        inputs = check.coerce(inputs)
        check.check(inputs, where)
        return inputs

    async def _build(
        self,
        operation: Operation,
        inputs: dict[str, Json],
        key: str,
        page: Page,
        where: str,
        refused: dict[str, Token] | None = None,
    ) -> Request:
        _, session = self._opened(where)
        assert self._auth is not None
        request = build_request(operation, inputs, self._base, page, key, where)
        await self._auth.apply(operation, request.out, session, where, refused)
        return request.finish()

    async def _exchange(
        self, operation: Operation, inputs: dict[str, Json], key: str, page: Page, where: str
    ) -> dict[str, Json]:
        """Build, sign and send a request; a 401 to an access token renews it once and sends again."""
        request = await self._build(operation, inputs, key, page, where)
        if not request.tokens:
            return await self._send(request, where)
        try:
            return await self._send(request, where, is_signed_in=True)
        except _TokenRefused:
            request = await self._build(operation, inputs, key, page, where, refused=request.tokens)
        try:
            return await self._send(request, where, is_signed_in=True)
        except _TokenRefused:
            raise errors.Permanent(
                "the API refused the access token right after it was renewed (HTTP 401); expected the renewed"
                " token to be accepted (do the scopes cover this operation?)",
                where=where,
                code="connector.token_refused",
            ) from None

    async def _send(self, request: Request, where: str, *, is_signed_in: bool = False) -> dict[str, Json]:
        _, session = self._opened(where)
        try:
            async with session.request(
                request.method, request.url, headers=request.headers, data=request.body, allow_redirects=False
            ) as response:
                if is_signed_in and response.status == 401:
                    raise _TokenRefused
                answer = await read_answer(response, None, self._max_bytes, where)
        except TimeoutError as exc:
            raise timed_out(request.method, request.url, exc, self._timeout_s, where) from exc
        except aiohttp.ClientConnectionError as exc:
            raise sending_failed(request.method, request.url, exc, where) from exc
        except (aiohttp.ClientError, ValueError, TypeError) as exc:
            raise sending_failed(request.method, request.url, exc, where) from None  # its repr holds headers
        assert isinstance(answer, dict)
        return answer

    async def _reach(
        self, session: aiohttp.ClientSession, url: yarl.URL, where: str, request: Request | None = None
    ) -> int:
        """The status `url` answers with; any status proves it is reachable."""
        method = request.method if request is not None else "GET"
        try:
            async with session.request(
                method,
                request.url if request is not None else url,
                headers=request.headers if request is not None else None,
                data=request.body if request is not None else None,
                allow_redirects=False,
            ) as response:
                return response.status
        except TimeoutError:
            raise errors.Transient(f"{_shown(url)} did not answer within {self._timeout_s:g}s", where=where) from None
        except aiohttp.ClientError as exc:
            reason = f"{type(exc).__name__}: {errors.redact(str(exc), limit=200)}"
            raise errors.Permanent(f"cannot reach {_shown(url)}: {reason}", where=where) from None


class _TokenRefused(Exception):
    """The API answered 401 to a request carrying an access token: renew it and send again."""


def _paginate(raw: Json, where: str) -> Paginate:
    try:
        return Paginate.model_validate(raw)
    except ValidationError as exc:
        problems = [str(p) for p in field_problems(exc, "paginate")]
        raise invalid_input(problems, where) from None


def _shown(url: yarl.URL) -> str:
    """The URL without query (it may carry an API key) and without user or password."""
    return redact.mask_text(f"{url.origin()}{url.path}")


def _open_session(config: OpenApiConfig, connection: Connection) -> aiohttp.ClientSession:
    """One keep-alive pool of `max_connections` sockets, guarded, bound to the running event loop."""
    return aiohttp.ClientSession(
        connector=GuardedConnector(
            connection.outbound,
            connection.name,
            limit=config.max_connections,
            keepalive_timeout=_KEEPALIVE_S,
            ssl=config.verify_tls,
        ),
        headers={"User-Agent": "seamflow", **config.headers},
        timeout=aiohttp.ClientTimeout(total=connection.timeout.total_seconds()),
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
        raise_for_status=False,
    )
