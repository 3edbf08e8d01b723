"""`POST /api/v1/tasks/{task_id}/decision`, answered outside FastAPI's routing, middleware and dependencies.

Approvers decide in bursts (the target is 1,000 decisions a second), and FastAPI's layers were a
quarter of a decision's cost, so the server answers this route directly, as it does webhooks.
It runs what the FastAPI route ran, in the same order, with the same answers: the body is read
(malformed JSON is a 400 before credentials are looked at), then credentials and access
(`api.access.authorize`: the approve scope on the task's flow, CSRF for a session), then the
body's fields (`tasks.DecisionBody`), then the decision itself (`tasks.apply_decision`).
`tests/acceptance/test_decision_answers.py` pins those answers.
"""

from __future__ import annotations

import email.message
import json
import logging
import re
from typing import Final

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from seamflow import engine, errors
from seamflow.api import access
from seamflow.api.problems import problem, problem_from_error
from seamflow.api.tasks import DecisionBody, apply_decision

__all__ = ["DECISION_TEMPLATE", "DecisionRoute"]

log = logging.getLogger("seamflow.api")

DECISION_TEMPLATE: Final = "/api/v1/tasks/{task_id}/decision"
_PATH = re.compile(r"/api/v1/tasks/([^/]+)/decision")  # a path parameter matches as Starlette's `str` does
_NO_BODY: Final = object()


class DecisionRoute:
    """The decision route of one app: the engine it decides with and the app's known admin tokens."""

    def __init__(self, eng: engine.Engine, known_tokens: set[str]) -> None:
        self._engine = eng
        self._known_tokens = known_tokens

    @staticmethod
    def task_id_of(scope: Scope) -> str | None:
        """The task id if `scope` is a decision (`POST` on the route's path); None for anything else."""
        if scope["type"] != "http" or scope["method"] != "POST":
            return None
        found = _PATH.fullmatch(scope["path"])
        return found.group(1) if found else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a decision request (one that `task_id_of` recognised)."""
        task_id = self.task_id_of(scope)
        assert task_id is not None  # the app sends only decisions here
        scope["path_params"] = {"task_id": task_id}
        request = Request(scope, receive)
        try:
            response = await self._answer(request, task_id)
        except errors.SeamflowError as exc:
            response = problem_from_error(exc)
        except Exception:  # the server keeps serving; the failure is logged with its request path
            log.exception("decision failed", extra={"path": scope["path"]})
            response = problem(500, "internal", "an unexpected error occurred; see the server log")
        await response(scope, receive, send)

    async def _answer(self, request: Request, task_id: str) -> Response:
        try:
            body = await _body(request)
        except json.JSONDecodeError as exc:
            return problem(400, "request.invalid", f"body.{exc.pos}: JSON decode error")
        except ValueError:  # not UTF-8 (or -16, -32): as FastAPI answers it
            return problem(400, "http.400", "There was an error parsing the body")
        await access.authorize(request, self._known_tokens, self._engine, template=DECISION_TEMPLATE)
        if body is _NO_BODY:
            return problem(400, "request.invalid", "body: Field required")
        try:
            decision = DecisionBody.model_validate(body, from_attributes=True)  # as FastAPI validates a body
        except ValidationError as exc:
            details = "; ".join(f"{'.'.join(str(p) for p in ('body', *e['loc']))}: {e['msg']}" for e in exc.errors())
            return problem(400, "request.invalid", details)
        return await apply_decision(task_id, decision, request, self._engine)


async def _body(request: Request) -> object:
    """The body as FastAPI reads it for a model: JSON if it says it is JSON, else its bytes; `_NO_BODY` if empty.

    Raises:
        json.JSONDecodeError: it says it is JSON and it is not.
        ValueError: it says it is JSON and its bytes are no Unicode text.
    """
    raw = await request.body()
    if not raw:
        return _NO_BODY
    content_type = request.headers.get("content-type")
    if not content_type:
        return raw
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    if message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json")):
        return json.loads(raw)
    return raw
