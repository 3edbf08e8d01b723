"""Promotion of a candidate version is gated by the flow owner's approval in their inbox: refused before it
and after a rejection, applied after an approval (new runs use the candidate), and recorded in the audit trail."""

from __future__ import annotations

import json
from pathlib import Path

from seamflow import codec
from tests.acceptance.test_cli import seamflow
from tests.support.approvals import company
from tests.support.sink import Sink
from tests.support.wait import eventually

LIVE = """id: refunds
owner: zhang.wei
trigger: {webhook: {path: refunds}}
steps:
  - id: post
    action: erp.post
    with: {path: /refunds, json: {version: VERSION, refund_no: "{{ event.body.refund_no }}"}}
"""


async def test_promotion_needs_the_owners_approval(project_dir: Path, tmp_path: Path, sink: Sink) -> None:
    candidate = LIVE.replace("VERSION", "2")
    connections = f"erp:\n  connector: http\n  base_url: {sink.url}\n"
    async with company(project_dir, tmp_path, {"refunds": LIVE.replace("VERSION", "1")}, connections) as site:
        admin = site.admin
        listed = {f["id"] for f in (await admin.get("/api/v1/flows")).json()}
        assert listed == {"refunds"}  # the built-in seamflow-promotion flow is not listed
        asked = await admin.post("/api/v1/flows/refunds/promotions", json={"source": candidate})
        assert asked.status_code == 202, asked.text
        promotion = asked.json()["promotion_id"]
        assert asked.json()["owner"] == "zhang.wei"
        early = await admin.post(f"/api/v1/flows/refunds/promotions/{promotion}/apply")
        assert early.status_code == 409 and early.json()["code"] == "promotion.not_approved", early.text
        assert "refused" in early.json()["detail"] and "zhang.wei" in early.json()["detail"]

        [task] = await site.inbox("zhang.wei")
        assert (await site.decide("zhang.wei", task["id"], "approve")).status_code == 200

        async def applied() -> dict:
            answer = await admin.post(f"/api/v1/flows/refunds/promotions/{promotion}/apply")
            assert answer.status_code == 200, answer.text
            return dict(answer.json())

        done = await eventually(applied, timeout=20)
        assert (project_dir / "flows" / "refunds.yaml").read_text(encoding="utf-8") == candidate
        assert (await admin.get("/api/v1/flows/refunds")).json()["version"] == done["version"]
        await admin.post("/hooks/refunds", json={"refund_no": "RF-20261207-01"})

        async def posted() -> None:
            assert [codec.loads(r.body)["version"] for r in sink.requests] == [2]

        await eventually(posted)

        again = await admin.post("/api/v1/flows/refunds/promotions", json={"source": LIVE.replace("VERSION", "3")})
        [second] = await site.inbox("zhang.wei")
        assert (await site.decide("zhang.wei", second["id"], "reject", comment="金额字段未核对")).status_code == 200

        async def refused() -> None:
            answer = await admin.post(f"/api/v1/flows/refunds/promotions/{again.json()['promotion_id']}/apply")
            assert answer.status_code == 409 and "decided rejected" in answer.json()["detail"], answer.text

        await eventually(refused, timeout=20)
        where = ("--url", str(admin.base_url), "--token", admin.headers["Authorization"].removeprefix("Bearer "))
        listed_cli = json.loads(seamflow("flow", "promotions", "refunds", "--json", *where).stdout)
        (project_dir / "candidate.yaml").write_text(LIVE.replace("VERSION", "4"), encoding="utf-8")
        asked_cli = seamflow("flow", "promote", "refunds", "--candidate", str(project_dir / "candidate.yaml"), *where)
        third = asked_cli.stdout.split()[1]
        early_cli = seamflow("flow", "promote", "refunds", "--apply", third, *where, check=False)
        audit = (await admin.get("/api/v1/audit", params={"limit": 1000})).json()
    assert [(p["promotion_id"], p["decision"]) for p in listed_cli] == [
        (again.json()["promotion_id"], "rejected"),
        (promotion, "approved"),
    ]
    assert third.startswith("run_") and "zhang.wei approves it in their inbox" in asked_cli.stdout
    assert early_cli.returncode == 1 and "promotion.not_approved" in early_cli.stderr
    promoted = [e for e in audit if e["action"] == "flow.promoted"]
    assert [(e["object"], e["detail"]["approved_by"]) for e in promoted] == [("flow:refunds", "zhang.wei")]
    assert (project_dir / "flows" / "refunds.yaml").read_text(encoding="utf-8") == candidate
