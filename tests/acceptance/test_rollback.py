"""Every deployed version is kept with who/when/how; `flow diff` shows what changed; `flow rollback` brings
the previous version back in one command, a running serve reloads it, and new runs use it."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from seamflow import codec
from tests.acceptance.test_cli import seamflow
from tests.support.server import make_project, serve
from tests.support.sink import Sink
from tests.support.wait import eventually

FLOW = """id: refunds
trigger: {webhook: {path: refunds}}
steps:
  - id: post
    action: erp.post
    with: {path: /refunds, json: {version: VERSION, refund_no: "{{ event.body.refund_no }}"}}
"""


async def _live_version(client: httpx.AsyncClient, not_: str | None = None) -> str:
    async def changed() -> str:
        version = str((await client.get("/api/v1/flows/refunds")).json()["version"])
        assert version != not_
        return version

    return await eventually(changed, timeout=15)


async def _posted_version(client: httpx.AsyncClient, sink: Sink, refund_no: str) -> int:
    await client.post("/hooks/refunds", json={"refund_no": refund_no})

    async def arrived() -> int:
        bodies = [codec.loads(r.body) for r in sink.requests]
        found = [b["version"] for b in bodies if b["refund_no"] == refund_no]
        assert found
        return int(found[0])

    return await eventually(arrived)


async def test_rollback_restores_the_previous_version_and_new_runs_use_it(project_dir: Path, sink: Sink) -> None:
    make_project(
        project_dir, {"refunds": FLOW.replace("VERSION", "1")}, f"erp:\n  connector: http\n  base_url: {sink.url}\n"
    )
    flow_file = project_dir / "flows" / "refunds.yaml"
    async with serve(project_dir) as server, server.client() as client:
        v1 = await _live_version(client)
        assert await _posted_version(client, sink, "RF-1") == 1
        flow_file.write_text(FLOW.replace("VERSION", "2"), encoding="utf-8")
        v2 = await _live_version(client, not_=v1)
        assert await _posted_version(client, sink, "RF-2") == 2

        listed = json.loads(seamflow("flow", "versions", "refunds", "--json", "--project", str(project_dir)).stdout)
        assert [(v["version"], v["how"]) for v in listed] == [(v2, "watch"), (v1, "start")]
        diff = seamflow("flow", "diff", "refunds", v1, v2, "--project", str(project_dir)).stdout
        assert f"--- refunds@{v1}" in diff and "-    with: {path: /refunds, json: {version: 1," in diff
        assert "+    with: {path: /refunds, json: {version: 2," in diff

        rolled = seamflow("flow", "rollback", "refunds", "--project", str(project_dir))
        assert f"rolled back from {v2} to {v1}" in rolled.stdout
        assert flow_file.read_text(encoding="utf-8") == FLOW.replace("VERSION", "1")
        assert await _live_version(client, not_=v2) == v1
        assert await _posted_version(client, sink, "RF-3") == 1
        audit = (await client.get("/api/v1/audit", params={"limit": 1000})).json()

    after = json.loads(seamflow("flow", "versions", "refunds", "--json", "--project", str(project_dir)).stdout)
    assert [(v["version"], v["how"]) for v in after] == [(v1, "rollback"), (v2, "watch"), (v1, "start")]
    assert after[0]["by"].startswith("@cli:")
    entries = [e for e in audit if e["action"] == "flow.rolled_back"]
    assert [e["detail"] for e in entries] == [{"from": v2, "to": v1}]
    again = seamflow(
        "flow", "rollback", "refunds", "--to", "0000000000000000", "--project", str(project_dir), check=False
    )
    assert again.returncode == 2 and "flow.version_not_found" in again.stderr
