"""The store's write operations, shared by both backends; each is one unit of a group commit.

Backends subclass `SqlStore` and provide the connection, the placeholder style and the
hooks that differ (claiming, wake-ups, error classification). Writes on runs go through
`transact` and a `RunTx` (`run_tx.py`): the engine's journal decides, the store persists.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

from seamflow import clock, ids
from seamflow.ids import FlowId
from seamflow.store.audit import AuditOps
from seamflow.store.authorizations import AuthorizationOps
from seamflow.store.base import FlowVersion
from seamflow.store.directory import DirectoryOps
from seamflow.store.feedback import FeedbackOps
from seamflow.store.feeds import FeedOps
from seamflow.store.grants import GrantOps
from seamflow.store.identity import IdentityOps
from seamflow.store.leases import LeaseOps
from seamflow.store.lifecycle import LifecycleOps
from seamflow.store.nonces import NonceOps
from seamflow.store.quality import QualityOps
from seamflow.store.rows import BLOB_THRESHOLD_BYTES, JOURNAL_ENTRY_LIMIT_BYTES, Conn, from_ms, to_ms
from seamflow.store.run_tx import RunTx, SqlRunTx
from seamflow.store.syncs import SyncOps
from seamflow.store.tasks import TaskOps
from seamflow.store.tokens import TokenOps
from seamflow.store.views import RunViews
from seamflow.store.webhooks import WebhookOps

T = TypeVar("T")

__all__ = ["BLOB_THRESHOLD_BYTES", "JOURNAL_ENTRY_LIMIT_BYTES", "SqlStore"]


class SqlStore(
    RunViews,
    LeaseOps,
    FeedOps,
    SyncOps,
    DirectoryOps,
    GrantOps,
    TokenOps,
    AuthorizationOps,
    TaskOps,
    NonceOps,
    AuditOps,
    WebhookOps,
    QualityOps,
    IdentityOps,
    LifecycleOps,
    FeedbackOps,
):
    """Store operations written once over a DB-API connection; see `store.Store`."""

    async def save_flow_versions(self, versions: Sequence[FlowVersion]) -> None:
        """Keep the source of each flow version (once; a version already kept is left as it is), in one commit."""

        def unit(conn: Conn) -> None:
            now = to_ms(clock.now())
            for v in versions:
                self._x(
                    conn,
                    "INSERT INTO flow_versions (flow_id, version, source, path, created_ms) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (flow_id, version) DO NOTHING",
                    (v.flow_id, v.version, v.source, v.path, now),
                )

        await self._write(unit)

    async def transact(self, unit: Callable[[RunTx], T]) -> T:
        """Run `unit` with the plain run writes of the next transaction; return its result once committed.

        The engine's journal decides what to write (`engine/journal.py`); everything `unit` does
        commits together, in one group commit, or not at all.
        """
        return await self._write(lambda conn: unit(SqlRunTx(self, conn)))

    async def upsert_schedule(self, flow_id: FlowId, spec: str, next_due: datetime) -> datetime:
        """Register a flow's schedule; keep its next tick if the spec is unchanged.

        Returns:
            The next tick that will fire.
        """

        def unit(conn: Conn) -> datetime:
            row = self._x(conn, "SELECT spec, next_ms FROM schedules WHERE flow_id = ?", (flow_id,)).fetchone()
            if row is not None and row[0] == spec:
                return from_ms(row[1])  # type: ignore[return-value]  # NOT NULL column
            self._x(
                conn,
                "INSERT INTO schedules (flow_id, spec, next_ms) VALUES (?, ?, ?)"
                " ON CONFLICT (flow_id) DO UPDATE SET spec = excluded.spec, next_ms = excluded.next_ms",
                (flow_id, spec, to_ms(next_due)),
            )
            return next_due

        return await self._write(unit)

    async def remove_schedules_except(self, flow_ids: list[str]) -> None:
        """Forget schedules of flows that no longer have a schedule trigger."""

        def unit(conn: Conn) -> None:
            for (flow_id,) in self._x(conn, "SELECT flow_id FROM schedules").fetchall():
                if flow_id not in flow_ids:
                    self._x(conn, "DELETE FROM schedules WHERE flow_id = ?", (flow_id,))

        await self._write(unit)

    async def add_api_token(self, name: str, token_hash: str) -> None:
        def unit(conn: Conn) -> None:
            self._x(
                conn,
                "INSERT INTO api_tokens (id, name, hash, created_ms) VALUES (?, ?, ?, ?)",
                (ids.new_id("tok"), name, token_hash, to_ms(clock.now())),
            )

        await self._write(unit)
