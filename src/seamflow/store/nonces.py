"""Nonces of OA callbacks, claimed once across the cluster: the same signed request twice is a replay.

A callback's nonce and timestamp are claimed until the end of its trigger's `max_age`; a claim of
a key held and not expired fails. Expired rows are dropped by later claims.
"""

from __future__ import annotations

from datetime import datetime

from seamflow.store.rows import Conn, Rows, to_ms

__all__ = ["NonceOps"]


class NonceOps(Rows):
    """`claim_nonce`: insert-or-take-over-if-expired, in one statement, on both backends."""

    async def claim_nonce(self, key: str, now: datetime, until: datetime) -> bool:
        """Claim `key` until `until`; False if another request holds it and it has not expired at `now`."""

        def unit(conn: Conn) -> bool:
            now_ms = to_ms(now)
            self._x(conn, "DELETE FROM oa_nonces WHERE until_ms < ?", (now_ms,))
            claimed = self._x(
                conn,
                "INSERT INTO oa_nonces (nonce_key, until_ms) VALUES (?, ?)"
                " ON CONFLICT (nonce_key) DO UPDATE SET until_ms = excluded.until_ms"
                " WHERE oa_nonces.until_ms < ?",
                (key, to_ms(until), now_ms),
            )
            return bool(claimed.rowcount == 1)

        return await self._write(unit)
