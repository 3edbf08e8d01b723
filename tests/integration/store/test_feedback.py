"""Feedback in the store: kept with its event-log row, listed newest first, closed once, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from seamflow import errors, store

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def _feedback(n: int, **changes: object) -> store.StoredFeedback:
    values: dict[str, object] = {
        "id": f"fb_{n:03d}",
        "kind": "problem",
        "flow_id": "purchase-approval",
        "run_id": f"run_{n:03d}",
        "step": "finance",
        "body": "这个审批总是在等财务总监 (this approval always waits for the finance director)",
        "author": "wang.fang",
        "created_at": NOW + timedelta(minutes=n),
    }
    values.update(changes)
    return store.StoredFeedback(**values)  # type: ignore[arg-type]


async def test_feedback_is_kept_with_its_event_log_row(db: store.SqlStore) -> None:
    await db.add_feedback(_feedback(1))
    [kept] = await db.list_feedback(store.FeedbackFilter())
    assert kept == _feedback(1)
    [row] = [r for r in await db.list_event_log(limit=1000) if r.kind.startswith("feedback.")]
    assert (row.kind, row.flow_id, row.run_id, row.path) == (
        "feedback.created",
        "purchase-approval",
        "run_001",
        "finance",
    )
    assert row.objects == {"feedback": "fb_001", "flow": "purchase-approval"}
    assert row.attributes == {"kind": "problem", "who": "wang.fang", "text": _feedback(1).body}


async def test_closing_feedback_keeps_the_note_and_logs_it_once(db: store.SqlStore) -> None:
    await db.add_feedback(_feedback(1))
    closed = await db.close_feedback("fb_001", "li.na", "已增加副总监为备选审批人", NOW + timedelta(hours=2))
    assert (closed.closed_by, closed.close_note) == ("li.na", "已增加副总监为备选审批人")
    with pytest.raises(errors.Conflict, match=r"closed by li\.na"):
        await db.close_feedback("fb_001", "zhang.wei", "again", NOW + timedelta(hours=3))
    with pytest.raises(errors.NotFound):
        await db.close_feedback("fb_404", "li.na", "note", NOW)
    assert await db.list_feedback(store.FeedbackFilter(is_open=True)) == []
    assert await db.list_feedback(store.FeedbackFilter(is_open=False)) == [closed]
    kinds = [r.kind for r in await db.list_event_log(limit=1000) if r.kind.startswith("feedback.")]
    assert kinds == ["feedback.created", "feedback.closed"]


async def test_feedback_pages_newest_first_by_keyset_and_filters_by_flow(db: store.SqlStore) -> None:
    for n in range(1, 8):
        await db.add_feedback(_feedback(n, flow_id="order-to-erp" if n % 2 else "purchase-approval"))
    first = await db.list_feedback(store.FeedbackFilter(limit=3))
    assert [f.id for f in first] == ["fb_007", "fb_006", "fb_005"]
    last = first[-1]
    rest = await db.list_feedback(store.FeedbackFilter(before=(last.created_at, last.id), limit=10))
    assert [f.id for f in rest] == ["fb_004", "fb_003", "fb_002", "fb_001"]
    orders = await db.list_feedback(store.FeedbackFilter(flow_id="order-to-erp"))
    assert [f.id for f in orders] == ["fb_007", "fb_005", "fb_003", "fb_001"]
