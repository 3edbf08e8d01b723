"""Several processes over one store: worker registry, run leases with fencing, cluster-wide slots, retention.

A run is executed only by the worker holding its lease (`runs.owner`, `lease_until_ms`).
Claiming bumps the run's `epoch`; every journal write carries the writer's epoch and is
refused if it is stale (`SqlStore._fence`), so a worker that lost its lease during a long
pause cannot commit over the new owner. Leases are renewed by the worker's heartbeat; a
dead worker's runs are claimable once their lease runs out, or at once when a process on
the same host sees that the worker's process is gone.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import LiteralString

from seamflow.ids import RunId
from seamflow.store.base import Claimed, WorkerInfo
from seamflow.store.rows import Conn, Rows, from_ms, to_ms

__all__ = ["LeaseOps"]

_BATCH = 500
"""Run ids per statement when renewing leases."""


class LeaseOps(Rows):
    """Worker registry, claims, heartbeats, slots and pruning; see the module docstring."""

    async def register_worker(self, worker: WorkerInfo) -> None:
        """Record a starting process (its heartbeat starts now)."""

        def unit(conn: Conn) -> None:
            self._x(
                conn,
                "INSERT INTO workers (id, host, pid, roles, started_ms, heartbeat_ms) VALUES (?, ?, ?, ?, ?, ?)",
                (worker.id, worker.host, worker.pid, worker.roles, to_ms(worker.started), to_ms(worker.heartbeat)),
            )

        await self._write(unit)

    async def heartbeat(
        self,
        worker_id: str,
        now: datetime,
        lease_until: datetime,
        holding: Collection[RunId] = (),
        slots: Collection[tuple[str, int]] = (),
    ) -> int:
        """Prove this worker is alive and extend its leases on the runs `holding` and the `slots`.

        Only what the process knows it holds (runs queued in memory or executing, slots of calls in
        flight) is renewed. A run or slot the store says it owns but the process does not know of —
        a claim whose commit took effect although its answer was lost with the connection, a release
        that failed — keeps its old lease, which runs out, so it comes free: nothing stays held
        forever by a live worker that will not use it.

        Returns:
            How many runs were renewed.
        """

        def unit(conn: Conn) -> int:
            until = to_ms(lease_until)
            self._x(conn, "UPDATE workers SET heartbeat_ms = ? WHERE id = ?", (to_ms(now), worker_id))
            held = 0
            ids = list(holding)
            for start in range(0, len(ids), _BATCH):
                part = ids[start : start + _BATCH]
                marks = ", ".join("?" * len(part))
                held += self._x(
                    conn,
                    "UPDATE runs SET lease_until_ms = ? WHERE owner = ? AND status IN ('queued', 'running')"  # noqa: S608 - placeholders only
                    " AND id IN (" + marks + ")",
                    (until, worker_id, *part),
                ).rowcount
            for scope, slot in slots:
                self._x(
                    conn,
                    "UPDATE slots SET lease_until_ms = ? WHERE owner = ? AND scope = ? AND slot = ?",
                    (until, worker_id, scope, slot),
                )
            self._x(conn, "UPDATE feeds SET lease_until_ms = ? WHERE owner = ?", (until, worker_id))
            return int(held)

        return await self._write(unit)

    async def release_worker(self, worker_id: str, now: datetime) -> int:
        """Give up everything a worker holds (it stops, or it is known dead); return the runs released.

        Its runs, slots and feeds can be claimed by other workers at once.
        """

        def unit(conn: Conn) -> int:
            released = self._x(
                conn,
                "UPDATE runs SET owner = NULL, lease_until_ms = 0 WHERE owner = ? AND status IN ('queued', 'running')",
                (worker_id,),
            ).rowcount
            self._x(
                conn, "UPDATE slots SET owner = NULL, holder = NULL, lease_until_ms = 0 WHERE owner = ?", (worker_id,)
            )
            self._x(conn, "UPDATE feeds SET owner = NULL, lease_until_ms = 0 WHERE owner = ?", (worker_id,))
            self._x(
                conn,
                "UPDATE workers SET stopped_ms = ? WHERE id = ? AND stopped_ms IS NULL",
                (to_ms(now), worker_id),
            )
            if released:
                self._notify_runnable(conn)
            return int(released)

        return await self._write(unit)

    async def claim_runs(
        self, worker_id: str, now: datetime, lease_until: datetime, limit: int, run_ids: list[RunId] | None = None
    ) -> list[Claimed]:
        """Take runnable runs no live worker holds: queued ones without an owner, or any whose lease ran out.

        With `run_ids`, only those (runs this process just made runnable). Each claim bumps the
        run's epoch, which fences off the previous holder's late writes.
        """

        def unit(conn: Conn) -> list[Claimed]:
            if run_ids is not None:
                candidates = [
                    row[0]
                    for run_id in run_ids
                    for row in self._x(
                        conn,
                        "SELECT id FROM runs WHERE id = ? AND status IN ('queued', 'running')"  # noqa: S608 - constants only
                        " AND (lease_until_ms < ? OR owner = ?)" + self._SKIP_LOCKED,
                        (run_id, to_ms(now), worker_id),
                    ).fetchall()
                ]
            else:  # one statement for the batch: pick, lock (others skip them) and take
                rows = self._x(
                    conn,
                    "UPDATE runs SET owner = ?, lease_until_ms = ?, epoch = epoch + 1 WHERE id IN"  # noqa: S608 - constants only
                    " (SELECT id FROM runs WHERE status IN ('queued', 'running') AND lease_until_ms < ?"
                    " ORDER BY lease_until_ms, created_ms LIMIT ?" + self._SKIP_LOCKED + ") RETURNING id, epoch",
                    (worker_id, to_ms(lease_until), to_ms(now), limit),
                ).fetchall()
                return [Claimed(RunId(run_id), int(epoch)) for run_id, epoch in rows]
            claimed = []
            for run_id in candidates:
                row = self._x(
                    conn,
                    "UPDATE runs SET owner = ?, lease_until_ms = ?, epoch = epoch + 1 WHERE id = ? RETURNING epoch",
                    (worker_id, to_ms(lease_until), run_id),
                ).fetchone()
                claimed.append(Claimed(RunId(run_id), int(row[0])))
            return claimed

        return await self._write(unit)

    async def count_unclaimed_runs(self, now: datetime) -> int:
        """Runs waiting for any worker: queued with no live lease (the cluster's backlog)."""

        def read(conn: Conn) -> int:
            row = self._x(
                conn,
                "SELECT COUNT(*) FROM runs WHERE status IN ('queued', 'running') AND lease_until_ms < ?",
                (to_ms(now),),
            ).fetchone()
            return int(row[0])

        return await self._read(read)

    async def report_catalog(self, worker_id: str, digest: str) -> None:
        """Record which flows `worker_id` serves now (`engine.Catalog.digest`), after it loaded them."""

        def unit(conn: Conn) -> None:
            self._x(conn, "UPDATE workers SET catalog = ? WHERE id = ?", (digest, worker_id))

        await self._write(unit)

    async def list_catalogs(self, host: str, alive_since: datetime) -> dict[str, str | None]:
        """Worker id → the digest of the flows it serves, for the live processes on `host`.

        Live: not stopped, and a heartbeat at or after `alive_since`.
        """

        def read(conn: Conn) -> dict[str, str | None]:
            rows = self._x(
                conn,
                "SELECT id, catalog FROM workers WHERE host = ? AND stopped_ms IS NULL AND heartbeat_ms >= ?",
                (host, to_ms(alive_since)),
            )
            return {str(r[0]): None if r[1] is None else str(r[1]) for r in rows}

        return await self._read(read)

    async def list_workers(self, *, include_stopped: bool = False) -> list[WorkerInfo]:
        """Registered processes, newest first, with how many runs each holds."""

        def read(conn: Conn) -> list[WorkerInfo]:
            where: LiteralString = "" if include_stopped else " WHERE w.stopped_ms IS NULL"
            rows = self._x(
                conn,
                "SELECT w.id, w.host, w.pid, w.roles, w.started_ms, w.heartbeat_ms, w.stopped_ms,"  # noqa: S608 - constants only
                " (SELECT COUNT(*) FROM runs r WHERE r.owner = w.id AND r.status IN ('queued', 'running'))"
                " FROM workers w" + where + " ORDER BY w.started_ms DESC",
            ).fetchall()
            return [
                WorkerInfo(
                    id=r[0],
                    host=r[1],
                    pid=r[2],
                    roles=r[3],
                    started=from_ms(r[4]),  # type: ignore[arg-type]  # NOT NULL column
                    heartbeat=from_ms(r[5]),  # type: ignore[arg-type]  # NOT NULL column
                    stopped=from_ms(r[6]),
                    runs_held=int(r[7]),
                )
                for r in rows
            ]

        return await self._read(read)

    async def forget_workers(self, before: datetime) -> None:
        """Delete registry rows of workers stopped or silent since before `before` (they hold nothing)."""

        def unit(conn: Conn) -> None:
            cutoff = to_ms(before)
            self._x(
                conn,
                "DELETE FROM workers WHERE (stopped_ms IS NOT NULL AND stopped_ms < ?) OR heartbeat_ms < ?",
                (cutoff, cutoff),
            )

        await self._write(unit)

    # -- cluster-wide concurrency slots ------------------------------------------------
    async def acquire_slot(
        self, scope: str, limit: int, worker_id: str, holder: str, now: datetime, lease_until: datetime
    ) -> int | None:
        """Take one of `limit` slots of `scope` (a flow or a connection); None if all are held.

        A slot whose holder's lease ran out (its worker died) is free again.
        """

        def unit(conn: Conn) -> int | None:
            self._x(
                conn,
                "DELETE FROM slots WHERE scope = ? AND slot >= ?",
                (scope, limit),
            )
            existing = self._x(conn, "SELECT COUNT(*) FROM slots WHERE scope = ?", (scope,)).fetchone()[0]
            for slot in range(int(existing), limit):
                self._x(
                    conn,
                    "INSERT INTO slots (scope, slot) VALUES (?, ?) ON CONFLICT (scope, slot) DO NOTHING",
                    (scope, slot),
                )
            row = self._x(
                conn,
                "SELECT slot FROM slots WHERE scope = ? AND lease_until_ms < ? ORDER BY slot LIMIT 1"  # noqa: S608 - constants only
                + self._SKIP_LOCKED,
                (scope, to_ms(now)),
            ).fetchone()
            if row is None:
                return None
            self._x(
                conn,
                "UPDATE slots SET owner = ?, holder = ?, lease_until_ms = ? WHERE scope = ? AND slot = ?",
                (worker_id, holder, to_ms(lease_until), scope, row[0]),
            )
            return int(row[0])

        return await self._write(unit)

    async def release_slot(self, scope: str, slot: int, worker_id: str) -> None:
        """Give a slot back (only if this worker still holds it)."""

        def unit(conn: Conn) -> None:
            self._x(
                conn,
                "UPDATE slots SET owner = NULL, holder = NULL, lease_until_ms = 0"
                " WHERE scope = ? AND slot = ? AND owner = ?",
                (scope, slot, worker_id),
            )
            self._notify_slot(conn)

        await self._write(unit)

    def _notify_slot(self, conn: Conn) -> None:
        """Tell waiting workers a slot came free (PostgreSQL: NOTIFY); nothing for a one-process store."""

    # -- retention ---------------------------------------------------------------------
    async def prune_event_log(self, through_seq: int, before: datetime, limit: int) -> int:
        """Delete up to `limit` rows of the event log at or below `through_seq` and older than `before`.

        Insight calls it once the rows are archived (`seamflow insight archive --prune-older-than`),
        so a KPI can still read them from the archive. Returns how many rows were deleted.
        """

        def unit(conn: Conn) -> int:
            cursor = self._x(
                conn,
                "DELETE FROM event_log WHERE seq IN (SELECT seq FROM event_log WHERE seq <= ? AND at_ms < ?"
                " ORDER BY seq LIMIT ?)",
                (through_seq, to_ms(before), limit),
            )
            return int(cursor.rowcount)

        return await self._write(unit)

    async def prune_finished_runs(self, before: datetime, limit: int) -> int:
        """Delete up to `limit` runs finished before `before` with their events and journal; return how many.

        Called repeatedly in small batches so no lock is held long. The event log is kept
        (insight reads it); children are pruned like any run.
        """

        def unit(conn: Conn) -> int:
            rows = self._x(
                conn,
                "SELECT id, event_id FROM runs WHERE finished_ms IS NOT NULL AND finished_ms < ? LIMIT ?"  # noqa: S608 - constants only
                + self._SKIP_LOCKED,
                (to_ms(before), limit),
            ).fetchall()
            for run_id, event_id in rows:
                self._x(conn, "DELETE FROM journal WHERE run_id = ?", (run_id,))
                self._x(conn, "DELETE FROM runs WHERE id = ?", (run_id,))
                self._x(conn, "DELETE FROM events WHERE id = ?", (event_id,))
            return len(rows)

        return await self._write(unit)
