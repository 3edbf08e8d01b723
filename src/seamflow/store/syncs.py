"""Durable state of record syncs: canonical records, the key crosswalk, tombstones, conflicts, loads.

The sync capability decides; the store keeps. `sync_transact` runs a decision function on a
record's state inside one write transaction (the row is locked on PostgreSQL), so two changes
to the same record — from two systems, or two processes — are merged one after the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from seamflow import clock, codec, errors, ids
from seamflow.ids import Json
from seamflow.store.base import SyncConflict, SyncLink, SyncState
from seamflow.store.rows import Conn, Rows, from_ms, to_ms

__all__ = ["SyncLoad", "SyncOps"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SyncLoad:
    """The progress of an initial bulk load of one side of a sync (a row of `sync_loads`)."""

    sync_id: str
    side: str
    position: Json
    """Where the next chunk starts, as the side's reader gave it; None before the first chunk."""
    done: int
    """Records through the sync in all, across resumed runs of the load."""
    owner: str | None
    """The process running the load (`load:<host>:<pid>`) while it holds the lease."""
    started: datetime
    finished: datetime | None


_LOAD_COLUMNS = "sync_id, side, position, done, owner, started_ms, finished_ms"


class SyncOps(Rows):
    """Canonical records, crosswalk and conflicts; see the module docstring."""

    async def sync_transact(
        self,
        sync_id: str,
        side: str,
        side_key: str | None,
        match_key: str | None,
        decide: Callable[[SyncState], tuple[SyncState, T]],
        *,
        canonical_id: str | None = None,
    ) -> T:
        """Load the record a change belongs to, let `decide` merge it, store the result; one commit.

        The record is found by `canonical_id`, else by the side's key in the crosswalk, else by
        `match_key` (a record first seen on another system), else a new one is started.
        """

        def unit(conn: Conn) -> T:
            found = canonical_id or self._find_canonical(conn, sync_id, side, side_key, match_key)
            state = self._load_sync_state(conn, sync_id, found) if found else None
            if state is None:
                state = SyncState(sync_id, found or ids.new_id("rec"), {}, {}, False, 0, {}, match_key)
            new_state, result = decide(state)
            self._save_sync_state(conn, state, new_state)
            return result

        return await self._write(unit)

    def _find_canonical(
        self, conn: Conn, sync_id: str, side: str, side_key: str | None, match_key: str | None
    ) -> str | None:
        if side_key is not None:
            row = self._x(
                conn,
                "SELECT canonical_id FROM sync_links WHERE sync_id = ? AND side = ? AND side_key = ?",
                (sync_id, side, side_key),
            ).fetchone()
            if row is not None:
                return str(row[0])
        if match_key is not None:
            row = self._x(
                conn,
                "SELECT canonical_id FROM sync_records WHERE sync_id = ? AND match_key = ? ORDER BY updated_ms LIMIT 1",
                (sync_id, match_key),
            ).fetchone()
            if row is not None:
                return str(row[0])
        return None

    def _load_sync_state(self, conn: Conn, sync_id: str, canonical_id: str) -> SyncState | None:
        row = self._x(
            conn,
            "SELECT data, meta, deleted, version, match_key FROM sync_records WHERE sync_id = ? AND canonical_id = ?"  # noqa: S608 - constants only
            + self._FOR_UPDATE,
            (sync_id, canonical_id),
        ).fetchone()
        if row is None:
            return None
        links = {
            r[0]: SyncLink(side=r[0], key=r[1], seen_hash=r[2], written_hash=r[3], written_at=r[4])
            for r in self._x(
                conn,
                "SELECT side, side_key, seen_hash, written_hash, written_at FROM sync_links"
                " WHERE sync_id = ? AND canonical_id = ?",
                (sync_id, canonical_id),
            ).fetchall()
        }
        data, meta = codec.loads(row[0]), codec.loads(row[1])
        assert isinstance(data, dict) and isinstance(meta, dict)
        return SyncState(sync_id, canonical_id, data, meta, bool(row[2]), int(row[3]), links, row[4])

    def _save_sync_state(self, conn: Conn, old: SyncState, new: SyncState) -> None:
        now = to_ms(clock.now())
        if (new.data, new.meta, new.deleted, new.match_key) != (old.data, old.meta, old.deleted, old.match_key) or (
            old.version == 0
        ):
            self._x(
                conn,
                "INSERT INTO sync_records (sync_id, canonical_id, match_key, data, meta, deleted, version, updated_ms)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sync_id, canonical_id) DO UPDATE SET"
                " match_key = excluded.match_key, data = excluded.data, meta = excluded.meta,"
                " deleted = excluded.deleted, version = excluded.version, updated_ms = excluded.updated_ms",
                (
                    new.sync_id,
                    new.canonical_id,
                    new.match_key,
                    codec.dumps_text(new.data),
                    codec.dumps_text(new.meta),
                    int(new.deleted),
                    old.version + 1,
                    now,
                ),
            )
        for side, link in new.links.items():
            if old.links.get(side) == link or link.key is None:
                continue
            self._x(
                conn,
                "INSERT INTO sync_links (sync_id, side, side_key, canonical_id, seen_hash, written_hash, written_at,"
                " updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sync_id, side, side_key) DO UPDATE SET"
                " canonical_id = excluded.canonical_id, seen_hash = excluded.seen_hash,"
                " written_hash = excluded.written_hash, written_at = excluded.written_at,"
                " updated_ms = excluded.updated_ms",
                (
                    new.sync_id,
                    side,
                    link.key,
                    new.canonical_id,
                    link.seen_hash,
                    link.written_hash,
                    link.written_at,
                    now,
                ),
            )
        for conflict in new.new_conflicts:
            self._x(
                conn,
                "INSERT INTO sync_conflicts (id, sync_id, canonical_id, field, candidates, status, created_ms)"
                " VALUES (?, ?, ?, ?, ?, 'open', ?)",
                (ids.new_id("cfl"), new.sync_id, new.canonical_id, conflict[0], codec.dumps_text(conflict[1]), now),
            )

    async def list_sync_records(self, sync_id: str) -> list[SyncState]:
        """Every canonical record of a sync with its crosswalk links (for `sync check`)."""

        def read(conn: Conn) -> list[SyncState]:
            ids_ = [r[0] for r in self._x(conn, "SELECT canonical_id FROM sync_records WHERE sync_id = ?", (sync_id,))]
            states = [self._load_sync_state(conn, sync_id, c) for c in ids_]
            return [s for s in states if s is not None]

        return await self._read(read)

    async def list_sync_conflicts(self, sync_id: str | None, *, status: str | None = "open") -> list[SyncConflict]:
        """Conflicts the policy could not settle, oldest first."""

        def read(conn: Conn) -> list[SyncConflict]:
            rows = self._x(
                conn,
                "SELECT id, sync_id, canonical_id, field, candidates, status, resolution, created_ms, resolved_ms"
                " FROM sync_conflicts WHERE (CAST(? AS TEXT) IS NULL OR sync_id = ?)"
                " AND (CAST(? AS TEXT) IS NULL OR status = ?)"
                " ORDER BY created_ms, id",
                (sync_id, sync_id, status, status),
            ).fetchall()
            return [
                SyncConflict(
                    id=r[0],
                    sync_id=r[1],
                    canonical_id=r[2],
                    field=r[3],
                    candidates=codec.loads(r[4]),
                    status=r[5],
                    resolution=None if r[6] is None else codec.loads(r[6]),
                    created=from_ms(r[7]),  # type: ignore[arg-type]  # NOT NULL column
                    resolved=from_ms(r[8]),
                )
                for r in rows
            ]

        return await self._read(read)

    async def close_sync_conflict(self, conflict_id: str, resolution: Json) -> SyncConflict:
        """Mark a conflict resolved with the chosen value (the sync applies it)."""

        def unit(conn: Conn) -> SyncConflict:
            row = self._x(conn, "SELECT status FROM sync_conflicts WHERE id = ?", (conflict_id,)).fetchone()
            if row is None:
                raise errors.NotFound(f"conflict {conflict_id} does not exist")
            if row[0] != "open":
                raise errors.Conflict(f"conflict {conflict_id} is {row[0]}; only open conflicts can be resolved")
            self._x(
                conn,
                "UPDATE sync_conflicts SET status = 'resolved', resolution = ?, resolved_ms = ? WHERE id = ?",
                (codec.dumps_text(resolution), to_ms(clock.now()), conflict_id),
            )
            return SyncConflict(conflict_id, "", "", "", None, "resolved", resolution, clock.now(), None)

        return await self._write(unit)

    async def get_sync_conflict(self, conflict_id: str) -> SyncConflict:
        """One conflict."""
        for conflict in await self.list_sync_conflicts(None, status=None):
            if conflict.id == conflict_id:
                return conflict
        raise errors.NotFound(f"conflict {conflict_id} does not exist")

    async def sync_counts(self, sync_id: str) -> dict[str, Any]:
        """Records, deleted records, links per side and open conflicts of a sync."""

        def read(conn: Conn) -> dict[str, Any]:
            records = self._x(
                conn, "SELECT COUNT(*), SUM(deleted) FROM sync_records WHERE sync_id = ?", (sync_id,)
            ).fetchone()
            links = dict(
                self._x(conn, "SELECT side, COUNT(*) FROM sync_links WHERE sync_id = ? GROUP BY side", (sync_id,))
            )
            open_conflicts = self._x(
                conn, "SELECT COUNT(*) FROM sync_conflicts WHERE sync_id = ? AND status = 'open'", (sync_id,)
            ).fetchone()[0]
            return {
                "records": int(records[0] or 0),
                "deleted": int(records[1] or 0),
                "linked": {k: int(v) for k, v in links.items()},
                "open_conflicts": int(open_conflicts),
            }

        return await self._read(read)

    # -- initial loads -------------------------------------------------------------------------
    async def claim_sync_load(
        self,
        sync_id: str,
        side: str,
        owner: str,
        now: datetime,
        lease_until: datetime,
        *,
        start_over: bool = False,
        replacing: str | None = None,
    ) -> SyncLoad | None:
        """Hold the load of a sync's side unless another live process does; return its progress.

        The load is free when nobody holds it, its lease ran out, `owner` holds it already, or it
        is held by `replacing` (a holder known to be dead). With `start_over` the position, the count
        and the finish start from nothing. Returns None when another process holds it.
        """

        def unit(conn: Conn) -> SyncLoad | None:
            self._x(
                conn,
                "INSERT INTO sync_loads (sync_id, side, started_ms, updated_ms) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (sync_id, side) DO NOTHING",
                (sync_id, side, to_ms(now), to_ms(now)),
            )
            row = self._x(
                conn,
                "SELECT owner, lease_until_ms FROM sync_loads WHERE sync_id = ? AND side = ?"  # noqa: S608 - constants only
                + self._FOR_UPDATE,
                (sync_id, side),
            ).fetchone()
            if row[0] not in (None, owner, replacing) and row[1] >= to_ms(now):
                return None
            if start_over:
                self._x(
                    conn,
                    "UPDATE sync_loads SET position = NULL, done = 0, finished_ms = NULL, started_ms = ?"
                    " WHERE sync_id = ? AND side = ?",
                    (to_ms(now), sync_id, side),
                )
            self._x(
                conn,
                "UPDATE sync_loads SET owner = ?, lease_until_ms = ?, updated_ms = ? WHERE sync_id = ? AND side = ?",
                (owner, to_ms(lease_until), to_ms(now), sync_id, side),
            )
            return self._sync_load(conn, sync_id, side)

        return await self._write(unit)

    async def save_sync_load_progress(
        self,
        sync_id: str,
        side: str,
        owner: str,
        position: Json,
        done: int,
        now: datetime,
        lease_until: datetime,
    ) -> bool:
        """Store the position after a chunk whose `done` records went through, and renew the lease.

        Returns:
            False if `owner` no longer holds the load (nothing is stored).
        """

        def unit(conn: Conn) -> bool:
            cur = self._x(
                conn,
                "UPDATE sync_loads SET position = ?, done = done + ?, lease_until_ms = ?, updated_ms = ?"
                " WHERE sync_id = ? AND side = ? AND owner = ?",
                (codec.dumps_text(position), done, to_ms(lease_until), to_ms(now), sync_id, side, owner),
            )
            return bool(cur.rowcount == 1)

        return await self._write(unit)

    async def finish_sync_load(self, sync_id: str, side: str, owner: str, now: datetime) -> None:
        """Mark the load finished (if `owner` still holds it) and let it go."""

        def unit(conn: Conn) -> None:
            self._x(
                conn,
                "UPDATE sync_loads SET finished_ms = COALESCE(finished_ms, ?), owner = NULL, lease_until_ms = 0,"
                " updated_ms = ? WHERE sync_id = ? AND side = ? AND owner = ?",
                (to_ms(now), to_ms(now), sync_id, side, owner),
            )

        await self._write(unit)

    async def get_sync_load(self, sync_id: str, side: str) -> SyncLoad | None:
        """The progress of the load of a sync's side; None if it never started."""

        def read(conn: Conn) -> SyncLoad | None:
            return self._sync_load(conn, sync_id, side)

        return await self._read(read)

    def _sync_load(self, conn: Conn, sync_id: str, side: str) -> SyncLoad | None:
        row = self._x(
            conn,
            "SELECT " + _LOAD_COLUMNS + " FROM sync_loads WHERE sync_id = ? AND side = ?",  # noqa: S608 - constants only
            (sync_id, side),
        ).fetchone()
        if row is None:
            return None
        started = from_ms(row[5])
        assert started is not None  # NOT NULL column
        return SyncLoad(
            sync_id=str(row[0]),
            side=str(row[1]),
            position=None if row[2] is None else codec.loads(row[2]),
            done=int(row[3]),
            owner=None if row[4] is None else str(row[4]),
            started=started,
            finished=from_ms(row[6]),
        )
