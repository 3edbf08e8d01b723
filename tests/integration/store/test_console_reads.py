"""The store's reads behind the console's pages, on both backends: what they count and find."""

from __future__ import annotations

from datetime import UTC, datetime

from seamflow import engine, store
from seamflow.ids import FlowId
from tests.support.db import Database


def _event(flow: str, n: int, key: str | None = None) -> store.NewEvent:
    return store.NewEvent(FlowId(flow), "v1", "webhook", {"n": n}, datetime.now(UTC), dedupe_key=key)


async def test_open_runs_of_flows_count_only_the_unfinished_and_failed_of_those_flows(
    db: store.SqlStore, database: Database, journal: engine.Journal
) -> None:
    statuses = ["queued", "waiting", "failed", "dead_letter", "dead_letter", "completed", "completed", "cancelled"]
    for flow in ("sync.customers.crm", "sync.customers.erp", "contract-signed"):
        for n, status in enumerate(statuses):
            run_id = (await journal.accept(_event(flow, n))).run_id
            database.query("UPDATE runs SET status = ? WHERE id = ?", (status, run_id))

    counts = await db.count_open_runs_of_flows(["sync.customers.crm", "sync.customers.erp", "sync.gone.crm"])

    expected = {"queued": 1, "waiting": 1, "failed": 1, "dead_letter": 2}
    assert counts == {"sync.customers.crm": expected, "sync.customers.erp": expected}
    assert await db.count_open_runs_of_flows([]) == {}
