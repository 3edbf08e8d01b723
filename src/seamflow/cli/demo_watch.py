"""The live figures of `seamflow demo` (runs, sync, ERP orders, mails), and waiting for the feeds to catch up."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from seamflow import clock, engine
from seamflow.cli.demo_systems import Mailbox

__all__ = ["CatchUp", "Watch"]

_IN_FLIGHT = ("queued", "running", "waiting")
_REPORT_EVERY_S = 4.0
"""While catching up, a line of figures this often, so a long catch-up shows its progress."""
_POLL_MARGIN = timedelta(seconds=2)
"""A feed has caught up when it polled successfully this long after the last change: the example's
feeds poll every second, so that poll started after the change."""


@dataclass
class Watch:
    """Reads Seamflow's store, the ERP's database and the mail folder for the live summary."""

    eng: engine.Engine
    root: Path
    """The demo's folder: `erp.db`, `mail/`."""
    project: Path
    mailbox: Mailbox

    async def _runs(self) -> tuple[dict[str, int], int, int]:
        by_flow = await self.eng.db.count_runs_by_flow_status()
        totals: dict[str, int] = {}
        for counts in by_flow.values():
            for status, n in counts.items():
                totals[status] = totals.get(status, 0) + n
        sync_runs = sum(sum(c.values()) for f, c in by_flow.items() if f.startswith("sync."))
        return totals, sum(totals.values()), sync_runs

    def _erp(self) -> dict[str, int]:
        import sqlite3

        path = self.root / "erp.db"
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)) as conn:
            rows = conn.execute(
                "SELECT status, COUNT(*) FROM sales_orders WHERE external_ref LIKE 'HT-%' GROUP BY status"
            ).fetchall()
            paid = conn.execute(
                "SELECT COUNT(DISTINCT p.order_id) FROM payments p JOIN sales_orders o ON o.id = p.order_id"
                " WHERE o.external_ref LIKE 'HT-%'"
            ).fetchone()[0]
        counts = {str(s): int(n) for s, n in rows}
        counts["orders"] = sum(counts.values())
        counts["paid"] = int(paid)
        return counts

    async def report(self, elapsed: float | None, label: str | None = None) -> None:
        """Print one line: runs by status, sync changes, ERP orders, mails (`elapsed` None: the final line;
        `label` replaces the time at the start of the line)."""
        totals, runs, sync_runs = await self._runs()
        sync = await self._sync()
        try:
            erp = await asyncio.to_thread(self._erp)
        except Exception:  # the ERP may be writing; the next report reads again
            erp = {}
        click.echo(
            (f"  {label}" if label else "  final  " if elapsed is None else f"  t={elapsed:4.0f}s")
            + f"  runs {runs:5d} (completed {totals.get('completed', 0)}, "
            f"failed {totals.get('failed', 0)}, dead letters {totals.get('dead_letter', 0)}, "
            f"in flight {totals.get('queued', 0) + totals.get('running', 0) + totals.get('waiting', 0)})"
            f"  sync: {sync_runs} changes, {sync.get('records', 0)} records, "
            f"{sync.get('open_conflicts', 0)} conflicts"
            f"  ERP orders {erp.get('orders', 0)} (pending {erp.get('pending_review', 0)}, "
            f"cancelled {erp.get('cancelled', 0)}) paid {erp.get('paid', 0)} shipped {erp.get('shipped', 0)}"
            f"  mails {self.mailbox.count}"
        )

    async def _sync(self) -> dict[str, Any]:
        from seamflow import sync

        service = self.eng.services.get(sync.SyncService)
        return await service.status("customers") if service is not None else {}

    async def catch_up(self, timeout_s: float) -> CatchUp:
        """Wait (at most `timeout_s`) until nothing moves: no run in flight, no CRM webhook waiting to be
        delivered, no new run or feed item, and every feed has polled since (finding nothing new)."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline, next_report = start + timeout_s, start + _REPORT_EVERY_S
        mark: tuple[int, ...] = ()
        quiet_since = clock.now()
        while True:
            totals, runs, _ = await self._runs()
            feeds = await self.eng.db.list_feeds()
            in_flight = sum(totals.get(s, 0) for s in _IN_FLIGHT)
            webhooks = await asyncio.to_thread(self._pending_webhooks)
            now_mark = (runs, sum(f.items for f in feeds), in_flight, webhooks)
            if now_mark != mark or in_flight or webhooks:
                mark, quiet_since = now_mark, clock.now()
            behind = tuple(f.flow_id for f in feeds if f.last_ok is None or f.last_ok < quiet_since + _POLL_MARGIN)
            if not (in_flight or webhooks or behind):
                return CatchUp(True)
            if loop.time() > deadline:
                return CatchUp(False, in_flight, webhooks, behind)
            if loop.time() >= next_report:
                await self.report(None, label=f"+{loop.time() - start:3.0f}s ")
                next_report += _REPORT_EVERY_S
            await asyncio.sleep(0.25)

    def _pending_webhooks(self) -> int:
        """The CRM's webhooks (signed or cancelled contracts) not delivered to Seamflow yet."""
        import sqlite3

        path = self.root / "crm.db"
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'").fetchone()[0])


@dataclass(frozen=True, slots=True)
class CatchUp:
    """Whether every feed caught up after the traffic stopped, and if not, what was still moving."""

    is_done: bool
    in_flight: int = 0
    """Runs queued, running or waiting (a retry, a wait)."""
    webhooks: int = 0
    """CRM webhooks not delivered yet."""
    behind: tuple[str, ...] = ()
    """Flows whose feed has not polled since the last change."""

    def describe(self) -> str:
        """What was still moving, in one line."""
        parts = []
        if self.in_flight:
            parts.append(f"{self.in_flight} runs in flight")
        if self.webhooks:
            parts.append(f"{self.webhooks} CRM webhooks not delivered")
        if self.behind:
            parts.append("feeds not polled since the last change: " + ", ".join(self.behind))
        return "; ".join(parts) or "nothing"
