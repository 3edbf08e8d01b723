"""Durable state of `poll` and `consume` triggers: the cursor, which worker runs the feed, its health.

One worker of the cluster runs a flow's feed at a time (a lease like a run's, renewed by
the heartbeat). A cursor is stored only by the worker holding the feed, after the events
of its batch were accepted. When a flow's feed settings change (`spec`), the cursor starts over.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from seamflow import codec
from seamflow.ids import Json
from seamflow.store.base import FeedState
from seamflow.store.rows import Conn, Rows, from_ms, to_ms

__all__ = ["FeedOps"]

_COLUMNS = "flow_id, spec, cursor, owner, last_poll_ms, last_ok_ms, last_item_ms, failing_since_ms, last_error, items"


class FeedOps(Rows):
    """Feed cursors and health; see the module docstring."""

    async def claim_feed(
        self, flow_id: str, spec: str, worker_id: str, now: datetime, lease_until: datetime, *, start_over: bool = False
    ) -> FeedState | None:
        """Hold a flow's feed if no live worker does; return its state, or None if another worker runs it.

        With `start_over` (or when `spec` changed) the cursor and the item count start from nothing.
        """

        def unit(conn: Conn) -> FeedState | None:
            self._x(
                conn,
                "INSERT INTO feeds (flow_id, spec) VALUES (?, ?) ON CONFLICT (flow_id) DO NOTHING",
                (flow_id, spec),
            )
            row = self._x(
                conn,
                "SELECT spec, owner, lease_until_ms FROM feeds WHERE flow_id = ?" + self._SKIP_LOCKED,  # noqa: S608
                (flow_id,),
            ).fetchone()
            if row is None or (row[1] not in (None, worker_id) and row[2] >= to_ms(now)):
                return None
            if start_over or row[0] != spec:  # the trigger's settings changed: a new feed, from its start
                self._x(
                    conn,
                    "UPDATE feeds SET spec = ?, cursor = NULL, items = 0, last_item_ms = NULL WHERE flow_id = ?",
                    (spec, flow_id),
                )
            self._x(
                conn,
                "UPDATE feeds SET owner = ?, lease_until_ms = ? WHERE flow_id = ?",
                (worker_id, to_ms(lease_until), flow_id),
            )
            return self._feed(conn, flow_id)

        return await self._write(unit)

    async def save_feed_progress(
        self, flow_id: str, worker_id: str, cursor: Json, items: int, last_item: datetime | None, now: datetime
    ) -> bool:
        """Store the cursor after a batch's events were accepted; False if this worker no longer holds the feed."""

        def unit(conn: Conn) -> bool:
            cur = self._x(
                conn,
                "UPDATE feeds SET cursor = ?, items = items + ?, last_item_ms = COALESCE(?, last_item_ms),"
                " last_poll_ms = ?, last_ok_ms = ?, failing_since_ms = NULL, last_error = NULL"
                " WHERE flow_id = ? AND owner = ?",
                (
                    codec.dumps(cursor),
                    items,
                    None if last_item is None else to_ms(last_item),
                    to_ms(now),
                    to_ms(now),
                    flow_id,
                    worker_id,
                ),
            )
            return bool(cur.rowcount == 1)

        return await self._write(unit)

    async def feed_failed(self, flow_id: str, worker_id: str, error: str, now: datetime) -> None:
        """Record a failed poll (the cursor stays); `failing_since` keeps the first failure's time."""

        def unit(conn: Conn) -> None:
            self._x(
                conn,
                "UPDATE feeds SET last_poll_ms = ?, last_error = ?, failing_since_ms = COALESCE(failing_since_ms, ?)"
                " WHERE flow_id = ? AND owner = ?",
                (to_ms(now), error[:2000], to_ms(now), flow_id, worker_id),
            )

        await self._write(unit)

    async def list_feeds(self) -> list[FeedState]:
        """Every feed's cursor and health."""

        def read(conn: Conn) -> list[FeedState]:
            rows = self._x(conn, "SELECT " + _COLUMNS + " FROM feeds ORDER BY flow_id").fetchall()  # noqa: S608
            return [self._feed_row(conn, row) for row in rows]

        return await self._read(read)

    def _feed(self, conn: Conn, flow_id: str) -> FeedState:
        row = self._x(conn, "SELECT " + _COLUMNS + " FROM feeds WHERE flow_id = ?", (flow_id,)).fetchone()  # noqa: S608
        return self._feed_row(conn, row)

    @staticmethod
    def _feed_row(conn: Conn, row: Any) -> FeedState:
        cursor = row[2]
        return FeedState(
            flow_id=str(row[0]),
            spec=str(row[1]),
            cursor=None if cursor is None else codec.loads(bytes(cursor)),
            owner=None if row[3] is None else str(row[3]),
            last_poll=from_ms(row[4]),
            last_ok=from_ms(row[5]),
            last_item=from_ms(row[6]),
            failing_since=from_ms(row[7]),
            last_error=None if row[8] is None else str(row[8]),
            items=int(row[9]),
        )
