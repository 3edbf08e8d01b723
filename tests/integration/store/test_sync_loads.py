"""Progress of initial sync loads (`sync_loads`): one holder, resumable position, restart, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from seamflow import store

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


async def test_a_load_is_held_by_one_process_and_continues_from_its_stored_position(db: store.SqlStore) -> None:
    first = await db.claim_sync_load("customers", "erp", "load:a:1", NOW, NOW + LEASE)
    assert first is not None and first.position is None and first.done == 0 and first.finished is None
    assert await db.claim_sync_load("customers", "erp", "load:b:2", NOW, NOW + LEASE) is None, "one holder"
    assert await db.save_sync_load_progress("customers", "erp", "load:a:1", {"after": 100}, 100, NOW, NOW + LEASE)
    assert not await db.save_sync_load_progress("customers", "erp", "load:b:2", {"after": 9}, 9, NOW, NOW + LEASE)
    taken = await db.claim_sync_load("customers", "erp", "load:b:2", NOW, NOW + LEASE, replacing="load:a:1")
    assert taken is not None and taken.position == {"after": 100} and taken.done == 100, "a dead holder's load"
    assert taken.owner == "load:b:2"
    later = NOW + 2 * LEASE
    expired = await db.claim_sync_load("customers", "erp", "load:c:3", later, later + LEASE)
    assert expired is not None and expired.done == 100, "a load whose lease ran out is free"
    assert await db.get_sync_load("customers", "crm") is None


async def test_a_finished_load_stays_finished_until_it_is_restarted(db: store.SqlStore) -> None:
    assert await db.claim_sync_load("customers", "erp", "load:a:1", NOW, NOW + LEASE) is not None
    await db.save_sync_load_progress("customers", "erp", "load:a:1", {"after": "p1"}, 1500, NOW, NOW + LEASE)
    await db.finish_sync_load("customers", "erp", "load:a:1", NOW)
    done = await db.get_sync_load("customers", "erp")
    assert done is not None and done.finished == NOW and done.owner is None and done.done == 1500
    again = await db.claim_sync_load("customers", "erp", "load:b:2", NOW, NOW + LEASE)
    assert again is not None and again.finished == NOW and again.done == 1500
    restarted = await db.claim_sync_load("customers", "erp", "load:b:2", NOW, NOW + LEASE, start_over=True)
    assert restarted is not None and restarted.finished is None and restarted.done == 0 and restarted.position is None
