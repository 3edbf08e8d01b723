"""Webhook subscribers, their deliveries, and the event feed, as REST resources.

Subscribers come from `CRM_WEBHOOK_URL` (comma-separated, `source: env`, registered at start)
or from `POST /webhooks`. The feed `GET /events?after=<seq>` serves the same events for a
system that prefers to poll.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from seamflow_crm.database import Database, Transaction, format_time, utc_now
from seamflow_crm.idempotency import Answer, ChangeDep
from seamflow_crm.problems import Conflict, NotFound, problem_responses
from seamflow_crm.schemas import DeliveryList, EventPage, Subscription, SubscriptionCreate, SubscriptionList

__all__ = ["register_env_subscribers", "router"]

router = APIRouter(tags=["webhooks"])


def register_env_subscribers(db: Database, urls: Sequence[str]) -> None:
    """Make the configured URLs the active `env` subscribers (and retire env subscribers no longer configured)."""
    with db.write() as tx:
        tx.conn.execute("UPDATE webhook_subscriptions SET is_active = 0 WHERE source = 'env'")
        for url in urls:
            tx.conn.execute(
                "INSERT INTO webhook_subscriptions (url, source, created_at) VALUES (?, 'env', ?)"
                " ON CONFLICT (url) DO UPDATE SET is_active = 1",
                (url, tx.timestamp),
            )


def _subscription_json(row: sqlite3.Row) -> dict[str, object]:
    record = {**dict(row), "events": json.loads(row["events"]), "has_own_secret": row["secret"] is not None}
    return Subscription.model_validate(record).model_dump(mode="json")


@router.get("/webhooks", response_model=SubscriptionList, responses=problem_responses(401))
def list_webhooks(request: Request) -> dict[str, object]:
    """Every webhook subscriber (secrets are never shown)."""
    with request.app.state.db.read() as conn:
        rows = conn.execute("SELECT * FROM webhook_subscriptions ORDER BY id").fetchall()
    return {"items": [_subscription_json(row) for row in rows]}


@router.post("/webhooks", status_code=201, response_model=Subscription, responses=problem_responses(401, 409, 422))
def create_webhook(body: SubscriptionCreate, change: ChangeDep) -> Response:
    """Subscribe a URL to events from now on."""

    def make(tx: Transaction) -> Answer:
        if tx.conn.execute("SELECT 1 FROM webhook_subscriptions WHERE url = ?", (body.url,)).fetchone():
            raise Conflict.field("url", "this URL is already subscribed")
        cursor = tx.conn.execute(
            "INSERT INTO webhook_subscriptions (url, events, secret, created_at) VALUES (?, ?, ?, ?)",
            (body.url, json.dumps(body.events), body.secret, tx.timestamp),
        )
        row = tx.conn.execute("SELECT * FROM webhook_subscriptions WHERE id = ?", (cursor.lastrowid,)).fetchone()
        data = _subscription_json(row)
        return Answer(201, data, f"/webhooks/{data['id']}")

    # The fingerprint is stored with the idempotency key, so the secret stays out of it.
    return change.run(make, request_body=body.model_dump(mode="json", exclude={"secret"}))


@router.delete(
    "/webhooks/{subscription_id}", status_code=204, response_class=Response, responses=problem_responses(401, 404)
)
def delete_webhook(subscription_id: int, change: ChangeDep) -> Response:
    """Unsubscribe; its pending deliveries are dropped."""

    def make(tx: Transaction) -> Answer:
        cursor = tx.conn.execute("DELETE FROM webhook_subscriptions WHERE id = ?", (subscription_id,))
        if cursor.rowcount == 0:
            raise NotFound(f"webhook subscriber {subscription_id} does not exist")
        return Answer(204, None)

    return change.run(make)


@router.get("/webhooks/deliveries", response_model=DeliveryList, responses=problem_responses(401, 422))
def list_deliveries(
    request: Request,
    status: Annotated[str | None, Query(pattern="^(pending|delivered|failed)$")] = None,
    event_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, object]:
    """Webhook deliveries, newest first: what was sent where, how often, and the last error."""
    where, params = "1 = 1", list[object]()
    if status is not None:
        where, params = where + " AND d.status = ?", [*params, status]
    if event_id is not None:
        where, params = where + " AND e.id = ?", [*params, event_id]
    with request.app.state.db.read() as conn:
        rows = conn.execute(
            "SELECT d.*, e.id AS event_id, e.type AS event, s.url FROM webhook_deliveries d"  # noqa: S608
            " JOIN events e ON e.seq = d.event_seq JOIN webhook_subscriptions s ON s.id = d.subscription_id"
            f" WHERE {where} ORDER BY d.id DESC LIMIT ?",  # the WHERE clause is built from constants
            [*params, limit],
        ).fetchall()
    return {"items": [dict(row) for row in rows]}


@router.post("/webhooks/deliveries/{delivery_id}/redeliver", status_code=202, responses=problem_responses(401, 404))
def redeliver_webhook(delivery_id: int, change: ChangeDep) -> Response:
    """Send a delivery again now (a failed one, or a delivered one a subscriber lost)."""

    def make(tx: Transaction) -> Answer:
        cursor = tx.conn.execute(
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = ? WHERE id = ?",
            (format_time(utc_now()), delivery_id),
        )
        if cursor.rowcount == 0:
            raise NotFound(f"webhook delivery {delivery_id} does not exist")
        tx.emitted += 1  # wakes the dispatcher
        return Answer(202, {"id": delivery_id, "status": "pending"})

    return change.run(make)


@router.get("/events", response_model=EventPage, responses=problem_responses(401, 422))
def list_events(
    request: Request,
    after: Annotated[int, Query(ge=0, description="Return events after this sequence number (`next_after`)")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """The change feed: events in the order they happened, exactly as webhooks deliver them."""
    with request.app.state.db.read() as conn:
        rows = conn.execute("SELECT seq, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit))
        events = rows.fetchall()
    next_after = events[-1]["seq"] if events else after
    # The stored text is served as is, so the feed and the webhooks carry identical bytes per event.
    items = ",".join(row["body"] for row in events)
    return Response(f'{{"items":[{items}],"next_after":{next_after}}}', media_type="application/json")
