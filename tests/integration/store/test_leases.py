"""Leases, claims, fencing, slots, feeds and retention in the store, on both backends."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from seamflow import engine, errors, store
from seamflow.ids import FlowId, RunId

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def _event(n: int, lease: store.Lease | None = None) -> store.NewEvent:
    return store.NewEvent(FlowId("f"), "v1", "webhook", {"n": n}, datetime.now(UTC), lease=lease)


def _entry(path: str = "a") -> store.JournalEntry:
    now = datetime.now(UTC)
    return store.JournalEntry(path, 1, 0, "action", store.StepStatus.COMPLETED, None, {"ok": 1}, None, now, now)


async def test_a_run_is_claimed_once_and_each_claim_bumps_its_epoch(
    db: store.SqlStore, journal: engine.Journal
) -> None:
    accepted = [await journal.accept(_event(i)) for i in range(5)]
    first = await db.claim_runs("w1", NOW, NOW + timedelta(seconds=30), limit=3)
    second = await db.claim_runs("w2", NOW, NOW + timedelta(seconds=30), limit=10)
    assert len(first) == 3 and len(second) == 2
    assert {c.run_id for c in first} | {c.run_id for c in second} == {a.run_id for a in accepted}
    assert {c.epoch for c in first + second} == {1}
    assert await db.claim_runs("w3", NOW, NOW + timedelta(seconds=30), limit=10) == [], "leases are live"
    later = NOW + timedelta(seconds=31)
    taken = await db.claim_runs("w3", later, later + timedelta(seconds=30), limit=10)
    assert len(taken) == 5 and {c.epoch for c in taken} == {2}, "expired leases are taken over"


async def test_concurrent_claims_never_share_a_run(db: store.SqlStore, journal: engine.Journal) -> None:
    for i in range(60):
        await journal.accept(_event(i))
    claims = await asyncio.gather(
        *[db.claim_runs(f"w{i}", NOW, NOW + timedelta(seconds=30), limit=7) for i in range(10)]
    )
    ids = [c.run_id for batch in claims for c in batch]
    assert len(ids) == len(set(ids)) == 60


async def test_a_write_with_a_stale_epoch_is_refused_and_nothing_of_it_is_stored(
    db: store.SqlStore, journal: engine.Journal
) -> None:
    lease = store.Lease("w1", datetime.now(UTC) + timedelta(seconds=30))
    accepted = await journal.accept(_event(1, lease))
    assert (await db.load_run(accepted.run_id)).epoch == 1
    later = datetime.now(UTC) + timedelta(minutes=5)
    [taken] = await db.claim_runs("w2", later, later + timedelta(seconds=30), limit=1)
    assert taken.epoch == 2
    record = store.StepRecord(accepted.run_id, FlowId("f"), _entry(), epoch=1)
    with pytest.raises(errors.LeaseLost):
        await journal.record_step(record)
    assert (await db.load_run(accepted.run_id)).journal == [], "the refused entry is not journaled"
    with pytest.raises(errors.LeaseLost):
        await journal.finish(accepted.run_id, FlowId("f"), store.RunFinish(store.RunStatus.COMPLETED), epoch=1)
    await journal.record_step(store.StepRecord(accepted.run_id, FlowId("f"), _entry(), epoch=2))
    await journal.finish(accepted.run_id, FlowId("f"), store.RunFinish(store.RunStatus.COMPLETED, {"x": 1}), epoch=2)
    summary, state = await db.get_run(accepted.run_id)
    assert summary.status is store.RunStatus.COMPLETED and len(state.journal) == 1


async def test_heartbeat_extends_and_release_frees_a_workers_runs(db: store.SqlStore, journal: engine.Journal) -> None:
    start = datetime.now(UTC)
    worker = store.WorkerInfo("w1", "host-a", 4242, "execute", start, start)
    await db.register_worker(worker)
    lease = store.Lease("w1", start + timedelta(seconds=5))
    runs = [await journal.accept(_event(i, lease)) for i in range(3)]
    assert await db.heartbeat("w1", start, start + timedelta(minutes=10), [r.run_id for r in runs]) == 3
    soon = start + timedelta(seconds=30)
    assert await db.claim_runs("w2", soon, soon + timedelta(seconds=30), limit=10) == [], "renewed by the heartbeat"
    [listed] = await db.list_workers()
    assert listed.id == "w1" and listed.runs_held == 3
    assert await db.release_worker("w1", start) == 3
    freed = await db.claim_runs("w2", start, start + timedelta(seconds=30), limit=10)
    assert {c.run_id for c in freed} == {r.run_id for r in runs}
    assert await db.list_workers() == [] and len(await db.list_workers(include_stopped=True)) == 1


async def test_slots_cap_holders_and_come_free_on_release_or_expiry(db: store.SqlStore) -> None:
    until = NOW + timedelta(seconds=30)
    got = [await db.acquire_slot("connection:erp", 2, f"w{i}", f"h{i}", NOW, until) for i in range(3)]
    assert sorted(s for s in got if s is not None) == [0, 1] and got[2] is None
    await db.release_slot("connection:erp", got[0], "w0")  # type: ignore[arg-type]
    assert await db.acquire_slot("connection:erp", 2, "w3", "h3", NOW, until) == got[0]
    later = until + timedelta(seconds=1)
    assert await db.acquire_slot("connection:erp", 2, "w4", "h4", later, later + timedelta(seconds=30)) is not None


async def test_a_feed_is_held_by_one_worker_and_its_cursor_resets_when_its_settings_change(db: store.SqlStore) -> None:
    until = NOW + timedelta(seconds=30)
    state = await db.claim_feed("erp-orders", "spec1", "w1", NOW, until)
    assert state is not None and state.cursor is None
    assert await db.claim_feed("erp-orders", "spec1", "w2", NOW, until) is None
    assert await db.save_feed_progress("erp-orders", "w1", {"id": 41}, 3, NOW, NOW)
    assert not await db.save_feed_progress("erp-orders", "w2", {"id": 99}, 1, NOW, NOW), "only the holder"
    await db.feed_failed("erp-orders", "w1", "connection refused", NOW)
    [feed] = await db.list_feeds()
    assert feed.cursor == {"id": 41} and feed.items == 3 and feed.failing_since == NOW
    later = until + timedelta(seconds=1)
    again = await db.claim_feed("erp-orders", "spec1", "w2", later, later + timedelta(seconds=30))
    assert again is not None and again.cursor == {"id": 41}, "taken over with its cursor"
    changed = await db.claim_feed("erp-orders", "spec2", "w2", later, later + timedelta(seconds=30))
    assert changed is not None and changed.cursor is None and changed.items == 0
    assert await db.save_feed_progress("erp-orders", "w2", {"id": 7}, 5, NOW, NOW)
    kept = await db.claim_feed("erp-orders", "spec2", "w2", later, later + timedelta(seconds=30))
    assert kept is not None and (kept.cursor, kept.items) == ({"id": 7}, 5)
    over = await db.claim_feed("erp-orders", "spec2", "w2", later, later + timedelta(seconds=30), start_over=True)
    assert over is not None and (over.cursor, over.items) == (None, 0), "a restarted load counts from nothing"


async def test_pruning_removes_old_finished_runs_in_batches(db: store.SqlStore, journal: engine.Journal) -> None:
    runs = [await journal.accept(_event(i)) for i in range(5)]
    for accepted in runs[:3]:
        await journal.finish(accepted.run_id, FlowId("f"), store.RunFinish(store.RunStatus.COMPLETED))
    future = datetime.now(UTC) + timedelta(days=1)
    assert await db.prune_finished_runs(future, limit=2) == 2
    assert await db.prune_finished_runs(future, limit=2) == 1
    assert await db.prune_finished_runs(future, limit=2) == 0
    remaining = {s.run_id for s in await db.list_runs(store.RunFilter())}
    assert remaining == {r.run_id for r in runs[3:]}
    with pytest.raises(errors.NotFound):
        await db.load_run(RunId(runs[0].run_id))


async def test_a_heartbeat_does_not_renew_a_run_the_process_does_not_know_it_holds(
    db: store.SqlStore, journal: engine.Journal
) -> None:
    # e.g. the commit of a claim took effect but its answer was lost with the connection
    start = datetime.now(UTC)
    await db.register_worker(store.WorkerInfo("w1", "host-a", 4242, "execute", start, start))
    lease = store.Lease("w1", start + timedelta(seconds=5))
    known, orphan = [await journal.accept(_event(i, lease)) for i in range(2)]
    assert await db.heartbeat("w1", start, start + timedelta(minutes=10), [known.run_id]) == 1
    later = start + timedelta(seconds=6)
    freed = await db.claim_runs("w2", later, later + timedelta(seconds=30), limit=10)
    assert [c.run_id for c in freed] == [orphan.run_id], "the orphan's lease ran out; the known run stays held"


async def test_a_heartbeat_renews_only_the_slots_named_so_a_leaked_slot_comes_free(db: store.SqlStore) -> None:
    # a slot whose release failed (the connection was cut) must not stay held by a live worker
    start = datetime.now(UTC)
    until = start + timedelta(seconds=5)
    in_use = await db.acquire_slot("connection:erp", 2, "w1", "run_a:post", start, until)
    leaked = await db.acquire_slot("connection:erp", 2, "w1", "run_b:post", start, until)
    assert {in_use, leaked} == {0, 1}
    assert await db.acquire_slot("connection:erp", 2, "w2", "run_c:post", start, until) is None, "both held"
    await db.heartbeat("w1", start, start + timedelta(minutes=10), slots=[("connection:erp", in_use or 0)])
    later = start + timedelta(seconds=6)
    taken = await db.acquire_slot("connection:erp", 2, "w2", "run_c:post", later, later + timedelta(seconds=5))
    assert taken == leaked, "the slot nobody renewed came free; the renewed one stays held"


async def test_one_batch_with_a_duplicate_and_a_stale_write_commits_everything_else(
    db: store.SqlStore, journal: engine.Journal
) -> None:
    # on PostgreSQL a batch is pipelined and its checks run before the commit; a failed check must
    # refuse only its own unit, exactly as the statement-by-statement path does
    lease = store.Lease("w1", datetime.now(UTC) + timedelta(seconds=30))
    first = await journal.accept(
        store.NewEvent(FlowId("f"), "v1", "webhook", {}, datetime.now(UTC), "SO-1", lease=lease)
    )
    stale = await journal.accept(_event(2, lease))
    later = datetime.now(UTC) + timedelta(minutes=5)
    [taken] = await db.claim_runs("w2", later, later + timedelta(seconds=30), limit=1, run_ids=[stale.run_id])
    outcomes = await asyncio.gather(
        *[journal.accept(_event(10 + i, lease)) for i in range(20)],
        journal.accept(store.NewEvent(FlowId("f"), "v1", "webhook", {}, datetime.now(UTC), "SO-1", lease=lease)),
        journal.record_step(store.StepRecord(stale.run_id, FlowId("f"), _entry(), epoch=1)),
        journal.record_step(store.StepRecord(first.run_id, FlowId("f"), _entry(), epoch=1)),
        return_exceptions=True,
    )
    *fresh, duplicate, refused, recorded = outcomes
    assert all(isinstance(a, store.Accepted) and not a.is_duplicate for a in fresh), fresh
    assert isinstance(duplicate, store.Accepted) and duplicate.is_duplicate and duplicate.run_id == first.run_id
    assert isinstance(refused, errors.LeaseLost), refused
    assert recorded == []
    assert len((await db.load_run(first.run_id)).journal) == 1
    assert (await db.load_run(stale.run_id)).journal == [] and taken.epoch == 2
