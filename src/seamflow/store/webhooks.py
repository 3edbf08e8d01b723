"""Signatures of accepted webhooks, kept for their timestamp's tolerance so a replay is refused.

A signed webhook with a timestamp is valid for a few minutes; within them, the same request
sent again would verify again. `remember_webhook_signature` inserts the signature's digest for
the flow or finds it there already, in one write, so two processes receiving the same replay
at once accept it only once.
"""

from __future__ import annotations

from datetime import datetime

from seamflow import clock
from seamflow.store.rows import Conn, Rows, to_ms

__all__ = ["WebhookOps"]

_PRUNE_EVERY = 500
"""Expired signatures are deleted on every this many remembered ones."""


class WebhookOps(Rows):
    """Replay protection for signed webhooks; see the module docstring."""

    _remembered = 0

    async def remember_webhook_signature(self, flow_id: str, digest: str, until: datetime) -> bool:
        """Keep `digest` for `flow_id` until `until`; False if it was kept already (a replay)."""
        self._remembered += 1
        is_pruning = self._remembered % _PRUNE_EVERY == 1

        def unit(conn: Conn) -> bool:
            now_ms = to_ms(clock.now())
            if is_pruning:
                self._x(conn, "DELETE FROM webhook_signatures WHERE expires_ms < ?", (now_ms,))
            found = self._x(
                conn,
                "SELECT expires_ms FROM webhook_signatures WHERE flow_id = ? AND digest = ?",
                (flow_id, digest),
            ).fetchone()
            if found is not None and int(found[0]) >= now_ms:
                return False
            self._x(
                conn,
                "INSERT INTO webhook_signatures (flow_id, digest, expires_ms) VALUES (?, ?, ?)"
                " ON CONFLICT (flow_id, digest) DO UPDATE SET expires_ms = excluded.expires_ms",
                (flow_id, digest, to_ms(until)),
            )
            return True

        return await self._write(unit)
