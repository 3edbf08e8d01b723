"""The outbox: every change writes its event here, in the change's own transaction.

An event is stored once, as the exact JSON text that webhooks deliver and sign, together with
one pending delivery per subscriber that wants its type. The dispatcher (`webhooks.py`) sends
the deliveries later, so a change is never lost when a subscriber is down, and never sent for
a change that was rolled back.
"""

from __future__ import annotations

import json
import uuid

from seamflow_crm.database import Transaction

__all__ = ["record_event", "wants"]


def record_event(tx: Transaction, event_type: str, data: dict[str, object]) -> str:
    """Write the event `event_type` about `data` (the full record) and its deliveries; return its id."""
    event_id = f"evt_{uuid.uuid4().hex}"
    body = {
        "event": event_type,
        "id": event_id,
        "occurred_at": tx.timestamp,
        "data": data,
        "origin": tx.origin,
    }
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    cursor = tx.conn.execute(
        "INSERT INTO events (id, type, occurred_at, body) VALUES (?, ?, ?, ?)",
        (event_id, event_type, tx.timestamp, text),
    )
    seq = cursor.lastrowid
    subscriptions = tx.conn.execute("SELECT id, events FROM webhook_subscriptions WHERE is_active = 1").fetchall()
    for subscription in subscriptions:
        if wants(json.loads(subscription["events"]), event_type):
            tx.conn.execute(
                "INSERT INTO webhook_deliveries (event_seq, subscription_id, next_attempt_at) VALUES (?, ?, ?)",
                (seq, subscription["id"], tx.timestamp),
            )
    tx.emitted += 1
    return event_id


def wants(patterns: list[str], event_type: str) -> bool:
    """Whether a subscriber with these event patterns ("*", "contract.*", "contract.signed") gets the event."""
    kind = event_type.split(".", 1)[0]
    return any(pattern in ("*", event_type, f"{kind}.*") for pattern in patterns)
