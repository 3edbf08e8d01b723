"""The `seamflow_idempotency` table: a write runs once per idempotency key.

Each write action runs in one transaction that first inserts its key into this table
and at the end stores its result there. A retried step (same key) finds the key and
gets the stored result without touching the data again. Two attempts racing with the
same key meet at the key's primary key: the second waits, fails to insert, and then
reads the first one's result.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from datetime import UTC

import sqlalchemy
from sqlalchemy import TIMESTAMP, Column, MetaData, String, Table, Text, insert, select, update
from sqlalchemy.dialects import mysql

from seamflow import clock, codec
from seamflow.ids import Json

__all__ = ["TABLE", "Ledger"]

_KEY_CHARS = 200

TABLE = Table(
    "seamflow_idempotency",
    MetaData(),
    Column("key", String(_KEY_CHARS), primary_key=True),
    Column("result", Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")),
    Column("created_at", TIMESTAMP(), nullable=True),
)


class Ledger:
    """The idempotency table of one connection's database."""

    def __init__(self, engine: sqlalchemy.Engine) -> None:
        self._engine = engine
        self._has_table = False
        self._lock = threading.Lock()

    def run_once(self, idempotency_key: str, work: Callable[[sqlalchemy.Connection], Json]) -> Json:
        """Run `work` in a transaction unless `idempotency_key` already ran; return its (stored) result.

        Blocking: call from a worker thread. Driver errors propagate for the caller to classify.
        """
        self._create_table()
        key = _stored_key(idempotency_key)
        done = self._stored_result(key)
        if done is not None:
            return done
        try:
            with self._engine.begin() as conn:
                # The key goes in first: a racing attempt with the same key now waits for this transaction.
                created_at = clock.now().astimezone(UTC).replace(tzinfo=None)
                conn.execute(insert(TABLE).values(key=key, created_at=created_at))
                result = work(conn)
                conn.execute(update(TABLE).where(TABLE.c.key == key).values(result=codec.dumps_text(result)))
                return result
        except sqlalchemy.exc.IntegrityError:
            done = self._stored_result(key)
            if done is None:
                raise
            return done

    def _stored_result(self, key: str) -> Json | None:
        with self._engine.connect() as conn:
            text = conn.execute(select(TABLE.c.result).where(TABLE.c.key == key)).scalar_one_or_none()
        return None if text is None else codec.loads(text)

    def _create_table(self) -> None:
        """Create the table if missing; another process creating it meanwhile is fine."""
        if self._has_table:
            return
        with self._lock:
            if self._has_table:
                return
            try:
                TABLE.create(self._engine, checkfirst=True)
            except sqlalchemy.exc.DatabaseError:
                if not sqlalchemy.inspect(self._engine).has_table(TABLE.name):
                    raise
            self._has_table = True


def _stored_key(idempotency_key: str) -> str:
    """The key as stored: itself, or a digest when longer than the column."""
    if len(idempotency_key) <= _KEY_CHARS:
        return idempotency_key
    return "sha256:" + hashlib.sha256(idempotency_key.encode()).hexdigest()
