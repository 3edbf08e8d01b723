"""Connection tokens in the store: renewal under a cluster-wide lock, on both backends."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from seamflow import store
from tests.support.db import Database

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


async def test_a_renewal_stores_the_token_and_counts_its_version(db: store.SqlStore) -> None:
    assert await db.read_token("dingtalk") is None

    async def obtain(current: store.ConnectionToken | None) -> tuple[str, datetime] | None:
        return ("sealed-1" if current is None else "sealed-2"), NOW + timedelta(hours=2)

    first = await db.renew_token("dingtalk", obtain)
    assert first is not None and first.version == 1 and first.sealed == "sealed-1"
    second = await db.renew_token("dingtalk", obtain)
    assert second is not None and second.version == 2 and second.sealed == "sealed-2"
    assert await db.read_token("dingtalk") == second
    assert await db.read_token("wecom") is None, "one row per connection"


async def test_concurrent_renewals_from_two_stores_obtain_one_token(db: store.SqlStore, database: Database) -> None:
    other = store.PostgresStore(database.url) if database.url else store.SqliteStore(database.path)
    await other.open()
    obtained: list[str] = []

    def renewer(who: str) -> store.Obtain:
        async def obtain(current: store.ConnectionToken | None) -> tuple[str, datetime] | None:
            if current is not None:  # another process renewed while this one waited for the lock
                return None
            obtained.append(who)
            await asyncio.sleep(0.2)  # a slow token endpoint: the other renewal must wait, not ask too
            return f"sealed-by-{who}", NOW + timedelta(hours=2)

        return obtain

    try:
        a, b = await asyncio.gather(db.renew_token("feishu", renewer("a")), other.renew_token("feishu", renewer("b")))
    finally:
        await other.close()
    assert len(obtained) == 1, obtained
    assert a == b and a is not None and a.sealed == f"sealed-by-{obtained[0]}" and a.version == 1


async def test_a_problem_is_reported_listed_and_cleared_by_the_next_stored_token(db: store.SqlStore) -> None:
    async def obtain(current: store.ConnectionToken | None) -> tuple[str, datetime] | None:
        return "sealed", NOW + timedelta(hours=1)

    await db.report_token_problem("xero", "refresh token refused")  # no row yet: nothing to mark
    assert await db.list_token_problems() == {}
    await db.renew_token("xero", obtain)
    await db.report_token_problem("xero", "the provider refused the refresh token")
    assert await db.list_token_problems() == {"xero": "the provider refused the refresh token"}
    row = await db.read_token("xero")
    assert row is not None and row.problem == "the provider refused the refresh token"
    await db.renew_token("xero", obtain)  # authorized again
    assert await db.list_token_problems() == {}


async def test_other_writes_go_on_while_a_token_endpoint_is_slow(db: store.SqlStore) -> None:
    """A renewal waits for the system with a lock of its own: runs, events and other tokens are written meanwhile."""
    asked, answer = asyncio.Event(), asyncio.Event()

    async def slow(current: store.ConnectionToken | None) -> tuple[str, datetime] | None:
        asked.set()
        await answer.wait()  # the token endpoint has not answered yet
        return "sealed-slow", NOW + timedelta(hours=2)

    async def quick(current: store.ConnectionToken | None) -> tuple[str, datetime] | None:
        return "sealed-quick", NOW + timedelta(hours=2)

    renewal = asyncio.create_task(db.renew_token("kingdee", slow))
    await asyncio.wait_for(asked.wait(), timeout=30)
    # Before, SQLite held BEGIN IMMEDIATE here: this write waited for the busy timeout (30 s) and failed.
    other = await asyncio.wait_for(db.renew_token("wecom", quick), timeout=20)
    assert other is not None and other.sealed == "sealed-quick" and not renewal.done()
    answer.set()
    slow_row = await asyncio.wait_for(renewal, timeout=30)
    assert slow_row is not None and slow_row.sealed == "sealed-slow"
