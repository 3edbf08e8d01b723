"""Insight over the store's event log on both backends: appended rows are indexed once, late events
land in their place, and a malformed business row is left out without stopping the rest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from seamflow import insight, store

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


async def _append(db: store.SqlStore, rows: list[store.LogRow]) -> None:
    await db.transact(lambda tx: tx.append_log(rows))


def _business(activity: str, at: datetime, objects: object) -> store.LogRow:
    return store.LogRow(at, "business", "o2c", "run_1", "step", activity, objects)  # type: ignore[arg-type]


async def test_the_index_follows_the_log_as_it_grows(db: store.SqlStore) -> None:
    found = insight.Insight(db)
    await _append(
        db,
        [_business("订单创建", T0, {"order": "SO-1"}), _business("发货", T0 + timedelta(hours=2), {"order": "SO-1"})],
    )
    first = await found.process_map(insight.CaseFilter("order"))
    assert [(e.source, e.target, e.median_ms) for e in first.edges] == [("订单创建", "发货", 7_200_000.0)]
    # A late event: its time is before the case's last event, it arrives after it.
    await _append(db, [_business("信用审核", T0 + timedelta(minutes=30), {"order": "SO-1"})])
    second = await found.process_map(insight.CaseFilter("order"))
    assert [(e.source, e.target) for e in second.edges] == [("信用审核", "发货"), ("订单创建", "信用审核")]
    assert await found.catch_up() == 0  # nothing new: nothing read twice
    assert found.index.last_seq == max(r.seq for r in await db.list_event_log(limit=100))
    found.close()


async def test_a_malformed_business_row_is_left_out_and_counted(db: store.SqlStore) -> None:
    await _append(
        db,
        [
            _business("订单创建", T0, {"order": "SO-1"}),
            _business("坏数据", T0, {"order": [[1, 2]]}),
            _business("发货", T0 + timedelta(seconds=1), {"order": "SO-1"}),
            store.LogRow(T0, "run.queued", "o2c", "run_1"),
        ],
    )
    found = insight.Insight(db)
    result = await found.process_map(insight.CaseFilter("order"))
    assert found.skipped == 1
    assert [(e.source, e.target) for e in result.edges] == [("订单创建", "发货")]
    runs = await found.process_map(insight.CaseFilter("run"))
    assert runs.start_activities == {"Run started": 1}
    found.close()


async def test_archived_rows_pruned_from_the_store_still_count_through_the_archive(
    db: store.SqlStore, tmp_path: Path
) -> None:
    await _append(
        db,
        [_business("订单创建", T0, {"order": "SO-1"}), _business("发货", T0 + timedelta(hours=2), {"order": "SO-1"})],
    )
    first = insight.Insight(db)
    through = await first.archive(tmp_path / "archive")
    # Only rows older than the cut go: none is older than T0, so the first prune deletes nothing.
    assert await first.prune_archived(db, through, T0) == 0
    assert await first.prune_archived(db, through, T0 + timedelta(days=1)) == 2
    first.close()
    assert await db.list_event_log() == []
    await _append(db, [_business("收款", T0 + timedelta(hours=5), {"order": "SO-1"})])
    later = insight.Insight(db)
    later.load_archive(tmp_path / "archive")
    found = await later.process_map(insight.CaseFilter("order"))
    assert [(e.source, e.target) for e in found.edges] == [("发货", "收款"), ("订单创建", "发货")]
    later.close()
