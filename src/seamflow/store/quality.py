"""Durable state of data migrations (`seamflow migrate`): each migration's checkpoint and its quarantine.

The quality capability decides what a batch did; the store keeps it. A batch's checkpoint and
its quarantined rows commit in one transaction, so a crash leaves either both or neither: the
batch is then read again, its target writes (upserts by key) change nothing, and its bad rows
are quarantined once (their key is the migration and the row's number in the source).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, LiteralString

from seamflow import codec
from seamflow.ids import Json
from seamflow.store.rows import Conn, Rows, from_ms, to_ms

__all__ = ["MigrationCheckpoint", "MigrationState", "QualityOps", "QuarantinedRow"]


@dataclass(frozen=True, slots=True)
class MigrationState:
    """A row of `data_migrations`: how far a migration is and what it did, across resumed runs."""

    migration_id: str
    position: int
    """Source rows settled (loaded or quarantined); the next run starts after them."""
    loaded: int
    fixed: int
    """Loaded rows that a normaliser changed (a phone to E.164, an amount to Decimal, …)."""
    quarantined: int
    by_rule: dict[str, int]
    """Rows quarantined per broken rule (`mobile.type`: 12)."""
    owner: str | None
    started: datetime
    finished: datetime | None


@dataclass(frozen=True, slots=True)
class QuarantinedRow:
    """A source row that broke a rule, kept with what it broke."""

    row_number: int
    """The row's number among the source's data rows (1-based)."""
    row_key: str | None
    row: Json
    violations: Json
    """`[{"rule": "mobile.type", "message": "…"}]`."""
    status: str = "open"
    """`open` until the row is re-submitted and loaded (`loaded`)."""


@dataclass(frozen=True, slots=True)
class MigrationCheckpoint:
    """What one batch did, stored with the position after it."""

    position: int
    loaded: int
    fixed: int
    quarantined: Sequence[QuarantinedRow]
    by_rule: dict[str, int]
    lease_until: datetime


_COLUMNS = "migration_id, position, loaded, fixed, quarantined, by_rule, owner, started_ms, finished_ms"


class QualityOps(Rows):
    """Migration checkpoints and the quarantine; see the module docstring."""

    async def claim_migration(
        self, migration_id: str, owner: str, now: datetime, lease_until: datetime, *, start_over: bool = False
    ) -> MigrationState | None:
        """Hold a migration unless another live process does; return its state (None: held elsewhere).

        With `start_over` the checkpoint and counts start from nothing and the open quarantine is emptied.
        """

        def unit(conn: Conn) -> MigrationState | None:
            self._x(
                conn,
                "INSERT INTO data_migrations (migration_id, started_ms, updated_ms) VALUES (?, ?, ?)"
                " ON CONFLICT (migration_id) DO NOTHING",
                (migration_id, to_ms(now), to_ms(now)),
            )
            row = self._x(
                conn,
                "SELECT owner, lease_until_ms FROM data_migrations WHERE migration_id = ?"  # noqa: S608 - constants only
                + self._FOR_UPDATE,
                (migration_id,),
            ).fetchone()
            if row[0] not in (None, owner) and row[1] >= to_ms(now):
                return None
            if start_over:
                self._x(
                    conn,
                    "UPDATE data_migrations SET position = 0, loaded = 0, fixed = 0, quarantined = 0, by_rule = '{}',"
                    " finished_ms = NULL, started_ms = ? WHERE migration_id = ?",
                    (to_ms(now), migration_id),
                )
                self._x(conn, "DELETE FROM quarantine WHERE migration_id = ?", (migration_id,))
            self._x(
                conn,
                "UPDATE data_migrations SET owner = ?, lease_until_ms = ?, updated_ms = ? WHERE migration_id = ?",
                (owner, to_ms(lease_until), to_ms(now), migration_id),
            )
            return self._migration(conn, migration_id)

        return await self._write(unit)

    async def save_migration_batch(
        self, migration_id: str, owner: str, checkpoint: MigrationCheckpoint, now: datetime
    ) -> bool:
        """Store a batch's quarantined rows and the checkpoint after it, together; renew the lease.

        Returns:
            False if `owner` no longer holds the migration (nothing is stored).
        """

        def unit(conn: Conn) -> bool:
            state = self._migration(conn, migration_id)
            if state is None or state.owner != owner:
                return False
            by_rule: dict[str, Json] = dict(state.by_rule)
            for rule, count in checkpoint.by_rule.items():
                by_rule[rule] = state.by_rule.get(rule, 0) + count
            if checkpoint.quarantined:
                self._x_many(
                    conn,
                    "INSERT INTO quarantine (migration_id, row_number, row_key, row_data, violations, status,"
                    " created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, 'open', ?, ?)"
                    " ON CONFLICT (migration_id, row_number) DO NOTHING",
                    [
                        (
                            migration_id,
                            item.row_number,
                            item.row_key,
                            codec.dumps_text(item.row),
                            codec.dumps_text(item.violations),
                            to_ms(now),
                            to_ms(now),
                        )
                        for item in checkpoint.quarantined
                    ],
                )
            self._x(
                conn,
                "UPDATE data_migrations SET position = ?, loaded = loaded + ?, fixed = fixed + ?,"
                " quarantined = quarantined + ?, by_rule = ?, lease_until_ms = ?, updated_ms = ?"
                " WHERE migration_id = ? AND owner = ?",
                (
                    checkpoint.position,
                    checkpoint.loaded,
                    checkpoint.fixed,
                    len(checkpoint.quarantined),
                    codec.dumps_text(by_rule),
                    to_ms(checkpoint.lease_until),
                    to_ms(now),
                    migration_id,
                    owner,
                ),
            )
            return True

        return await self._write(unit)

    def _x_many(self, conn: Conn, sql: LiteralString, params: list[tuple[Any, ...]]) -> None:
        """One statement for many rows (psycopg pipelines them; sqlite3 steps them in C)."""
        conn.executemany(self._sql(sql), params)

    async def finish_migration(self, migration_id: str, owner: str, now: datetime) -> None:
        """Mark the migration finished (if `owner` holds it) and let it go."""

        def unit(conn: Conn) -> None:
            self._x(
                conn,
                "UPDATE data_migrations SET finished_ms = COALESCE(finished_ms, ?), owner = NULL, lease_until_ms = 0,"
                " updated_ms = ? WHERE migration_id = ? AND owner = ?",
                (to_ms(now), to_ms(now), migration_id, owner),
            )

        await self._write(unit)

    async def release_migration(self, migration_id: str, owner: str) -> None:
        """Let a stopped migration go without finishing it (a later run resumes)."""

        def unit(conn: Conn) -> None:
            self._x(
                conn,
                "UPDATE data_migrations SET owner = NULL, lease_until_ms = 0 WHERE migration_id = ? AND owner = ?",
                (migration_id, owner),
            )

        await self._write(unit)

    async def get_migration(self, migration_id: str) -> MigrationState | None:
        """The state of a migration; None if it never ran."""
        return await self._read(lambda conn: self._migration(conn, migration_id))

    async def list_quarantine(self, migration_id: str, *, status: str | None = "open") -> list[QuarantinedRow]:
        """The quarantined rows of a migration in source order (`status` None: every row)."""

        def read(conn: Conn) -> list[QuarantinedRow]:
            if status is None:
                rows = self._x(
                    conn,
                    "SELECT row_number, row_key, row_data, violations, status FROM quarantine"
                    " WHERE migration_id = ? ORDER BY row_number",
                    (migration_id,),
                ).fetchall()
            else:
                rows = self._x(
                    conn,
                    "SELECT row_number, row_key, row_data, violations, status FROM quarantine"
                    " WHERE migration_id = ? AND status = ? ORDER BY row_number",
                    (migration_id, status),
                ).fetchall()
            return [QuarantinedRow(r[0], r[1], codec.loads(r[2]), codec.loads(r[3]), r[4]) for r in rows]

        return await self._read(read)

    async def settle_quarantine(
        self, migration_id: str, loaded: Sequence[int], still_bad: Sequence[QuarantinedRow], now: datetime
    ) -> None:
        """Record a re-submission: rows now loaded (`loaded`), rows still bad with their new data and reasons.

        The migration's counts move with them: a row loaded from the quarantine counts as loaded.
        """

        def unit(conn: Conn) -> None:
            moved = 0
            for number in loaded:
                cur = self._x(
                    conn,
                    "UPDATE quarantine SET status = 'loaded', updated_ms = ?"
                    " WHERE migration_id = ? AND row_number = ? AND status = 'open'",
                    (to_ms(now), migration_id, number),
                )
                moved += cur.rowcount
            for item in still_bad:
                self._x(
                    conn,
                    "UPDATE quarantine SET row_data = ?, violations = ?, updated_ms = ?"
                    " WHERE migration_id = ? AND row_number = ?",
                    (
                        codec.dumps_text(item.row),
                        codec.dumps_text(item.violations),
                        to_ms(now),
                        migration_id,
                        item.row_number,
                    ),
                )
            self._x(
                conn,
                "UPDATE data_migrations SET loaded = loaded + ?, quarantined = quarantined - ?, updated_ms = ?"
                " WHERE migration_id = ?",
                (moved, moved, to_ms(now), migration_id),
            )

        await self._write(unit)

    def _migration(self, conn: Conn, migration_id: str) -> MigrationState | None:
        row = self._x(
            conn,
            "SELECT " + _COLUMNS + " FROM data_migrations WHERE migration_id = ?",  # noqa: S608 - constants only
            (migration_id,),
        ).fetchone()
        if row is None:
            return None
        finished = from_ms(row[8]) if row[8] is not None else None
        stored = codec.loads(row[5])
        by_rule = {str(rule): int(count) for rule, count in stored.items()} if isinstance(stored, dict) else {}  # type: ignore[arg-type]  # counts are ints
        started = from_ms(row[7])
        assert started is not None
        return MigrationState(row[0], row[1], row[2], row[3], row[4], by_rule, row[6], started, finished)
