"""Idempotency-Key on changing requests: the same key gives the same answer and has one effect.

The key is looked up, the change made and the answer remembered in one write transaction, so
two concurrent requests with the same key cannot both make the change: SQLite runs them one
after the other, and the second finds the first one's answer. Only successful answers are
remembered; a request that failed may be retried with the same key. A key reused for a
different request (another method, path or body) is refused with 422.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request, Response

from seamflow_crm.database import Database, Transaction
from seamflow_crm.problems import InvalidInput

__all__ = ["Answer", "Change", "ChangeDep", "change"]


@dataclass(frozen=True, slots=True)
class Answer:
    """What a change answers: a status, a JSON body and, for a new record, its Location."""

    status: int
    body: object
    location: str | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """The parts of a request that shape a change: its idempotency key and its origin."""

    db: Database
    method: str
    path: str
    idempotency_key: str | None
    origin: str | None
    if_match: str | None

    def run(self, make: Callable[[Transaction], Answer], *, request_body: object = None) -> Response:
        """Make the change once per idempotency key and answer it (again, for a repeated key)."""
        fingerprint = _fingerprint(self.method, self.path, request_body)
        with self.db.write(origin=self.origin) as tx:
            if self.idempotency_key is not None:
                row = tx.conn.execute(
                    "SELECT fingerprint, status, body, location FROM idempotency_keys WHERE key = ?",
                    (self.idempotency_key,),
                ).fetchone()
                if row is not None:
                    if row["fingerprint"] != fingerprint:
                        raise InvalidInput.field("Idempotency-Key", "this key was already used for a different request")
                    return _response(row["status"], row["body"], row["location"], replayed=True)
            answer = make(tx)
            body = json.dumps(answer.body, ensure_ascii=False, separators=(",", ":"))
            if self.idempotency_key is not None:
                tx.conn.execute(
                    "INSERT INTO idempotency_keys (key, fingerprint, status, body, location, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (self.idempotency_key, fingerprint, answer.status, body, answer.location, tx.timestamp),
                )
        return _response(answer.status, body, answer.location, replayed=False)


def change(
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=200,
            description="Makes the request safe to retry: the same key gives the same answer and one effect",
        ),
    ] = None,
    x_origin: Annotated[
        str | None,
        Header(
            alias="X-Origin",
            max_length=200,
            description="Who caused this change; echoed as `origin` in the webhook events",
        ),
    ] = None,
    if_match: Annotated[
        str | None, Header(alias="If-Match", description='The version the change is based on, as an ETag: "3"')
    ] = None,
) -> Change:
    """FastAPI dependency: the `Change` for this request."""
    return Change(request.app.state.db, request.method, request.url.path, idempotency_key, x_origin, if_match)


ChangeDep = Annotated[Change, Depends(change)]
"""A route parameter of this type receives the request's `Change`."""


def _fingerprint(method: str, path: str, body: object) -> str:
    text = json.dumps([method, path, body], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _response(status: int, body: str, location: str | None, *, replayed: bool) -> Response:
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    if status == 204:
        return Response(status_code=204, headers=headers)
    if location:
        headers["Location"] = location
    version = json.loads(body).get("version") if body.startswith("{") else None
    if isinstance(version, int):
        headers["ETag"] = f'"{version}"'
    return Response(body, status_code=status, media_type="application/json", headers=headers)
