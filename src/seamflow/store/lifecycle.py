"""The flow lifecycle's rows: deployments of flow versions and the results of shadow runs.

A deployment is recorded only when it changes the flow's version (the processes of a serve group
all reload the same files; the first records it). Shadow results are one row per event, the
report kept as JSON text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from seamflow import codec
from seamflow.ids import Json
from seamflow.store.rows import Conn, Rows, from_ms, to_ms

__all__ = ["Deployment", "LifecycleOps", "LiveShadow", "ShadowResult"]


@dataclass(frozen=True, slots=True)
class Deployment:
    """A flow version that became the live one: when, by whom, how (`start`, `watch`, `api`, `rollback`)."""

    flow_id: str
    version: str
    at: datetime
    by: str
    how: str


@dataclass(frozen=True, slots=True)
class ShadowResult:
    """One event of a shadow run: the live run it came from and how the candidate's effects differ."""

    shadow_id: str
    seq: int
    flow_id: str
    live_version: str
    candidate_version: str
    run_id: str
    at: datetime
    report: Json


@dataclass(frozen=True, slots=True)
class LiveShadow:
    """A live shadow of a candidate: each new live run of the flow is rehearsed with it, until a bound.

    It ends at `until`, after `max_events` events, or when stopped (`stopped_at`, `stopped_by`).
    """

    shadow_id: str
    flow_id: str
    candidate_version: str
    started_at: datetime
    until: datetime
    max_events: int
    started_by: str
    stopped_at: datetime | None = None
    stopped_by: str | None = None


class LifecycleOps(Rows):
    """Deployments and shadow results; see the module docstring."""

    async def record_deployments(self, deployments: Sequence[Deployment]) -> list[Deployment]:
        """Record each deployment whose version differs from its flow's last one; return those recorded."""

        def unit(conn: Conn) -> list[Deployment]:
            recorded = []
            for d in deployments:
                last = self._x(
                    conn,
                    "SELECT version FROM flow_deployments WHERE flow_id = ? ORDER BY seq DESC LIMIT 1",
                    (d.flow_id,),
                ).fetchone()
                if last is not None and last[0] == d.version:
                    continue
                self._x(
                    conn,
                    "INSERT INTO flow_deployments (flow_id, version, deployed_ms, deployed_by, how)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (d.flow_id, d.version, to_ms(d.at), d.by, d.how),
                )
                recorded.append(d)
            return recorded

        return await self._write(unit)

    async def list_deployments(self, flow_id: str, limit: int = 100) -> list[Deployment]:
        """The flow's deployments, newest first."""

        def unit(conn: Conn) -> list[Deployment]:
            rows = self._x(
                conn,
                "SELECT flow_id, version, deployed_ms, deployed_by, how FROM flow_deployments"
                " WHERE flow_id = ? ORDER BY seq DESC LIMIT ?",
                (flow_id, limit),
            ).fetchall()
            return [Deployment(r[0], r[1], _instant(r[2]), r[3], r[4]) for r in rows]

        return await self._read(unit)

    async def save_shadow_results(self, results: Sequence[ShadowResult]) -> None:
        """Keep the results of a shadow run, in one commit."""

        def unit(conn: Conn) -> None:
            for r in results:
                self._x(
                    conn,
                    "INSERT INTO shadow_results (shadow_id, seq, flow_id, live_version, candidate_version, run_id,"
                    " created_ms, report) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        r.shadow_id,
                        r.seq,
                        r.flow_id,
                        r.live_version,
                        r.candidate_version,
                        r.run_id,
                        to_ms(r.at),
                        codec.dumps_text(r.report),
                    ),
                )

        await self._write(unit)

    async def list_shadow_results(self, flow_id: str, shadow_id: str | None = None) -> list[ShadowResult]:
        """The results of the flow's shadow runs (or of one), newest shadow first, events in order."""

        def unit(conn: Conn) -> list[ShadowResult]:
            rows = self._x(
                conn,
                "SELECT shadow_id, seq, flow_id, live_version, candidate_version, run_id, created_ms, report"
                " FROM shadow_results WHERE flow_id = ? AND (CAST(? AS TEXT) IS NULL OR shadow_id = ?)"
                " ORDER BY created_ms DESC, shadow_id, seq",
                (flow_id, shadow_id, shadow_id),
            ).fetchall()
            return [
                ShadowResult(r[0], int(r[1]), r[2], r[3], r[4], r[5], _instant(r[6]), codec.loads(r[7])) for r in rows
            ]

        return await self._read(unit)

    async def start_live_shadow(self, shadow: LiveShadow) -> None:
        """Keep a new live shadow (active from now)."""

        def unit(conn: Conn) -> None:
            self._x(
                conn,
                "INSERT INTO live_shadows (shadow_id, flow_id, candidate_version, started_ms, until_ms, max_events,"
                " started_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    shadow.shadow_id,
                    shadow.flow_id,
                    shadow.candidate_version,
                    to_ms(shadow.started_at),
                    to_ms(shadow.until),
                    shadow.max_events,
                    shadow.started_by,
                ),
            )

        await self._write(unit)

    async def stop_live_shadow(self, shadow_id: str, at: datetime, by: str) -> bool:
        """Stop a live shadow; False if there is none by that id or it was stopped already."""

        def unit(conn: Conn) -> bool:
            cursor = self._x(
                conn,
                "UPDATE live_shadows SET stopped_ms = ?, stopped_by = ? WHERE shadow_id = ? AND stopped_ms IS NULL",
                (to_ms(at), by, shadow_id),
            )
            return bool(cursor.rowcount)

        return await self._write(unit)

    async def list_live_shadows(self, flow_id: str | None = None) -> list[LiveShadow]:
        """Live shadows (of one flow, or of every flow), newest first, stopped ones included."""

        def unit(conn: Conn) -> list[LiveShadow]:
            rows = self._x(
                conn,
                "SELECT shadow_id, flow_id, candidate_version, started_ms, until_ms, max_events, started_by,"
                " stopped_ms, stopped_by FROM live_shadows WHERE (CAST(? AS TEXT) IS NULL OR flow_id = ?)"
                " ORDER BY started_ms DESC, shadow_id",
                (flow_id, flow_id),
            ).fetchall()
            return [
                LiveShadow(r[0], r[1], r[2], _instant(r[3]), _instant(r[4]), int(r[5]), r[6], from_ms(r[7]), r[8])
                for r in rows
            ]

        return await self._read(unit)


def _instant(ms: int) -> datetime:
    at = from_ms(int(ms))
    assert at is not None
    return at
