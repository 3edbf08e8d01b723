"""Delivering webhooks from the outbox: signed, retried with backoff, at least once.

Each delivery POSTs the event's stored JSON text with
`X-Signature: sha256=<hex HMAC-SHA256 of the raw body with the shared secret>` and the event id
as `Idempotency-Key` (and `X-Event-Id`), so a receiver that sees an event twice can tell. A 2xx
answer means delivered; anything else, or no answer, is retried after 1 s, 2 s, 4 s … up to
`max_delay`, and after `max_attempts` the delivery is `failed` (listed by `GET
/webhooks/deliveries`, sent again by `POST /webhooks/deliveries/{id}/redeliver`). A claimed
delivery is leased: if the process dies while sending, it is sent again once the lease ends.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from seamflow_crm.database import Database, format_time, utc_now

__all__ = ["DeliveryPolicy", "Dispatcher", "sign"]

log = logging.getLogger("seamflow_crm.webhooks")
_USER_AGENT = "seamflow-crm/0.1"


def sign(secret: str, body: bytes) -> str:
    """The `X-Signature` header value for `body`: `sha256=<hex digest>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How webhooks are sent and retried."""

    secret: str | None = None
    """The shared HMAC secret (CRM_WEBHOOK_SECRET); a subscriber may have its own. None: unsigned."""
    initial_delay: timedelta = timedelta(seconds=1)
    """Wait before the first retry; doubled after each further failure."""
    max_delay: timedelta = timedelta(minutes=10)
    """The longest wait between two attempts."""
    max_attempts: int = 30
    """Attempts before a delivery is marked failed (about four hours with the defaults)."""
    timeout: timedelta = timedelta(seconds=10)
    """How long one attempt may take."""
    batch: int = 16
    """How many deliveries are sent at once."""

    def delay_after(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed attempt."""
        delay: timedelta = self.initial_delay * 2 ** min(attempts - 1, 30)
        return min(delay, self.max_delay)


@dataclass(frozen=True, slots=True)
class _Due:
    id: int
    attempts: int
    event_id: str
    event_type: str
    body: str
    url: str
    secret: str | None


class Dispatcher:
    """Sends pending deliveries until cancelled; `wake()` (from any thread) makes it look at once."""

    def __init__(self, db: Database, policy: DeliveryPolicy) -> None:
        self._db = db
        self._policy = policy
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        db.on_events_committed.append(self.wake)

    def wake(self) -> None:
        """Deliver new events now rather than at the next poll; safe to call from request threads."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        """Deliver until cancelled."""
        self._loop = asyncio.get_running_loop()
        timeout = self._policy.timeout.total_seconds()
        async with httpx.AsyncClient(timeout=timeout, headers={"User-Agent": _USER_AGENT}) as client:
            while True:
                try:
                    wait_s = await self._deliver_due(client)
                except Exception:  # the dispatcher's boundary: log, wait, keep delivering
                    log.exception("delivering webhooks failed; trying again in a second")
                    wait_s = 1.0
                if wait_s > 0:
                    try:
                        await asyncio.wait_for(self._wake.wait(), timeout=wait_s)
                    except TimeoutError:
                        pass

    async def _deliver_due(self, client: httpx.AsyncClient) -> float:
        """Send what is due; return how long to wait for more (0: look again at once)."""
        self._wake.clear()
        due, wait_s = await asyncio.to_thread(self._claim_due)
        if not due:
            return wait_s
        async with asyncio.TaskGroup() as group:
            for delivery in due:
                group.create_task(self._deliver(client, delivery))
        return 0

    def _claim_due(self) -> tuple[list[_Due], float]:
        """Lease the deliveries that are due; also say how long until the next one is."""
        now = utc_now()
        lease_until = format_time(now + self._policy.timeout * 2)
        with self._db.write() as tx:
            rows = tx.conn.execute(
                "SELECT d.id, d.attempts, e.id AS event_id, e.type, e.body, s.url, s.secret"
                " FROM webhook_deliveries d JOIN events e ON e.seq = d.event_seq"
                " JOIN webhook_subscriptions s ON s.id = d.subscription_id"
                " WHERE d.status = 'pending' AND d.next_attempt_at <= ? ORDER BY d.next_attempt_at, d.id LIMIT ?",
                (format_time(now), self._policy.batch),
            ).fetchall()
            for row in rows:
                tx.conn.execute("UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id = ?", (lease_until, row[0]))
            upcoming = tx.conn.execute(
                "SELECT min(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending'"
            ).fetchone()[0]
        due = [_Due(row[0], row[1], row[2], row[3], row[4], row[5], row[6] or self._policy.secret) for row in rows]
        return due, _seconds_until(upcoming, now)

    async def _deliver(self, client: httpx.AsyncClient, delivery: _Due) -> None:
        body = delivery.body.encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": delivery.event_id,
            "X-Event-Id": delivery.event_id,
            "X-Event-Type": delivery.event_type,
            "X-Delivery-Attempt": str(delivery.attempts + 1),
        }
        if delivery.secret:
            headers["X-Signature"] = sign(delivery.secret, body)
        status: int | None = None
        error: str | None = None
        retry_after: timedelta | None = None
        try:
            response = await client.post(delivery.url, content=body, headers=headers)
            status = response.status_code
            if not response.is_success:
                error = f"the subscriber answered {status}"
                retry_after = _retry_after(response)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        await asyncio.to_thread(self._record_attempt, delivery, status, error, retry_after)

    def _record_attempt(
        self, delivery: _Due, status: int | None, error: str | None, retry_after: timedelta | None
    ) -> None:
        now = utc_now()
        attempts = delivery.attempts + 1
        with self._db.write() as tx:
            if error is None:
                tx.conn.execute(
                    "UPDATE webhook_deliveries SET status = 'delivered', attempts = ?, last_status = ?,"
                    " last_error = NULL, delivered_at = ? WHERE id = ?",
                    (attempts, status, format_time(now), delivery.id),
                )
                return
            delay = max(self._policy.delay_after(attempts), retry_after or timedelta(0))
            state = "failed" if attempts >= self._policy.max_attempts else "pending"
            tx.conn.execute(
                "UPDATE webhook_deliveries SET status = ?, attempts = ?, last_status = ?, last_error = ?,"
                " next_attempt_at = ? WHERE id = ?",
                (state, attempts, status, error, format_time(now + delay), delivery.id),
            )
        log.warning("webhook %s to %s failed (attempt %d): %s", delivery.event_id, delivery.url, attempts, error)


def _retry_after(response: httpx.Response) -> timedelta | None:
    value = response.headers.get("Retry-After", "")
    return timedelta(seconds=min(int(value), 3600)) if value.isdigit() else None


def _seconds_until(moment: str | None, now: datetime) -> float:
    """How long to sleep before the next due delivery: at most a second, so other writers are noticed."""
    if moment is None:
        return 1.0
    delta = (datetime.fromisoformat(moment) - now).total_seconds()
    return min(max(delta, 0.01), 1.0)
