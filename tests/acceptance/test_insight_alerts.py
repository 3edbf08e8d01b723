"""KPI alerts through a flow: `insight.check_alerts` finds the alerts that fire, the next step sends each one
through another connection (here an HTTP sink standing in for a DingTalk robot)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from seamflow import codec
from tests.acceptance.flows import sink_connection
from tests.acceptance.test_cli import seamflow
from tests.acceptance.test_insight import O2C
from tests.support.server import make_project
from tests.support.sink import Sink

ALERT_FLOW = """
id: kpi-alerts
name: KPI 告警
trigger: {manual: {}}
steps:
  - id: check
    action: insight.check_alerts
  - id: notify
    foreach: "{{ steps.check.firing }}"
    as: alert
    steps:
      - id: post
        action: sink.post
        with: {path: /robot, json: {msgtype: text, text: {content: "{{ alert.message }}"}}}
"""

KPIS = """
kpis:
  - {id: order_to_cash, name: 订单处理周期, kind: cycle_time, object_type: order, from: 订单创建, to: Payment received,
     by: [region]}
alerts:
  - {id: slow_cash, kpi: order_to_cash, measure: median_ms, above: 86400000, window: week}
"""


async def test_an_alert_that_fires_is_sent_through_a_connection(tmp_path: Path, sink: Sink) -> None:
    connections = sink_connection(sink.url) + "insight:\n  connector: insight\n  kpi_file: kpis.yaml\n"
    make_project(tmp_path, {"o2c": O2C, "alerts": ALERT_FLOW}, connections)
    (tmp_path / "kpis.yaml").write_text(KPIS, encoding="utf-8")
    now = datetime.now(UTC)
    for order_no, region, days in (("SO-1", "华东", 3), ("SO-2", "华南", 0.5)):
        created = now - timedelta(days=4)
        body = {
            "order_no": order_no,
            "region": region,
            "customer": "C-9",
            "cashier": "王芳",
            "created_at": created.isoformat(),
            "paid_at": (created + timedelta(days=days)).isoformat(),
        }
        seamflow("run", "o2c", "--input", json.dumps(body, ensure_ascii=False), "-p", str(tmp_path))
    # in a thread: the sink answers from this test's event loop
    shown = (await asyncio.to_thread(seamflow, "run", "kpi-alerts", "-p", str(tmp_path))).stdout
    sent = [codec.loads(r.body) for r in sink.requests if r.path == "/robot"]
    assert len(sent) == 1, shown  # 华东 took 3 days (above 1 day); 华南 12 hours
    assert sent[0]["text"]["content"].startswith("订单处理周期 (region=华东): median_ms 2.592e+08 is above 8.64e+07")
