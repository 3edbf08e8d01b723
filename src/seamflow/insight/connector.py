"""The `insight` connection: flows ask for the KPI alerts that fire (`insight.check_alerts`), on a
schedule, and send them on through any other connection (DingTalk, WeCom, e-mail)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from seamflow import clock, connectors, errors
from seamflow.ids import Json
from seamflow.insight.alerts import evaluate_alerts
from seamflow.insight.kpi import load_kpis
from seamflow.insight.service import Insight

__all__ = ["InsightConnector"]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kpi_file: str = Field("kpis.yaml", description="the KPI file with `alerts:`, relative to the project folder")


class _CheckAlerts(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InsightConnector:
    """The `insight` connector, served by the process's `Insight` (a `connector: insight` connection).

    Args:
        found: the process's insight; None only for the connector class's other uses (no store).
        root: the project folder the KPI file is relative to.
    """

    kind: ClassVar[str] = "insight"
    Config: ClassVar[type[BaseModel]] = _Config
    actions: ClassVar[Mapping[str, connectors.Action]] = {
        "check_alerts": connectors.Action(
            "check_alerts",
            _CheckAlerts,
            "The alerts of the KPI file to notify now (new, or repeated after repeat_after): {firing: [{alert, kpi,"
            " key, value, compared_with, message}], count, resolved: [...], held}.",
            True,
        )
    }

    def __init__(self, found: Insight | None = None, root: Path | None = None) -> None:
        self._insight = found
        self._root = root or Path()
        self._kpi_file = self._root / "kpis.yaml"

    async def open(self, connection: connectors.Connection) -> None:
        """Read the connection's settings; the insight itself must be there."""
        config = connectors.parse_config(_Config, connection)
        self._kpi_file = self._root / config.kpi_file
        if self._insight is None:
            raise errors.Permanent(
                "the insight connection is served by a running Seamflow process (serve, worker, run)",
                code="insight.unavailable",
            )

    async def close(self) -> None:
        """Nothing to release: the process's insight outlives its connections."""

    async def call(self, action: str, params: Json, *, idempotency_key: str) -> Json:
        """`check_alerts`: evaluate the KPI file's alerts over the log up to now; held back: those notified recently."""
        if action not in self.actions:
            raise errors.Permanent(f"unknown action {action!r}; expected one of {', '.join(self.actions)}")
        if self._insight is None:
            raise errors.Permanent("no insight in this process", code="insight.unavailable")
        try:
            spec = load_kpis(self._kpi_file)
        except errors.InvalidInput as exc:
            raise errors.Permanent(exc.message, where=f"insight.{action}", code=exc.code) from None
        found = self._insight
        await found.catch_up()
        now = clock.now()
        firing = await asyncio.to_thread(evaluate_alerts, found.index, spec.kpis, spec.alerts, now, spec.offset())
        sent = found.alerts.sort(firing, spec.alerts, now)
        return {
            "firing": [f.to_json() for f in sent.firing],
            "count": len(sent.firing),
            "resolved": [f.to_json() for f in sent.resolved],
            "held": sent.held,
        }
