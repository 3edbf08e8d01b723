"""The store on its own, on both backends: migrations, group commit, dedupe, journal records, limits."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from seamflow import engine, errors, store
from seamflow.ids import FlowId, RunId
from seamflow.store import schema
from tests.support.db import Database, new_database, postgres_unavailable


def _event(n: int, key: str | None = None, body: object = None) -> store.NewEvent:
    return store.NewEvent(
        FlowId("f"), "v1", "webhook", body if body is not None else {"n": n}, datetime.now(UTC), dedupe_key=key
    )


def test_migrating_from_empty_gives_the_declared_schema(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    assert schema.migrate(conn, "sqlite") == schema.latest_version("sqlite")
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    expected = {"events", "runs", "journal", "timers", "waits", "pending_signals", "schedules", "blobs", "event_log"}
    assert expected <= tables
    assert schema.migrate(conn, "sqlite") == schema.latest_version("sqlite"), "migrating twice changes nothing"


async def test_a_schema_newer_than_the_code_refuses_to_open(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    conn = sqlite3.connect(path, isolation_level=None)
    schema.migrate(conn, "sqlite")
    conn.execute("INSERT INTO schema_version (version) VALUES (999)")
    conn.close()
    with pytest.raises(errors.StoreError, match="schema is version 999"):
        await store.SqliteStore(path).open()


async def test_the_sqlite_default_is_full_durability(tmp_path: Path) -> None:
    db = store.SqliteStore(tmp_path / "d.db")
    await db.open()
    await db.close()
    conn = sqlite3.connect(db.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.durability == "full"
    with pytest.raises(errors.InvalidInput, match="expected one of full, normal"):
        store.SqliteStore(db.path, durability="off")


async def test_concurrent_accepts_share_commits(db: store.SqlStore, journal: engine.Journal) -> None:
    assert db._writer is not None
    before = db._writer.commits
    results = await asyncio.gather(*[journal.accept(_event(i)) for i in range(500)])
    assert len({r.run_id for r in results}) == 500
    assert db._writer.commits - before < 50, "500 concurrent accepts are grouped into few commits"


async def test_same_dedupe_key_concurrently_gives_one_run(db: store.SqlStore, journal: engine.Journal) -> None:
    results = await asyncio.gather(*[journal.accept(_event(i, key="order-1")) for i in range(50)])
    assert len({r.run_id for r in results}) == 1
    assert sum(not r.is_duplicate for r in results) == 1


async def test_a_failing_unit_rolls_back_alone(db: store.SqlStore, journal: engine.Journal) -> None:
    too_big = "x" * (store.JOURNAL_ENTRY_LIMIT_BYTES + 1)
    good, bad = await asyncio.gather(
        journal.accept(_event(1)), journal.accept(_event(2, body={"doc": too_big})), return_exceptions=True
    )
    assert isinstance(good, store.Accepted)
    assert isinstance(bad, errors.InvalidInput) and bad.code == "journal.too_large"
    assert await db.count_runs_by_status() == {"queued": 1}, "nothing of the refused event is stored"


async def test_big_bodies_are_stored_once_by_content(
    db: store.SqlStore, journal: engine.Journal, database: Database
) -> None:
    doc = {"doc": "订单" * 50_000}
    a = await journal.accept(_event(1, body=doc))
    await journal.accept(_event(2, body=doc))
    state = await db.load_run(a.run_id)
    assert state.event_body == doc
    assert database.query("SELECT COUNT(*) FROM blobs") == [(1,)]


async def test_retry_timer_fires_once_and_requeues(db: store.SqlStore, journal: engine.Journal) -> None:
    accepted = await journal.accept(_event(1))
    now = datetime.now(UTC)
    entry = store.JournalEntry("post", 1, 0, "action", store.StepStatus.RETRYING, None, None, {"code": "x"}, now, now)
    timer = store.Timer("post", store.TimerKind.RETRY, now + timedelta(seconds=5))
    await journal.record_step(store.StepRecord(accepted.run_id, FlowId("f"), entry, timer=timer))
    assert (await db.load_run(accepted.run_id)).status is store.RunStatus.WAITING
    assert await journal.fire_timers(now, 10) == []
    fired = await journal.fire_timers(now + timedelta(seconds=6), 10)
    assert fired == [store.DueTimer(accepted.run_id, "post", store.TimerKind.RETRY)]
    assert await journal.fire_timers(now + timedelta(seconds=60), 10) == [], "a timer fires once"
    assert (await db.load_run(accepted.run_id)).status is store.RunStatus.QUEUED


async def test_replay_only_of_failed_runs(db: store.SqlStore, journal: engine.Journal) -> None:
    accepted = await journal.accept(_event(1))
    with pytest.raises(errors.Conflict, match="only failed or dead_letter runs can be replayed"):
        await journal.replay(accepted.run_id)
    with pytest.raises(errors.NotFound):
        await journal.replay(RunId("run_missing"))


async def test_a_schema_newer_than_the_code_refuses_to_open_on_postgres(tmp_path: Path) -> None:
    if reason := postgres_unavailable():
        pytest.skip(reason)
    database = new_database("postgres", tmp_path)
    assert database.url is not None
    first = store.PostgresStore(database.url)
    await first.open()
    await first.close()
    database.query("INSERT INTO schema_version (version) VALUES (999)")
    with pytest.raises(errors.StoreError, match="schema is version 999"):
        await store.PostgresStore(database.url).open()


async def test_postgres_unreachable_or_wrong_credentials_is_a_clear_error_without_the_password() -> None:
    for url, expected in [
        ("postgresql://postgres:s3cr3t-pw@127.0.0.1:1/test", "cannot connect to PostgreSQL at 127.0.0.1:1/test"),
        (
            "postgresql://no_such_user:s3cr3t-pw@127.0.0.1:5432/test",
            "cannot connect to PostgreSQL at 127.0.0.1:5432/test",
        ),
    ]:
        with pytest.raises(errors.StoreError) as caught:
            await store.PostgresStore(url).open()
        assert expected in caught.value.message
        assert "s3cr3t-pw" not in caught.value.message
        assert caught.value.code == "store.unreachable"


async def test_a_claimed_batch_reads_back_like_each_run(db: store.SqlStore, journal: engine.Journal) -> None:
    """`load_runs` (two statements for a batch) gives what `load_run` gives for each; a missing run is left out."""
    t0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    runs = [(await journal.accept(_event(n))).run_id for n in (1, 2, 3)]
    for attempt in (1, 2):
        entry = store.JournalEntry(
            "post", attempt, 0, "action", store.StepStatus.FAILED, None, {"客户": "杭州云栖"}, {"m": "503"}, t0, t0
        )
        await journal.record_step(store.StepRecord(runs[1], FlowId("f"), entry))
    states = await db.load_runs([*runs, RunId("run_missing")])
    assert sorted(states) == sorted(runs)
    for run_id in runs:
        assert states[run_id] == await db.load_run(run_id)
    assert [e.attempt for e in states[runs[1]].journal] == [1, 2]
