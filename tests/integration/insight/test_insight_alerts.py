"""Repeated alerts: a condition that holds is notified when it starts to fire, again only after
`repeat_after`, and (with `notify_resolved`) once when it stops."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from seamflow import connectors, errors, insight, store

H = 3_600_000
NOW = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)


def _index() -> insight.ProcessIndex:
    """Two orders created 20 hours before NOW: finance approved 华东's after 3 hours, 华南's after half an hour."""
    start = int((NOW - timedelta(hours=20)).timestamp() * 1000)
    index = insight.ProcessIndex()
    events = []
    for case, region, wait_h in (("SO-2026-0101", "华东", 3), ("SO-2026-0102", "华南", 0.5)):
        order = (insight.EventObject("order", case, attributes={"region": region}),)
        seq = len(events) + 1
        events += [
            insight.Event(seq, "Sales order created", start, order),
            insight.Event(seq + 1, "Approved by finance", start + round(wait_h * H), order, resource="王芳"),
        ]
    index.append(events)
    return index


def _rules(tmp_path: Path, alert: str) -> insight.KpiFile:
    path = tmp_path / "kpis.yaml"
    path.write_text(
        "kpis:\n  - {id: approval, kind: cycle_time, object_type: order, from: Sales order created,"
        " to: Approved by finance, by: [region]}\n"
        f"alerts:\n  - {alert}\n",
        encoding="utf-8",
    )
    return insight.load_kpis(path)


def _check(
    memory: insight.AlertMemory, index: insight.ProcessIndex, spec: insight.KpiFile, now: datetime
) -> insight.Notifications:
    firing = insight.evaluate_alerts(index, spec.kpis, spec.alerts, now)
    return memory.sort(firing, spec.alerts, now)


def test_an_alert_that_keeps_firing_is_notified_once_without_repeat_after(tmp_path: Path) -> None:
    spec = _rules(tmp_path, "{id: slow, kpi: approval, measure: median_ms, above: 3600000, window: week}")
    index, memory = _index(), insight.AlertMemory()
    first = _check(memory, index, spec, NOW)
    assert [(f.alert, f.key) for f in first.firing] == [("slow", {"region": "华东"})]
    for hours in (1, 24, 24 * 6):
        later = _check(memory, index, spec, NOW + timedelta(hours=hours))
        assert (later.firing, later.held) == ((), 1)


def test_an_alert_that_keeps_firing_is_notified_again_after_repeat_after(tmp_path: Path) -> None:
    spec = _rules(
        tmp_path, "{id: slow, kpi: approval, measure: median_ms, above: 3600000, window: week, repeat_after: 1d}"
    )
    index, memory = _index(), insight.AlertMemory()
    assert len(_check(memory, index, spec, NOW).firing) == 1
    assert _check(memory, index, spec, NOW + timedelta(hours=23)).held == 1
    again = _check(memory, index, spec, NOW + timedelta(hours=24))
    assert [f.key for f in again.firing] == [{"region": "华东"}]
    assert _check(memory, index, spec, NOW + timedelta(hours=30)).firing == ()  # the clock restarts at the repeat


def test_an_alert_that_stops_firing_is_resolved_once_and_fires_anew_later(tmp_path: Path) -> None:
    spec = _rules(
        tmp_path,
        "{id: slow, kpi: approval, measure: median_ms, above: 3600000, window: day, notify_resolved: true}",
    )
    index, memory = _index(), insight.AlertMemory()
    assert len(_check(memory, index, spec, NOW).firing) == 1
    quiet = _check(memory, index, spec, NOW + timedelta(days=3))  # the window holds no case any more
    assert quiet.firing == () and quiet.held == 0
    assert [(f.alert, f.key) for f in quiet.resolved] == [("slow", {"region": "华东"})]
    assert quiet.resolved[0].message.startswith("Back to normal (was: approval (region=华东): median_ms 1.08e+07")
    assert _check(memory, index, spec, NOW + timedelta(days=4)).resolved == ()
    assert len(_check(memory, index, spec, NOW).firing) == 1  # firing again is a new transition: notified


def test_a_resolved_alert_is_not_notified_without_notify_resolved(tmp_path: Path) -> None:
    spec = _rules(tmp_path, "{id: slow, kpi: approval, measure: median_ms, above: 3600000, window: day}")
    index, memory = _index(), insight.AlertMemory()
    assert len(_check(memory, index, spec, NOW).firing) == 1
    assert _check(memory, index, spec, NOW + timedelta(days=3)).resolved == ()


def test_a_bad_repeat_after_says_what_was_expected(tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidInput, match=r"alerts\.0\.repeat_after: Value error, expected a duration"):
        _rules(tmp_path, "{id: slow, kpi: approval, measure: median_ms, above: 1, repeat_after: daily}")


async def test_check_alerts_twice_in_one_process_sends_once_and_holds_the_repeat(
    db: store.SqlStore, tmp_path: Path
) -> None:
    created = datetime.now(UTC) - timedelta(hours=20)
    rows = [
        store.LogRow(at, "business", "o2c", "run_1", "step", activity, {"order": {"id": case, "attributes": attrs}})
        for case, attrs, wait_h in (("SO-2026-0201", {"region": "华东"}, 3), ("SO-2026-0202", {"region": "华南"}, 0.5))
        for at, activity in (
            (created, "Sales order created"),
            (created + timedelta(hours=wait_h), "Approved by finance"),
        )
    ]
    await db.transact(lambda tx: tx.append_log(rows))
    _rules(tmp_path, "{id: slow, kpi: approval, measure: median_ms, above: 3600000, window: week}")
    found = insight.Insight(db)
    checker = insight.InsightConnector(found, tmp_path)
    await checker.open(connectors.Connection("insight", "insight", {"kpi_file": "kpis.yaml"}))
    first = await checker.call("check_alerts", {}, idempotency_key="run_a:check:0")
    second = await checker.call("check_alerts", {}, idempotency_key="run_b:check:0")
    assert isinstance(first, dict) and isinstance(second, dict)
    assert (first["count"], first["held"]) == (1, 0)
    assert first["firing"][0]["key"] == {"region": "华东"}  # type: ignore[index]
    assert (second["count"], second["firing"], second["held"], second["resolved"]) == (0, [], 1, [])
    found.close()
