"""Live shadows: while one is active, each new live event is also rehearsed with the candidate after the
live run finished — the report shows exactly the changed fields per event, the real target (a running
sink) receives only the live calls, and the shadow stops at its cap of events or when stopped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.acceptance.test_cli import seamflow
from tests.acceptance.test_shadow import CANDIDATE, LIVE, ORDERS
from tests.support.server import make_project, serve
from tests.support.sink import Sink
from tests.support.wait import eventually

LATE_ORDER = {"order_no": "SO-1004", "mobile": "+86 135 0000 1111", "name": "赵磊", "amount": "66.00"}
LATER_ORDER = {"order_no": "SO-1005", "mobile": "13600136000", "name": "陈静", "amount": "12.80"}


async def test_each_live_event_is_mirrored_to_the_candidate_until_the_cap(project_dir: Path, sink: Sink) -> None:
    make_project(project_dir, {"orders": LIVE}, f"erp:\n  connector: http\n  base_url: {sink.url}\n")
    async with serve(project_dir) as server, server.client() as client:
        base = "/api/v1/flows/order-to-erp/shadows"

        async def post(order: dict[str, str]) -> str:
            return str((await client.post("/hooks/shop/orders", json=order)).json()["run_id"])

        async def results(shadow_id: str, count: int) -> list[Any]:
            found = (await client.get(base, params={"shadow": shadow_id})).json()
            assert len(found) == count
            return list(found)

        started = await client.post(f"{base}/live", json={"source": CANDIDATE, "max_events": 3, "minutes": 30})
        assert started.status_code == 201, started.text
        first = started.json()["shadow_id"]
        runs = [await post(order) for order in [*ORDERS, LATE_ORDER]]
        mirrored = await eventually(lambda: results(first, 3), timeout=30)

        async def all_completed() -> None:
            statuses = [(await client.get(f"/api/v1/runs/{r}")).json()["status"] for r in runs]
            assert statuses == ["completed"] * 4

        await eventually(all_completed)
        # a second shadow, started after the fourth run finished, gets the fifth event: the mirror passes
        # over the older shadow first, so by then the first had seen the fourth and fifth runs and kept its cap
        second = (await client.post(f"{base}/live", json={"source": LIVE, "max_events": 10})).json()["shadow_id"]
        fifth = await post(LATER_ORDER)
        (same,) = await eventually(lambda: results(second, 1), timeout=30)
        listed = {s["shadow_id"]: s for s in (await client.get(f"{base}/live")).json()}
        stopped = await client.post(f"{base}/live/{second}/stop")
        stopped_again = await client.post(f"{base}/live/{second}/stop")
        after_stop = {s["shadow_id"]: s for s in (await client.get(f"{base}/live")).json()}
        capped = await results(first, 3)
    assert len(sink.requests) == 2 * 5  # the live calls only: two per order, none from either candidate
    assert [r["run_id"] for r in mirrored] == runs[:3] and capped == mirrored
    expected = {runs[0]: ("+86 138 0013 8000", "13800138000"), runs[2]: ("0086-186-2000-1234", "18620001234")}
    for result in mirrored:
        report = result["report"]
        assert report["outcome"] == {"live": "completed", "candidate": "completed"}
        customer, order = report["calls"]
        assert (order["step"], order["change"], order["fields"]) == ("order", "same", [])
        if result["run_id"] in expected:
            live, candidate = expected[result["run_id"]]
            assert customer["fields"] == [{"field": "json.mobile", "live": live, "candidate": candidate}]
        else:
            assert customer["change"] == "same" and report["is_same"] is True
    assert same["run_id"] == fifth and same["report"]["is_same"] is True  # the live text as candidate: no change
    assert (listed[first]["events"], listed[first]["max_events"], listed[second]["events"]) == (3, 3, 1)
    assert listed[second]["stopped_at"] is None and after_stop[second]["stopped_at"] is not None
    assert stopped.status_code == 200 and stopped.json()["stopped_by"] == after_stop[second]["stopped_by"]
    assert stopped_again.status_code == 404 and stopped_again.json()["code"] == "shadow.not_found"


async def test_a_live_shadow_started_and_stopped_from_the_cli_is_mirrored_by_the_running_serve(
    project_dir: Path, sink: Sink
) -> None:
    make_project(project_dir, {"orders": LIVE}, f"erp:\n  connector: http\n  base_url: {sink.url}\n")
    (project_dir / "candidate.yaml").write_text(CANDIDATE, encoding="utf-8")
    where = ("--project", str(project_dir))
    async with serve(project_dir) as server, server.client() as client:
        started = seamflow("flow", "shadow", "order-to-erp", str(project_dir / "candidate.yaml"), "--live", *where)
        shadow_id = started.stdout.split()[2]
        assert shadow_id.startswith("shd_"), started.stdout
        await client.post("/hooks/shop/orders", json=ORDERS[0])

        async def mirrored() -> list[Any]:
            found = json.loads(
                seamflow("flow", "shadows", "order-to-erp", "--shadow", shadow_id, "--json", *where).stdout
            )
            assert len(found) == 1
            return list(found)

        (result,) = await eventually(mirrored, timeout=30)
    listed = json.loads(seamflow("flow", "shadows", "order-to-erp", "--live", "--json", *where).stdout)
    stopped = seamflow("flow", "shadow-stop", "order-to-erp", shadow_id, *where)
    again = seamflow("flow", "shadow-stop", "order-to-erp", shadow_id, *where, check=False)
    (customer, _) = result["report"]["calls"]
    assert customer["fields"] == [{"field": "json.mobile", "live": "+86 138 0013 8000", "candidate": "13800138000"}]
    assert [(s["shadow_id"], s["events"], s["max_events"]) for s in listed] == [(shadow_id, 1, 100)]
    assert f"live shadow {shadow_id} of order-to-erp stopped" in stopped.stdout
    assert again.returncode != 0 and "shadow.not_found" in again.stdout + again.stderr
