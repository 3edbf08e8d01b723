"""Insight kept current across restarts and by the runs' retention, on both backends: a kept index reads
only the rows appended since; a busy or foreign index file is not used as is; rows older than the
retention are archived, then pruned, and the maps still count them through the archive."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from seamflow import clock, insight, store
from tests.support.wait import eventually

ORDER = insight.CaseFilter("order")


async def _append(db: store.SqlStore, rows: list[store.LogRow]) -> None:
    await db.transact(lambda tx: tx.append_log(rows))


def _business(activity: str, days_ago: float, order: str) -> store.LogRow:
    at = clock.now() - timedelta(days=days_ago)
    return store.LogRow(at, "business", "o2c", "run_1", "step", activity, {"order": order})


def _edges(found: insight.ProcessMap) -> list[tuple[str, str, int]]:
    return [(e.source, e.target, e.frequency) for e in found.edges]


async def _o2c(db: store.SqlStore, order: str, days_ago: float) -> None:
    await _append(
        db,
        [
            _business("订单创建", days_ago, order),
            _business("发货", days_ago - 0.5, order),
            _business("收款", days_ago - 1, order),
        ],
    )


async def test_a_kept_index_reads_only_the_rows_appended_since_a_restart(db: store.SqlStore, tmp_path: Path) -> None:
    path = tmp_path / "insight" / "index.duckdb"
    await _o2c(db, "SO-1", 3)
    first = insight.Insight(db, path)
    assert await first.catch_up() == 3
    first.close()
    await _o2c(db, "SO-2", 2)
    restarted = insight.Insight(db, path)
    assert restarted.index.path == path
    assert restarted.index.last_seq > 0  # the kept events are there before any read of the log
    assert await restarted.catch_up() == 3  # SO-2's three rows: SO-1's are not read again
    found = await restarted.process_map(ORDER)
    assert _edges(found) == [("发货", "收款", 2), ("订单创建", "发货", 2)]
    restarted.close()


async def test_a_kept_index_of_another_log_is_built_again(db: store.SqlStore, tmp_path: Path) -> None:
    path = tmp_path / "index.duckdb"
    other = insight.ProcessIndex(path)  # an index of some other log, with seqs this log has too
    other.append([insight.Event(1, "Foreign", 1_000, (insight.EventObject("order", "X-1"),))])
    other.close()
    await _o2c(db, "SO-1", 3)
    found = insight.Insight(db, path)
    assert _edges(await found.process_map(ORDER)) == [("发货", "收款", 1), ("订单创建", "发货", 1)]
    found.close()


async def test_a_second_process_keeps_its_index_in_memory_while_the_file_is_open(
    db: store.SqlStore, tmp_path: Path
) -> None:
    path = tmp_path / "index.duckdb"
    insight.ProcessIndex(path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys; c = duckdb.connect({str(path)!r}); print('open', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert await asyncio.wait_for(asyncio.to_thread(holder.stdout.readline), timeout=30) == "open\n"
        await _o2c(db, "SO-1", 3)
        found = insight.Insight(db, path)
        assert found.index.path is None
        assert _edges(await found.process_map(ORDER)) == [("发货", "收款", 1), ("订单创建", "发货", 1)]
        found.close()
    finally:
        holder.communicate("", timeout=30)


async def test_rows_older_than_the_retention_are_archived_then_pruned_and_still_counted(
    db: store.SqlStore, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    await _o2c(db, "SO-OLD", 40)
    await _o2c(db, "SO-NEW", 3)
    found = insight.Insight(db, tmp_path / "index.duckdb", archive=archive)
    before = await found.process_map(ORDER)
    assert await found.keep_archived(db, clock.now() - timedelta(days=30)) == 3
    left = await db.list_event_log(limit=100)
    assert [r.objects for r in left] == [{"order": "SO-NEW"}] * 3
    assert (archive / "events.parquet").is_file()
    assert not archive.with_name("archive.writing").exists()
    # Nothing older than the retention is left: no new archive, nothing pruned.
    assert await found.keep_archived(db, clock.now() - timedelta(days=30)) == 0
    assert (await found.process_map(ORDER)).to_json() == before.to_json()
    found.close()
    # Another process (its index in memory) starts from the archive, then reads the live log after it.
    await _o2c(db, "SO-LATEST", 1)
    other = insight.Insight(db, archive=archive)
    after = await other.process_map(ORDER)
    assert after.cases == 3
    assert _edges(after) == [("发货", "收款", 3), ("订单创建", "发货", 3)]
    other.close()


async def test_the_archive_is_written_again_at_most_once_per_interval(db: store.SqlStore, tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    found = insight.Insight(db, archive=archive)
    await _o2c(db, "SO-1", 40)
    assert await found.keep_archived(db, clock.now() - timedelta(days=30), timedelta(hours=1)) == 3
    await _o2c(db, "SO-2", 35)
    # Old enough to go, but the archive was written less than an hour ago: kept in the log for now.
    assert await found.keep_archived(db, clock.now() - timedelta(days=30), timedelta(hours=1)) == 0
    assert len(await db.list_event_log(limit=100)) == 3
    assert await found.keep_archived(db, clock.now() - timedelta(days=30), timedelta(0)) == 3
    assert await db.list_event_log(limit=100) == []
    found.close()


async def test_keep_current_indexes_in_the_background_and_prunes_by_the_retention(
    db: store.SqlStore, tmp_path: Path
) -> None:
    await _o2c(db, "SO-OLD", 40)
    await _o2c(db, "SO-NEW", 3)
    found = insight.Insight(db, tmp_path / "index.duckdb", archive=tmp_path / "archive")
    upkeep = insight.Upkeep(retention=timedelta(days=30), every=timedelta(milliseconds=50))
    task = asyncio.create_task(insight.keep_current(found, db, upkeep))
    try:

        async def pruned_and_indexed() -> None:
            assert len(await db.list_event_log(limit=100)) == 3
            assert found.index.last_seq > 0

        await eventually(pruned_and_indexed, timeout=20)
        await _o2c(db, "SO-LATEST", 1)

        async def indexed_without_a_question() -> None:
            assert (await asyncio.to_thread(insight.discover_map, found.index, ORDER)).cases == 3

        await eventually(indexed_without_a_question, timeout=20)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        found.close()
