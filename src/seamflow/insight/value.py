"""The work a flow saves: its completed runs times the minutes a person needed per run before it
(`manual_minutes` in the flow file), counted from the engine's `run.completed` rows of the log."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from seamflow.ids import Json
from seamflow.insight.activities import ENGINE_ACTIVITIES
from seamflow.insight.index import ProcessIndex

__all__ = ["WorkSaved", "work_saved"]


@dataclass(frozen=True, slots=True)
class WorkSaved:
    """One flow's completed runs in a period and the minutes of manual work they replaced."""

    flow: str
    runs: int
    manual_minutes: float
    minutes_saved: float

    def to_json(self) -> Json:
        """The figures as JSON."""
        return {
            "flow": self.flow,
            "runs": self.runs,
            "manual_minutes": self.manual_minutes,
            "minutes_saved": self.minutes_saved,
            "hours_saved": round(self.minutes_saved / 60, 2),
        }


def work_saved(
    index: ProcessIndex, manual_minutes: Mapping[str, float], start: datetime | None = None, end: datetime | None = None
) -> list[WorkSaved]:
    """For each flow that declares its manual minutes: completed runs in [start, end) times those minutes."""
    flow_type = index.object_type_code("flow")
    completed = {n: c for c, n in index.activity_names().items()}.get(ENGINE_ACTIVITIES["run.completed"])
    counts: dict[str, int] = {}
    if flow_type is not None and completed is not None:
        low = -(2**62) if start is None else round(start.timestamp() * 1000)
        high = 2**62 if end is None else round(end.timestamp() * 1000)
        rows = index.query(
            "SELECT o.id, count(*) FROM steps s JOIN objects o ON o.code = s.obj WHERE s.otype = ? AND s.act = ?"
            " AND s.ts_ms >= ? AND s.ts_ms < ? GROUP BY o.id",
            [flow_type, completed, low, high],
        )
        counts = {flow: int(n) for flow, n in rows}
    return [
        WorkSaved(flow, counts.get(flow, 0), minutes, counts.get(flow, 0) * minutes)
        for flow, minutes in sorted(manual_minutes.items())
    ]
