"""The flow editor's routes on a real `seamflow serve`, on both backends: a save is checked like
`seamflow flow validate`, written round-tripped and reloaded; it needs `If-Match`, and a save
from a stale version is a 409 with a diff, never an overwrite."""

from __future__ import annotations

from pathlib import Path

from tests.support.runs import run_in_status
from tests.support.server import make_project, serve

FLOW = """\
# 销售订单进 ERP：金额超过 5000 元的先等复核
id: order-to-erp
name: 订单 → ERP
trigger: {manual: {}}
steps:
  - id: order                     # the order as the ERP wants it
    transform: {number: "{{ event.body.order_no }}", amount: "{{ event.body.amount | cents }}"}
  - id: check
    if: "{{ event.body.amount > 5000 }}"
    then:
      # a person looks at big orders
      - id: review
        wait: {signal: order.reviewed, key: "{{ event.body.order_no }}", timeout: 1d}
on_error: dead_letter
"""
CONNECTIONS = """\
erp:
  connector: http
  base_url: http://127.0.0.1:9
"""


async def _source(client, flow_id: str = "order-to-erp") -> dict:  # type: ignore[no-untyped-def]
    answer = await client.get(f"/api/v1/flows/{flow_id}/source")
    assert answer.status_code == 200, answer.text
    assert answer.headers["etag"] == answer.json()["etag"]
    return answer.json()


async def test_a_save_changes_only_the_changed_line_and_reloads_the_flow(project_dir: Path) -> None:
    make_project(project_dir, {"order": FLOW}, CONNECTIONS)
    async with serve(project_dir) as server, server.client() as client:
        loaded = await _source(client)
        assert loaded["path"] == "flows/order.yaml" and loaded["source"] == FLOW
        flow = loaded["flow"]
        flow["steps"][1]["then"][0]["wait"]["timeout"] = "2d"
        answer = await client.put(
            "/api/v1/flows/order-to-erp/source", json={"flow": flow}, headers={"If-Match": loaded["etag"]}
        )
        assert answer.status_code == 200, answer.text
        version = (await client.get("/api/v1/flows/order-to-erp")).json()["version"]
        assert answer.json()["etag"] == f'"{version}"' and answer.json()["reload"]["changed"] == ["order-to-erp"]
    saved = (project_dir / "flows" / "order.yaml").read_text(encoding="utf-8")
    assert saved == FLOW.replace("timeout: 1d}", "timeout: 2d}")


async def test_a_save_without_if_match_is_refused_and_a_stale_one_gets_the_conflict(project_dir: Path) -> None:
    make_project(project_dir, {"order": FLOW})
    async with serve(project_dir) as server, server.client() as client:
        loaded = await _source(client)
        first, second = dict(loaded["flow"]), dict(loaded["flow"])
        first["name"] = "订单 → ERP（王芳改）"
        second["name"] = "订单 → ERP（李强改）"
        bare = await client.put("/api/v1/flows/order-to-erp/source", json={"flow": first})
        assert (bare.status_code, bare.json()["code"]) == (428, "flow.precondition_required")
        ok = await client.put(
            "/api/v1/flows/order-to-erp/source", json={"flow": first}, headers={"If-Match": loaded["etag"]}
        )
        assert ok.status_code == 200, ok.text
        late = await client.put(
            "/api/v1/flows/order-to-erp/source", json={"flow": second}, headers={"If-Match": loaded["etag"]}
        )
        assert (late.status_code, late.json()["code"]) == (409, "flow.conflict")
        conflict = late.json()
        assert conflict["current"]["etag"] == ok.json()["etag"] == late.headers["etag"]
        assert conflict["current"]["flow"]["name"] == "订单 → ERP（王芳改）"
        assert "-name: 订单 → ERP（王芳改）\n+name: 订单 → ERP（李强改）\n" in conflict["diff"]
        merged = await client.put(
            "/api/v1/flows/order-to-erp/source",
            json={"flow": second},
            headers={"If-Match": conflict["current"]["etag"]},
        )
        assert merged.status_code == 200
    assert "name: 订单 → ERP（李强改）\n" in (project_dir / "flows" / "order.yaml").read_text(encoding="utf-8")


async def test_an_invalid_flow_is_a_422_with_file_line_column_and_nothing_is_written(project_dir: Path) -> None:
    make_project(project_dir, {"order": FLOW})
    async with serve(project_dir) as server, server.client() as client:
        loaded = await _source(client)
        broken = FLOW.replace("  - id: check\n", "  - id: check\n    retry: {attempts: -3}\n")
        answer = await client.put(
            "/api/v1/flows/order-to-erp/source", json={"source": broken}, headers={"If-Match": loaded["etag"]}
        )
        assert (answer.status_code, answer.json()["code"]) == (422, "flow.invalid")
        wheres = [e["where"] for e in answer.json()["errors"]]
        assert wheres == ["flows/order.yaml:9:23 steps[1].retry.attempts"]
        not_yaml = await client.put(
            "/api/v1/flows/order-to-erp/source",
            json={"source": FLOW + "  - id: [\n"},
            headers={"If-Match": loaded["etag"]},
        )
        assert not_yaml.status_code == 422 and not_yaml.json()["errors"][0]["where"].startswith("flows/order.yaml:")
    assert (project_dir / "flows" / "order.yaml").read_text(encoding="utf-8") == FLOW


async def test_a_new_flow_is_written_to_its_file_and_served(project_dir: Path) -> None:
    make_project(project_dir, {"order": FLOW})
    new = {
        "id": "refund-to-erp",
        "name": "退款 → ERP",
        "trigger": {"manual": {}},
        "steps": [{"id": "refund", "transform": {"amount": "{{ event.body.amount | cents }}"}}],
    }
    async with serve(project_dir) as server, server.client() as client:
        created = await client.post("/api/v1/flows", json={"flow": new})
        assert created.status_code == 201, created.text
        assert (await client.get("/api/v1/flows/refund-to-erp")).status_code == 200
        again = await client.post("/api/v1/flows", json={"flow": new})
        assert (again.status_code, again.json()["code"]) == (409, "flow.exists")
    text = (project_dir / "flows" / "refund-to-erp.yaml").read_text(encoding="utf-8")
    assert text.startswith("id: refund-to-erp\nname: 退款 → ERP\ntrigger:\n")
    assert 'amount: "{{ event.body.amount | cents }}"' in text


async def test_the_preview_renders_inputs_against_the_latest_event_and_never_a_secret(project_dir: Path) -> None:
    make_project(project_dir, {"order": FLOW}, CONNECTIONS)
    async with serve(project_dir) as server, server.client() as client:
        body = {"input": {"order_no": "SO-2026-0815", "amount": 1999}}
        run_id = (await client.post("/api/v1/flows/order-to-erp/runs", json=body)).json()["run_id"]
        await run_in_status(client, run_id, "completed")
        inputs = {
            "number": "{{ event.body.order_no }}",
            "cents": "{{ event.body.amount | cents }}",
            "earlier": "{{ steps.order.number }}",
            "secret": "{{ secrets.erp_token }}",
        }
        preview = await client.post("/api/v1/flows/preview", json={"flow_id": "order-to-erp", "inputs": inputs})
        assert preview.status_code == 200, preview.text
        rendered = preview.json()
        assert rendered["event_from"] == f"run:{run_id}"
        assert rendered["inputs"]["number"] == {"value": "SO-2026-0815"}
        assert rendered["inputs"]["cents"] == {"value": 199900}
        assert rendered["inputs"]["earlier"] == {"value": "SO-2026-0815"}
        assert "error" in rendered["inputs"]["secret"]
        pasted = {"event": {"order_no": "SO-2026-0901"}, "inputs": {"n": "{{ event.body.order_no }}"}}
        answer = (await client.post("/api/v1/flows/preview", json=pasted)).json()
        assert (answer["event_from"], answer["inputs"]["n"]) == ("pasted", {"value": "SO-2026-0901"})
        palette = (await client.get("/api/v1/flows/palette")).json()
        assert "cents" in palette["filters"] and "phone_cn" in palette["filters"]
        erp = next(c for c in palette["connections"] if c["name"] == "erp")
        assert erp["connector"] == "http" and erp["actions"] and all("input" in a for a in erp["actions"])
