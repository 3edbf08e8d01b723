"""The Insight page's answers on a growing log (both backends): the last result is answered at once,
saying when it was computed and how many events arrived since, while a recompute runs in the
background; `fresh` and a result older than the allowed age are recomputed before answering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from seamflow import insight, store
from tests.support.wait import eventually

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
PAID = insight.Kpi.model_validate({"id": "paid", "kind": "throughput", "object_type": "order", "activity": "回款"})


async def _order(db: store.SqlStore, number: int) -> None:
    order = {"order": f"SO-{number}"}
    rows = [
        store.LogRow(T0, "business", "o2c", f"run_{number}", "step", "订单创建", order),
        store.LogRow(T0 + timedelta(days=1), "business", "o2c", f"run_{number}", "step", "回款", order),
    ]
    await db.transact(lambda tx: tx.append_log(rows))


async def test_a_kpi_is_answered_from_its_last_result_while_the_new_events_are_counted_in_the_background(
    db: store.SqlStore,
) -> None:
    found = insight.Insight(db)
    found.recent.every = timedelta(0)  # a recompute at the first question after the event
    computed: list[int] = []

    async def paid() -> insight.KpiResult:
        computed.append(1)
        return await found.kpi(PAID)

    await _order(db, 1)
    first = await found.recent.answer("paid", paid)
    assert first.value.to_json()["rows"] == [{"cases": 1}] and first.arrived_since == 0 and len(computed) == 1
    await _order(db, 2)
    stale = await found.recent.answer("paid", paid)
    assert stale.value is first.value, "the last result answers at once"
    assert (stale.computed_at, stale.through_seq, stale.arrived_since) == (first.computed_at, first.through_seq, 2)

    async def counted() -> None:
        later = await found.recent.answer("paid", paid)
        assert later.value.to_json()["rows"] == [{"cases": 2}] and later.through_seq == first.through_seq + 2
        assert later.arrived_since == 0 and later.computed_at >= first.computed_at

    await eventually(counted, timeout=10)
    assert len(computed) == 2, "one recompute in the background, however often it was asked meanwhile"
    await _order(db, 3)
    fresh = await found.recent.answer("paid", paid, is_fresh=True)
    assert fresh.value.to_json()["rows"] == [{"cases": 3}] and fresh.arrived_since == 0, (
        "fresh: the new order counted at once"
    )
    found.close()


async def test_a_question_is_recomputed_in_the_background_at_most_once_every_interval(db: store.SqlStore) -> None:
    found = insight.Insight(db)
    found.recent.every = timedelta(hours=1)
    await _order(db, 1)
    first = await found.recent.answer("paid", lambda: found.kpi(PAID))
    await _order(db, 2)
    for _ in range(3):
        stale = await found.recent.answer("paid", lambda: found.kpi(PAID))
        assert stale.value is first.value and stale.arrived_since == 2
    assert not found.recent.is_recomputing("paid"), "computed less than an hour ago: no recompute yet"
    fresh = await found.recent.answer("paid", lambda: found.kpi(PAID), is_fresh=True)
    assert fresh.value.to_json()["rows"] == [{"cases": 2}]
    found.close()


async def test_a_result_older_than_the_allowed_age_is_recomputed_before_answering(db: store.SqlStore) -> None:
    found = insight.Insight(db)
    found.recent.max_age = timedelta(0)
    await _order(db, 1)
    first = await found.recent.answer("paid", lambda: found.kpi(PAID))
    again = await found.recent.answer("paid", lambda: found.kpi(PAID))
    assert again.value is first.value, "nothing arrived: the result is current however old"
    await _order(db, 2)
    later = await found.recent.answer("paid", lambda: found.kpi(PAID))
    assert later.value.to_json()["rows"] == [{"cases": 2}] and later.arrived_since == 0
    found.close()


async def test_the_upkeep_refreshes_the_answers_asked_lately(db: store.SqlStore) -> None:
    found = insight.Insight(db)
    await _order(db, 1)
    await found.recent.answer("paid", lambda: found.kpi(PAID))
    await _order(db, 2)
    await found.catch_up()
    assert await found.recent.refresh() == 1
    assert await found.recent.refresh() == 0, "nothing read since: nothing recomputed"
    later = await found.recent.answer("paid", lambda: found.kpi(PAID))
    assert later.value.to_json()["rows"] == [{"cases": 2}] and later.arrived_since == 0
    found.close()
