"""The store's reads behind the console's pages, on both backends: what they count and find."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

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


async def test_a_business_key_finds_its_runs_in_every_flow_newest_first(
    db: store.SqlStore, journal: engine.Journal
) -> None:
    first = (await journal.accept(_event("contract-signed", 1, key="SO-2026-0042"))).run_id
    await journal.accept(_event("contract-signed", 2, key="SO-2026-0043"))
    second = (await journal.accept(_event("invoice-paid", 3, key="SO-2026-0042"))).run_id

    found = await db.list_runs(store.RunFilter(dedupe_key="SO-2026-0042"))

    assert [r.run_id for r in found] == [second, first]
    assert [
        r.run_id for r in await db.list_runs(store.RunFilter(dedupe_key="SO-2026-0042", flow_id="invoice-paid"))
    ] == [second]
    assert await db.list_runs(store.RunFilter(dedupe_key="SO-2026-9999")) == []


async def test_a_time_window_lists_its_runs_newest_first_a_page_at_a_time(
    db: store.SqlStore, database: Database, journal: engine.Journal
) -> None:
    t0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    runs = []
    for n in range(6):  # created a minute apart, from 09:00 to 09:05
        run_id = (await journal.accept(_event("contract-signed", n))).run_id
        at_ms = int((t0 + timedelta(minutes=n)).timestamp() * 1000)
        database.query("UPDATE runs SET created_ms = ? WHERE id = ?", (at_ms, run_id))
        runs.append(run_id)
    window = store.RunFilter(since=t0 + timedelta(minutes=1), until=t0 + timedelta(minutes=5), limit=2)

    pages = []
    before = None
    for _ in range(3):
        page = await db.list_runs(dataclasses.replace(window, before_id=before))
        pages.append([r.run_id for r in page])
        before = page[-1].run_id if page else None

    assert pages == [[runs[4], runs[3]], [runs[2], runs[1]], []], "09:01 to 09:04, newest first; 09:05 is the end"
    only_since = await db.list_runs(store.RunFilter(since=t0 + timedelta(minutes=4)))
    assert [r.run_id for r in only_since] == [runs[5], runs[4]]
    only_until = await db.list_runs(store.RunFilter(until=t0 + timedelta(minutes=1)))
    assert [r.run_id for r in only_until] == [runs[0]]
