"""The CRM's SQLite database: schema, connections and write transactions.

Every change is one `BEGIN IMMEDIATE` transaction that also writes its outgoing events to the
outbox, so a change and its webhook are committed together or not at all. SQLite allows one
writer at a time, which also makes `updated_at` grow in commit order (what `updated_since`
polling relies on).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["Database", "Transaction", "format_time", "utc_now"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    phone TEXT,
    email TEXT,
    tax_id TEXT UNIQUE,
    address TEXT,
    credit_limit TEXT NOT NULL DEFAULT '0.00',
    status TEXT NOT NULL DEFAULT 'active',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS customers_updated ON customers (updated_at, id);

CREATE TABLE IF NOT EXISTS contacts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    title TEXT,
    phone TEXT,
    email TEXT,
    is_primary INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS contacts_customer ON contacts (customer_id, id);

CREATE TABLE IF NOT EXISTS opportunities (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    title TEXT NOT NULL,
    stage TEXT NOT NULL,
    amount TEXT NOT NULL DEFAULT '0.00',
    expected_close_date TEXT,
    owner TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS opportunities_updated ON opportunities (updated_at, id);

CREATE TABLE IF NOT EXISTS contracts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    number TEXT NOT NULL UNIQUE,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    opportunity_id INTEGER REFERENCES opportunities (id),
    title TEXT,
    lines TEXT NOT NULL,
    amount TEXT NOT NULL,
    currency TEXT NOT NULL DEFAULT 'CNY',
    status TEXT NOT NULL DEFAULT 'draft',
    signed_at TEXT,
    cancelled_at TEXT,
    erp_order_no TEXT,
    payment_status TEXT NOT NULL DEFAULT 'unpaid',
    amount_received TEXT NOT NULL DEFAULT '0.00',
    shipping_status TEXT NOT NULL DEFAULT 'not_shipped',
    tracking_no TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS contracts_updated ON contracts (updated_at, id);

CREATE TABLE IF NOT EXISTS contract_numbers (
    year INTEGER PRIMARY KEY,
    last INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS idempotency_keys (
    key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    location TEXT,
    created_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    body TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS webhook_subscriptions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    url TEXT NOT NULL UNIQUE,
    events TEXT NOT NULL DEFAULT '["*"]',
    secret TEXT,
    source TEXT NOT NULL DEFAULT 'api',
    is_active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_seq INTEGER NOT NULL REFERENCES events (seq),
    subscription_id INTEGER NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_status INTEGER,
    last_error TEXT,
    delivered_at TEXT
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at, id);
"""


def utc_now() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """A timestamp as stored and served: UTC, microseconds, fixed width, so text order is time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(slots=True)
class Transaction:
    """One open write transaction, with the time and origin every change in it is stamped with."""

    conn: sqlite3.Connection
    now: datetime
    origin: str | None
    """The `X-Origin` header of the request that caused the change; echoed in its events."""
    emitted: int = 0
    """How many events this transaction wrote to the outbox."""

    @property
    def timestamp(self) -> str:
        """`now` as stored."""
        return format_time(self.now)


@dataclass(slots=True)
class Database:
    """A SQLite file; a connection is opened per unit of work (they are cheap, and thread-safe that way)."""

    path: Path
    on_events_committed: list[Callable[[], None]] = field(default_factory=list)
    """Called after a transaction that emitted events commits (wakes the webhook dispatcher)."""

    def create_schema(self) -> None:
        """Create the tables if they do not exist yet, and switch the file to WAL."""
        with contextlib.closing(self._connect()) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A connection for reads (each statement sees a committed snapshot)."""
        with contextlib.closing(self._connect()) as conn:
            yield conn

    @contextlib.contextmanager
    def write(self, *, origin: str | None = None) -> Iterator[Transaction]:
        """A write transaction: committed when the block ends, rolled back if it raises."""
        with contextlib.closing(self._connect()) as conn:
            conn.execute("BEGIN IMMEDIATE")
            tx = Transaction(conn, utc_now(), origin)
            try:
                yield tx
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        if tx.emitted:
            for callback in self.on_events_committed:
                callback()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys=ON")
        # FULL: a committed change (and its outbox row) survives a power loss, not only a crash.
        conn.execute("PRAGMA synchronous=FULL")
        return conn
