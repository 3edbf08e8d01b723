"""The live summary of `seamflow demo`: runs, sync, ERP orders and mails, and what to look at next."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from seamflow import engine, store
from seamflow.cli.demo_systems import Mailbox, read_mail

if TYPE_CHECKING:
    from seamflow.cli.demo_traffic import Traffic

__all__ = ["Watch"]


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

    async def report(self, elapsed: float | None) -> None:
        """Print one line: runs by status, sync changes, ERP orders, mails (`elapsed` None: the final line)."""
        totals, runs, sync_runs = await self._runs()
        sync = await self._sync()
        try:
            erp = await asyncio.to_thread(self._erp)
        except Exception:  # the ERP may be writing; the next report reads again
            erp = {}
        click.echo(
            ("  final  " if elapsed is None else f"  t={elapsed:4.0f}s")
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

    async def settle(self, timeout_s: float) -> None:
        """Wait (at most `timeout_s`) until no run is queued or running."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            totals, _, _ = await self._runs()
            if not (totals.get("queued") or totals.get("running")):
                return
            await asyncio.sleep(0.2)

    async def final(self, driver: Traffic) -> None:
        """Print the final line, what the sales team did, dead letters, the last mail and next commands."""
        await self.report(None)
        click.echo("\nThe sales team did: " + ", ".join(f"{k} {v}" for k, v in sorted(driver.done.items())))
        dead = await self.eng.db.list_runs(store.RunFilter(statuses=(store.RunStatus.DEAD_LETTER,), limit=5))
        for run in dead:
            click.echo(f"Dead letter: {run.flow_id} {run.run_id}: {_short(run.error)}")
        mails = sorted((self.root / "mail").glob("*.eml"))
        if mails:
            to, subject, _ = read_mail(mails[-1])
            click.echo(f"Last mail:   to {to}: {subject}")
        root = self.project
        click.echo("\nLook closer (with --keep):")
        click.echo(f"  seamflow runs list --project {root}")
        click.echo(f"  seamflow dead-letters --project {root}")
        click.echo(f"  seamflow sync list --project {root}")


def _short(error: Any) -> str:
    text = error.get("message", error) if isinstance(error, dict) else error
    return str(text).replace("\n", " ")[:200]
