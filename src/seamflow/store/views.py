"""Read-only store operations: runs and their journal, the event log, due schedules, tokens."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any, LiteralString

from seamflow import codec, errors
from seamflow.ids import FlowId, Json, RunId
from seamflow.store import schema
from seamflow.store.base import (
    LogEntry,
    RunFilter,
    RunState,
    RunSummary,
)
from seamflow.store.rows import Conn, Rows, from_ms, to_ms

__all__ = ["RunViews"]

_LOAD_BATCH = 200


class RunViews(Rows):
    """What operators, recovery and the engine read from the store."""

    async def load_flow_source(self, flow_id: FlowId, version: str) -> str | None:
        def read(conn: Conn) -> str | None:
            row = self._x(
                conn, "SELECT source FROM flow_versions WHERE flow_id = ? AND version = ?", (flow_id, version)
            ).fetchone()
            return None if row is None else str(row[0])

        return await self._read(read)

    async def load_run(self, run_id: RunId) -> RunState:
        return await self._read(lambda conn: self._load_run(conn, run_id))

    async def load_runs(self, run_ids: list[RunId]) -> dict[RunId, RunState]:
        """Several runs' states at once (a claimed batch): two statements per 200 runs, not two per run."""
        states: dict[RunId, RunState] = {}
        for start in range(0, len(run_ids), _LOAD_BATCH):
            states.update(
                await self._read(functools.partial(self._load_runs, run_ids=run_ids[start : start + _LOAD_BATCH]))
            )
        return states

    async def next_timer_due(self) -> datetime | None:
        """When the earliest timer is due, if any."""
        row = await self._read(lambda conn: self._x(conn, "SELECT MIN(due_ms) FROM timers").fetchone())
        return from_ms(row[0]) if row and row[0] is not None else None

    async def list_unfinished_runs(self) -> list[RunId]:
        """Runs that were queued or executing; on start they continue from their journal."""

        def read(conn: Conn) -> list[RunId]:
            rows = self._x(
                conn, "SELECT id FROM runs WHERE status IN ('queued', 'running') ORDER BY created_ms"
            ).fetchall()
            return [RunId(r[0]) for r in rows]

        return await self._read(read)

    async def list_runs(self, query: RunFilter) -> list[RunSummary]:
        """Runs matching the filter, newest first (by creation time, then id, in a time window)."""
        clauses: list[LiteralString] = ["1 = 1"]
        params: list[Any] = []
        if query.flow_id:
            clauses.append("flow_id = ?")
            params.append(query.flow_id)
        if query.flow_ids is not None:
            clauses.append("flow_id IN (" + ", ".join("?" for _ in query.flow_ids) + ")" if query.flow_ids else "1 = 0")
            params.extend(query.flow_ids)
        if query.statuses:
            clauses.append("status IN (" + ", ".join("?" for _ in query.statuses) + ")")
            params.extend(s.value for s in query.statuses)
        if query.since:
            clauses.append("created_ms >= ?")
            params.append(to_ms(query.since))
        if query.until:
            clauses.append("created_ms < ?")
            params.append(to_ms(query.until))
        if query.before_id:
            clauses.append("id < ?")
            params.append(query.before_id)
        if query.dedupe_key is not None:  # with a flow, the events_dedupe index (flow_id, dedupe_key) finds it
            if query.flow_id:
                clauses.append("event_id IN (SELECT id FROM events WHERE flow_id = ? AND dedupe_key = ?)")
                params.extend([query.flow_id, query.dedupe_key])
            else:
                clauses.append("event_id IN (SELECT id FROM events WHERE dedupe_key = ?)")
                params.append(query.dedupe_key)
        # built from literal fragments only; every value is a bound parameter
        sql: LiteralString = (
            "SELECT "  # noqa: S608
            + self._SUMMARY_COLUMNS
            + " FROM runs WHERE "
            + " AND ".join(clauses)
            # a time window is read backwards along runs_created; otherwise along the primary key
            + (
                " ORDER BY created_ms DESC, id DESC LIMIT ?"
                if query.since or query.until
                else " ORDER BY id DESC LIMIT ?"
            )
        )
        params.append(query.limit)
        return await self._read(lambda conn: [self._summary(r) for r in self._x(conn, sql, tuple(params))])

    async def get_run(self, run_id: RunId) -> tuple[RunSummary, RunState]:
        def read(conn: Conn) -> tuple[RunSummary, RunState]:
            sql: LiteralString = "SELECT " + self._SUMMARY_COLUMNS + " FROM runs WHERE id = ?"  # noqa: S608
            row = self._x(conn, sql, (run_id,)).fetchone()
            if row is None:
                raise errors.NotFound(f"run {run_id} does not exist")
            return self._summary(row), self._load_run(conn, run_id)

        return await self._read(read)

    async def list_event_log(
        self, *, after_seq: int = 0, limit: int = 100, run_id: str | None = None
    ) -> list[LogEntry]:
        """Rows of the event log in order, after a sequence number."""

        def read(conn: Conn) -> list[LogEntry]:
            if run_id is None:
                rows = self._x(
                    conn,
                    "SELECT seq, at_ms, kind, flow_id, run_id, path, activity, objects, attributes FROM event_log"
                    " WHERE seq > ? ORDER BY seq LIMIT ?",
                    (after_seq, limit),
                ).fetchall()
            else:
                rows = self._x(
                    conn,
                    "SELECT seq, at_ms, kind, flow_id, run_id, path, activity, objects, attributes FROM event_log"
                    " WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                    (run_id, after_seq, limit),
                ).fetchall()
            return [
                LogEntry(
                    seq=r[0],
                    at=from_ms(r[1]),  # type: ignore[arg-type]  # NOT NULL column
                    kind=r[2],
                    flow_id=r[3],
                    run_id=r[4],
                    path=r[5],
                    activity=r[6],
                    objects=None if r[7] is None else codec.loads(r[7]),
                    attributes=None if r[8] is None else codec.loads(r[8]),
                )
                for r in rows
            ]

        return await self._read(read)

    async def find_response(self, run_id: RunId) -> Json | None:
        """The answer of a run's `respond` step once it is journaled (None before)."""

        def read(conn: Conn) -> Json | None:
            row = self._x(
                conn,
                "SELECT output FROM journal WHERE run_id = ? AND kind = 'respond' AND status = 'completed'"
                " ORDER BY attempt DESC LIMIT 1",
                (run_id,),
            ).fetchone()
            return None if row is None else self._unpack(conn, row[0])

        return await self._read(read)

    async def schema_status(self) -> tuple[int, int]:
        """(the database's schema version, the version this code expects)."""

        def read(conn: Conn) -> int:
            row = self._x(conn, "SELECT MAX(version) FROM schema_version").fetchone()
            return int(row[0] or 0)

        return await self._read(read), schema.latest_version(self._DIALECT)

    async def count_runs_by_flow_status(self) -> dict[str, dict[str, int]]:
        """Runs per flow and status."""

        def read(conn: Conn) -> dict[str, dict[str, int]]:
            out: dict[str, dict[str, int]] = {}
            for flow_id, status, count in self._x(
                conn, "SELECT flow_id, status, COUNT(*) FROM runs GROUP BY flow_id, status"
            ).fetchall():
                out.setdefault(flow_id, {})[status] = int(count)
            return out

        return await self._read(read)

    async def count_open_runs_of_flows(self, flow_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """Runs queued, running, waiting, failed and dead-lettered of the given flows, per flow and
        status: index range counts on runs_flow_status that leave completed runs unread (the Syncs
        page's pending and failed records, cheap with millions of runs stored)."""
        if not flow_ids:
            return {}
        marks: LiteralString = ", ".join("?" for _ in flow_ids)
        sql: LiteralString = (
            "SELECT flow_id, status, COUNT(*) FROM runs WHERE flow_id IN ("  # noqa: S608 - constants only
            + marks
            + ") AND status IN ('queued', 'running', 'waiting', 'failed', 'dead_letter') GROUP BY flow_id, status"
        )

        def read(conn: Conn) -> dict[str, dict[str, int]]:
            out: dict[str, dict[str, int]] = {}
            for flow_id, status, count in self._x(conn, sql, tuple(flow_ids)).fetchall():
                out.setdefault(flow_id, {})[status] = int(count)
            return out

        return await self._read(read)

    async def count_runs_by_status(self) -> dict[str, int]:
        def read(conn: Conn) -> dict[str, int]:
            return {r[0]: r[1] for r in self._x(conn, "SELECT status, COUNT(*) FROM runs GROUP BY status")}

        return await self._read(read)

    async def count_runs_at_a_glance(self, finished_since: datetime) -> dict[str, int]:
        """Runs queued, running, waiting, failed and dead-lettered, and runs finished since an
        instant, by two index range counts (runs_status, runs_finished) that leave completed runs
        unread: what the console's overview polls, cheap with millions of runs stored."""

        def read(conn: Conn) -> dict[str, int]:
            sql: LiteralString = (
                "SELECT status, COUNT(*) FROM runs"
                " WHERE status IN ('queued', 'running', 'waiting', 'failed', 'dead_letter') GROUP BY status"
            )
            counts = {status: 0 for status in ("queued", "running", "waiting", "failed", "dead_letter")}
            counts.update({r[0]: r[1] for r in self._x(conn, sql)})
            row = self._x(conn, "SELECT COUNT(*) FROM runs WHERE finished_ms >= ?", (to_ms(finished_since),)).fetchone()
            counts["finished"] = int(row[0])
            return counts

        return await self._read(read)

    async def due_schedules(self, now: datetime) -> list[tuple[FlowId, datetime]]:
        def read(conn: Conn) -> list[tuple[FlowId, datetime]]:
            rows = self._x(conn, "SELECT flow_id, next_ms FROM schedules WHERE next_ms <= ?", (to_ms(now),))
            return [(FlowId(r[0]), from_ms(r[1])) for r in rows]  # type: ignore[misc]  # NOT NULL column

        return await self._read(read)

    async def has_api_token(self, token_hash: str) -> bool:
        def read(conn: Conn) -> bool:
            return self._x(conn, "SELECT 1 FROM api_tokens WHERE hash = ?", (token_hash,)).fetchone() is not None

        return await self._read(read)
