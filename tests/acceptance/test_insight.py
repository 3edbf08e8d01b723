"""Process insight end to end: flows emit business events; `seamflow kpi`, `seamflow insight map|export`
and `/api/v1/insight/…` answer from the event log."""

from __future__ import annotations

import json
from pathlib import Path

from tests.acceptance.test_cli import seamflow
from tests.support.server import make_project, serve

O2C = """
id: o2c
name: 订单到收款
manual_minutes: 12
trigger: {manual: {}}
steps:
  - id: created
    emit:
      activity: 订单创建
      time: "{{ event.body.created_at }}"
      objects:
        order: {id: "{{ event.body.order_no }}", attributes: {region: "{{ event.body.region }}"}}
        customer: "{{ event.body.customer }}"
  - id: paid
    emit:
      activity: Payment received
      time: "{{ event.body.paid_at }}"
      objects: {order: "{{ event.body.order_no }}"}
      attributes: {resource: "{{ event.body.cashier }}"}
"""

KPIS = """
timezone: "+08:00"
kpis:
  - {id: order_to_cash, name: 订单处理周期, kind: cycle_time, object_type: order, from: 订单创建,
     to: Payment received, by: [region], sla: 2d}
"""

ORDERS = [
    ("SO-2026-0001", "华东", "2026-03-02T09:00:00.250+08:00", "2026-03-03T09:00:00.250+08:00", "王芳"),
    ("SO-2026-0002", "华东", "2026-03-02T10:00:00+08:00", "2026-03-06T10:00:00+08:00", "王芳"),
    ("SO-2026-0003", "华南", "2026-03-05T10:00:00+08:00", "2026-03-05T22:00:00+08:00", "李娜"),
]


def _run_orders(project: Path) -> None:
    for order_no, region, created, paid, cashier in ORDERS:
        body = {
            "order_no": order_no,
            "region": region,
            "created_at": created,
            "paid_at": paid,
            "customer": "C-9",
            "cashier": cashier,
        }
        seamflow("run", "o2c", "--input", json.dumps(body, ensure_ascii=False), "-p", str(project))


def test_kpi_and_map_commands_read_the_emitted_events(tmp_path: Path) -> None:
    make_project(tmp_path, {"o2c": O2C})
    (tmp_path / "kpis.yaml").write_text(KPIS, encoding="utf-8")
    _run_orders(tmp_path)
    kpis = json.loads(seamflow("kpi", "--json", "-p", str(tmp_path)).stdout)
    assert kpis[0]["rows"] == [
        {
            "region": "华东",
            "cases": 2,
            "median_ms": 2.5 * 86_400_000,
            "p90_ms": 3.7 * 86_400_000,
            "mean_ms": 2.5 * 86_400_000,
            "share_within_sla": 0.5,
        },
        {
            "region": "华南",
            "cases": 1,
            "median_ms": 43_200_000,
            "p90_ms": 43_200_000,
            "mean_ms": 43_200_000,
            "share_within_sla": 1.0,
        },
    ]
    html = tmp_path / "map.html"
    found = json.loads(
        seamflow(
            "insight",
            "map",
            "--object-type",
            "order",
            "--where",
            "region=华东",
            "--html",
            str(html),
            "--json",
            "-p",
            str(tmp_path),
        ).stdout
    )
    assert found["cases"] == 2
    assert [(e["source"], e["target"], e["frequency"]) for e in found["edges"]] == [("订单创建", "Payment received", 2)]
    assert "订单创建" in html.read_text(encoding="utf-8")
    report = json.loads(
        seamflow(
            "insight", "conformance", "--object-type", "order", "--flow", "o2c", "--json", "-p", str(tmp_path)
        ).stdout
    )
    assert (report["designed"], report["conforming"], report["deviations"]) == (["订单创建", "Payment received"], 3, [])
    saved = json.loads(seamflow("insight", "value", "--json", "-p", str(tmp_path)).stdout)
    assert saved == [{"flow": "o2c", "runs": 3, "manual_minutes": 12, "minutes_saved": 36, "hours_saved": 0.6}]
    table = seamflow("kpi", "-p", str(tmp_path)).stdout
    assert "订单处理周期" in table and "2.5 d" in table and "50.0%" in table
    parts = json.loads(seamflow("kpi", "--before-after", "2026-03-03", "--json", "-p", str(tmp_path)).stdout)
    assert [(p["part"], [r["cases"] for r in p["rows"]]) for p in parts] == [("before", [2]), ("after", [1])]


def test_export_xes_from_the_store_and_map_of_the_exported_log(tmp_path: Path) -> None:
    make_project(tmp_path, {"o2c": O2C})
    _run_orders(tmp_path)
    out = tmp_path / "orders.xes"
    assert (
        "3 traces"
        in seamflow("insight", "export", "xes", str(out), "--object-type", "order", "-p", str(tmp_path)).stdout
    )
    kept = tmp_path / "orders.duckdb"
    again = json.loads(
        seamflow("insight", "map", "--object-type", "order", "--log", str(out), "--index", str(kept), "--json").stdout
    )
    assert again["cases"] == 3 and again["start_activities"] == {"订单创建": 3}
    asked_again = json.loads(
        seamflow("insight", "map", "--object-type", "order", "--log", str(out), "--index", str(kept), "--json").stdout
    )
    assert asked_again["events"] == again["events"]  # the kept index answers: the file's events counted once
    table = seamflow(
        "insight", "conformance", "--object-type", "order", "--designed", "Payment received,订单创建", "--log", str(out)
    ).stdout
    assert "0 of 3 cases followed the designed path" in table and "out_of_order" in table


async def test_api_map_kpis_and_export(tmp_path: Path) -> None:
    make_project(tmp_path, {"o2c": O2C})
    _run_orders(tmp_path)
    async with serve(tmp_path) as server, server.client() as client:
        found = (await client.get("/api/v1/insight/map", params={"object_type": "order"})).json()
        assert found["cases"] == 3 and found["end_activities"] == {"Payment received": 3}
        svg = await client.get("/api/v1/insight/map", params={"object_type": "order", "format": "svg"})
        assert svg.headers["content-type"].startswith("image/svg+xml") and "订单创建" in svg.text
        kpis = await client.post(
            "/api/v1/insight/kpis",
            json={
                "kpis": [{"id": "paid", "kind": "throughput", "object_type": "order", "activity": "Payment received"}]
            },
        )
        assert kpis.json() == [{"id": "paid", "name": "paid", "kind": "throughput", "rows": [{"cases": 3}]}]
        report = await client.get(
            "/api/v1/insight/conformance",
            params={"object_type": "order", "designed": ["订单创建", "Credit check", "Payment received"]},
        )
        assert report.json()["deviations"] == [
            {"kind": "skipped", "activity": "Credit check", "cases": 3, "examples": [o[0] for o in ORDERS]}
        ]
        diagnosis = (await client.get("/api/v1/insight/diagnosis", params={"object_type": "order"})).json()
        assert diagnosis["findings"][0]["kind"] == "bottleneck" and diagnosis["findings"][0]["cases"] == 3
        unknown = await client.get("/api/v1/insight/map", params={"object_type": "ordr"})
        assert unknown.status_code == 404 and unknown.json()["code"] == "insight.object_type_unknown"
        ocel = await client.get("/api/v1/insight/export", params={"format": "ocel-json"})
        assert sorted(o["id"] for o in ocel.json()["objects"] if o["type"] == "order") == [o[0] for o in ORDERS]


async def test_serve_keeps_the_index_current_in_a_file_that_outlives_a_restart(tmp_path: Path) -> None:
    from seamflow import insight
    from tests.support.wait import eventually

    make_project(tmp_path, {"o2c": O2C})
    _run_orders(tmp_path)
    kept = tmp_path / ".seamflow" / "insight" / "index.duckdb"
    async with serve(tmp_path) as server:
        # No question asked: the index is read from the log in the background at start.
        async def file_written() -> None:
            assert kept.is_file()

        await eventually(file_written, timeout=20)
        await server.stop()
        index = insight.ProcessIndex(kept)
        assert insight.discover_map(index, insight.CaseFilter("order")).cases == 3
        index.close()
        await server.start()  # the kept index: the first question reads only the rows since
        async with server.client() as client:
            found = (await client.get("/api/v1/insight/map", params={"object_type": "order"})).json()
        assert found["cases"] == 3 and found["end_activities"] == {"Payment received": 3}
