"""KPIs from a YAML file, computed with DuckDB: values checked against a small log worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from seamflow import errors, insight

H = 3_600_000
T0 = int(datetime(2026, 3, 31, 20, 0, tzinfo=UTC).timestamp() * 1000)  # 04:00 on 1 April in Beijing


def _index() -> insight.ProcessIndex:
    def order(case: str, region: str | None = None) -> tuple[insight.EventObject, ...]:
        return (insight.EventObject("order", case, attributes={"region": region} if region else {}),)

    rows = [
        ("SO-1", "合同签约", 0, None, "华东"),
        ("SO-1", "Credit check", 1 * H, None, None),
        ("SO-1", "Credit check", 3 * H, None, None),
        ("SO-1", "Approved by finance", 7 * H, "王芳", None),
        ("SO-1", "Payment received", 10 * H, None, None),
        ("SO-2", "合同签约", 0, None, "华东"),
        ("SO-2", "Approved by finance", 2 * H, "李娜", None),
        ("SO-2", "Payment received", 30 * H, None, None),
        ("SO-3", "合同签约", 5 * H, None, "华南"),
        ("SO-3", "Credit check", 6 * H, None, None),
        ("SO-3", "Approved by finance", 6 * H, "王芳", None),
    ]
    index = insight.ProcessIndex()
    index.append(
        insight.Event(seq, act, T0 + at, order(case, region), resource=who)
        for seq, (case, act, at, who, region) in enumerate(rows, start=1)
    )
    return index


def _kpis(tmp_path: Path, text: str) -> insight.KpiFile:
    path = tmp_path / "kpis.yaml"
    path.write_text(text, encoding="utf-8")
    return insight.load_kpis(path)


def test_cycle_time_by_region_with_sla_share(tmp_path: Path) -> None:
    found = _kpis(
        tmp_path,
        "kpis:\n  - {id: o2c, kind: cycle_time, object_type: order, from: 合同签约, to: Payment received,"
        " sla: 12h, by: [region]}\n",
    )
    result = insight.compute_kpi(_index(), found.kpis[0]).to_json()
    # SO-3 never got paid: it is not measured. SO-1 took 10 h (within 12 h), SO-2 30 h.
    assert result["rows"] == [
        {
            "region": "华东",
            "cases": 2,
            "median_ms": 20 * H,
            "p90_ms": 28 * H,
            "mean_ms": 20 * H,
            "share_within_sla": 0.5,
        }
    ]


def test_waiting_time_per_approver(tmp_path: Path) -> None:
    found = _kpis(
        tmp_path,
        "kpis:\n  - {id: wait, kind: waiting_time, object_type: order, activity: Approved by finance, per: resource}\n",
    )
    rows = insight.compute_kpi(_index(), found.kpis[0]).to_json()["rows"]
    assert rows == [
        {"resource": "李娜", "events": 1, "median_ms": 2 * H, "p90_ms": 2 * H, "mean_ms": 2 * H},
        {"resource": "王芳", "events": 2, "median_ms": 2 * H, "p90_ms": 3.6 * H, "mean_ms": 2 * H},
    ]


def test_throughput_per_month_in_the_files_time_zone(tmp_path: Path) -> None:
    found = _kpis(
        tmp_path,
        'timezone: "+08:00"\nkpis:\n  - {id: signed, kind: throughput, object_type: order, activity: 合同签约,'
        " period: month}\n",
    )
    assert found.offset() == timedelta(hours=8)
    rows = insight.compute_kpi(_index(), found.kpis[0], found.offset()).to_json()["rows"]
    assert rows == [{"period": "2026-04-01", "cases": 3}]  # 31 March 20:00 UTC is April in Beijing
    utc = insight.compute_kpi(_index(), found.kpis[0]).to_json()["rows"]
    assert utc == [{"period": "2026-03-01", "cases": 2}, {"period": "2026-04-01", "cases": 1}]  # SO-3 at 01:00 UTC


def test_rework_counts_cases_that_repeat_the_activity_among_all_cases(tmp_path: Path) -> None:
    found = _kpis(tmp_path, "kpis:\n  - {id: rework, kind: rework, object_type: order, activity: Credit check}\n")
    rows = insight.compute_kpi(_index(), found.kpis[0]).to_json()["rows"]
    assert rows == [{"cases": 3, "rework_cases": 1, "rework_share": pytest.approx(1 / 3, abs=1e-6)}]


def test_a_bad_kpi_file_names_each_problem(tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidInput) as info:
        _kpis(tmp_path, "kpis:\n  - {id: Bad-Id, kind: cycle_time, object_type: order, sla: soon}\n")
    assert info.value.code == "insight.kpi_invalid"
    assert "kpis.0.id" in str(info.value) and "kpis.0.sla: Value error, expected a duration" in str(info.value)
    with pytest.raises(errors.InvalidInput, match=r"kpis\.o2c: a cycle_time KPI needs from and to"):
        _kpis(tmp_path, "kpis:\n  - {id: o2c, kind: cycle_time, object_type: order}\n")


def test_an_unknown_object_type_lists_the_known_ones(tmp_path: Path) -> None:
    found = _kpis(tmp_path, "kpis:\n  - {id: r, kind: rework, object_type: ordr}\n")
    with pytest.raises(errors.NotFound, match="no event touched an object of type 'ordr'; known types: order"):
        insight.compute_kpi(_index(), found.kpis[0])


def test_an_alert_on_a_rise_week_over_week_fires_per_row(tmp_path: Path) -> None:
    now = datetime(2026, 3, 20, tzinfo=UTC)
    start = int((now - timedelta(days=13)).timestamp() * 1000)  # last week's cases start here, this week's 7 d later
    index = insight.ProcessIndex()
    events = []
    for week, wait_h in ((0, 2), (7, 4)):  # the approval wait doubles (+100 %)
        at = start + week * 86_400_000
        case = f"SO-{week}"
        events += [
            insight.Event(len(events) + 1, "Approval requested", at, (insight.EventObject("order", case),)),
            insight.Event(
                len(events) + 2, "Approved", at + wait_h * H, (insight.EventObject("order", case),), resource="王芳"
            ),
        ]
    index.append(events)
    found = _kpis(
        tmp_path,
        "kpis:\n  - {id: wait, kind: waiting_time, object_type: order, activity: Approved, per: resource}\n"
        "alerts:\n  - {id: slower, kpi: wait, measure: median_ms, rise_above: 0.5, window: week}\n"
        "  - {id: never, kpi: wait, measure: median_ms, above: 86400000}\n",
    )
    firing = insight.evaluate_alerts(index, found.kpis, found.alerts, now)
    assert [(f.alert, f.key, f.value, f.compared_with) for f in firing] == [
        ("slower", {"resource": "王芳"}, 4 * H, 2 * H)
    ]
    assert firing[0].message == "wait (resource=王芳): median_ms 1.44e+07 rose from 7.2e+06, last week"


def test_an_alert_on_an_unknown_measure_says_which_exist(tmp_path: Path) -> None:
    found = _kpis(
        tmp_path,
        "kpis:\n  - {id: signed, kind: throughput, object_type: order, activity: 合同签约}\n"
        "alerts:\n  - {id: a, kpi: signed, measure: median_ms, above: 1}\n",
    )
    later = datetime.fromtimestamp(T0 / 1000, UTC) + timedelta(days=1)
    with pytest.raises(errors.InvalidInput, match="the KPI signed has no measure 'median_ms'; expected one of cases"):
        insight.evaluate_alerts(_index(), found.kpis, found.alerts, later)
