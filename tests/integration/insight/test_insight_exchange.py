"""OCEL 2.0 and XES exports that pm4py reads back (Chinese names, sub-second times), and CSV/XES imports."""

from __future__ import annotations

import json
import warnings
from datetime import UTC, datetime
from pathlib import Path

import pytest

from seamflow import errors, insight

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    pd = pytest.importorskip("pandas")
    pm4py = pytest.importorskip("pm4py")

T0 = int(datetime(2026, 3, 2, 9, 30, tzinfo=UTC).timestamp() * 1000)


def _index() -> insight.ProcessIndex:
    order = insight.EventObject
    index = insight.ProcessIndex()
    index.append(
        [
            insight.Event(
                1,
                "订单创建",
                T0 + 125,
                (order("order", "SO-1", attributes={"region": "华东"}), order("customer", "C-9")),
                links=(insight.ObjectLink("order", "SO-1", "customer", "C-9", "placed by"),),
            ),
            insight.Event(2, "信用审核", T0 + 125, (order("order", "SO-1"),), resource="王芳"),
            insight.Event(3, "订单创建", T0 + 999, (order("order", "SO-2"), order("customer", "C-9"))),
            insight.Event(4, "发货 & 开票 <快递>", T0 + 61_001, (order("order", "SO-1"), order("order", "SO-2"))),
            insight.Event(5, "收款", T0 + 3_600_000 + 7, (order("order", "SO-2"),)),
        ]
    )
    return index


def _quiet(call, *args, **kwargs):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call(*args, **kwargs)


def test_xes_export_reads_back_in_pm4py_with_chinese_names_and_milliseconds(tmp_path: Path) -> None:
    index = _index()
    path = tmp_path / "orders.xes"
    assert insight.export_xes(index, "order", path) == 2
    log = _quiet(pm4py.read_xes, str(path))
    rows = [
        (r["case:concept:name"], round(r["time:timestamp"].timestamp() * 1000), r["concept:name"])
        for _, r in log.iterrows()
    ]  # in file order: the tie at T0 + 125 keeps the ingest order
    assert rows == [
        ("SO-1", T0 + 125, "订单创建"),
        ("SO-1", T0 + 125, "信用审核"),
        ("SO-1", T0 + 61_001, "发货 & 开票 <快递>"),
        ("SO-2", T0 + 999, "订单创建"),
        ("SO-2", T0 + 61_001, "发货 & 开票 <快递>"),
        ("SO-2", T0 + 3_600_007, "收款"),
    ]
    dfg, _, _ = _quiet(pm4py.discover_dfg, log)
    ours = insight.discover_map(index, insight.CaseFilter("order"))
    assert dict(dfg) == {(e.source, e.target): e.frequency for e in ours.edges}


def test_xes_export_reads_back_through_our_reader(tmp_path: Path) -> None:
    path = tmp_path / "orders.xes"
    insight.export_xes(_index(), "order", path)
    events = insight.read_xes_log(path, object_type="order")
    assert [(e.objects[0].id, e.activity, e.at_ms) for e in events][:3] == [
        ("SO-1", "订单创建", T0 + 125),
        ("SO-1", "信用审核", T0 + 125),
        ("SO-1", "发货 & 开票 <快递>", T0 + 61_001),
    ]
    assert events[1].resource == "王芳"


def test_ocel_json_export_reads_back_in_pm4py(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonocel"
    assert insight.export_ocel_json(_index(), path) == 5
    ocel = _quiet(pm4py.read_ocel2_json, str(path))
    assert sorted(ocel.events["ocel:activity"]) == sorted(
        ["订单创建", "信用审核", "订单创建", "发货 & 开票 <快递>", "收款"]
    )
    assert sorted(ocel.objects["ocel:oid"]) == ["C-9", "SO-1", "SO-2"]
    assert len(ocel.relations) == 8
    assert list(ocel.o2o[["ocel:oid", "ocel:oid_2"]].itertuples(index=False, name=None)) == [("SO-1", "C-9")]
    times = sorted(round(t.timestamp() * 1000) for t in ocel.events["ocel:timestamp"])
    assert times[:2] == [T0 + 125, T0 + 125] and times[-1] == T0 + 3_600_007


def test_ocel_json_export_streamed_in_small_slices_is_the_same_document(tmp_path: Path) -> None:
    index = _index()
    whole, sliced = tmp_path / "whole.jsonocel", tmp_path / "sliced.jsonocel"
    assert insight.export_ocel_json(index, whole) == 5
    # Slices of 2 events and 2 objects: 3 slices of events, 2 of objects, one of them not full.
    assert insight.export_ocel_json(index, sliced, slice_size=2) == 5
    assert sliced.read_text(encoding="utf-8") == whole.read_text(encoding="utf-8")
    document = json.loads(sliced.read_text(encoding="utf-8"))
    assert [e["id"] for e in document["events"]] == ["e1", "e2", "e3", "e4", "e5"]
    assert [o["id"] for o in document["objects"]] == ["SO-1", "C-9", "SO-2"]


def test_ocel_json_export_of_an_empty_log_is_a_valid_document(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonocel"
    assert insight.export_ocel_json(insight.ProcessIndex(), path) == 0
    assert json.loads(path.read_text(encoding="utf-8")) == {
        "objectTypes": [],
        "eventTypes": [],
        "objects": [],
        "events": [],
    }


def test_ocel_sqlite_export_reads_back_in_pm4py(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite"
    assert insight.export_ocel_sqlite(_index(), path) == 5
    ocel = _quiet(pm4py.read_ocel2_sqlite, str(path))
    assert sorted(ocel.events["ocel:activity"]) == sorted(
        ["订单创建", "信用审核", "订单创建", "发货 & 开票 <快递>", "收款"]
    )
    assert len(ocel.relations) == 8
    assert sorted(set(ocel.objects["ocel:type"])) == ["customer", "order"]


def test_csv_import_keeps_file_order_for_ties_and_reads_naive_times_as_utc(tmp_path: Path) -> None:
    path = tmp_path / "erp.csv"
    path.write_text(
        "单号,动作,时间,区域\nSO-7,订单创建,2026-03-02 09:30:00.125,华东\nSO-7,信用审核,2026-03-02 09:30:00.125,华东\n",
        encoding="utf-8",
    )
    events = insight.read_csv_log(path, case="单号", activity="动作", timestamp="时间", object_type="order")
    assert [(e.seq, e.activity, e.at_ms) for e in events] == [(1, "订单创建", T0 + 125), (2, "信用审核", T0 + 125)]
    assert events[0].objects[0].attributes == {"区域": "华东"}


def test_csv_import_names_the_missing_column_and_the_bad_time(tmp_path: Path) -> None:
    path = tmp_path / "erp.csv"
    path.write_text("case,activity,time\nSO-7,a,yesterday\n", encoding="utf-8")
    with pytest.raises(errors.InvalidInput, match="no column when; the header has case, activity, time"):
        insight.read_csv_log(path, case="case", activity="activity", timestamp="when", object_type="order")
    with pytest.raises(errors.InvalidInput, match=r"erp.csv:2 time: got 'yesterday'; expected an ISO 8601 time"):
        insight.read_csv_log(path, case="case", activity="activity", timestamp="time", object_type="order")


def test_map_html_is_self_contained_and_escapes_names() -> None:
    page = insight.map_html(insight.discover_map(_index(), insight.CaseFilter("order")), "订单 <O2C>")
    assert "发货 &amp; 开票 &lt;快递&gt;" in page
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert [u for u in ("http://", "https://") if u in page.replace("http://www.w3.org/2000/svg", "")] == []
    assert page.count("<svg") == 1 and "2 cases" in page
