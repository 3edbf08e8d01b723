"""A run keeps the flow version it started with, also when the file changes while it waits."""

from __future__ import annotations

from pathlib import Path

from seamflow import codec
from tests.acceptance.flows import sink_connection
from tests.support.server import make_project, serve
from tests.support.sink import Sink
from tests.support.wait import eventually

V1 = """
id: versioned
trigger: {webhook: {path: v}}
steps:
  - id: pause
    wait: {signal: go, key: "{{ event.body.k }}"}
  - id: post
    action: sink.post
    with: {path: /v, json: {version: VERSION, k: "{{ event.body.k }}"}}
"""


async def test_a_waiting_run_finishes_with_its_own_version_after_the_flow_changed(
    project_dir: Path, sink: Sink
) -> None:
    make_project(project_dir, {"versioned": V1.replace("VERSION", "1")}, sink_connection(sink.url))
    async with serve(project_dir) as server, server.client() as client:
        old = (await client.post("/hooks/v", json={"k": "a"})).json()["run_id"]

        async def waiting() -> None:
            assert (await client.get(f"/api/v1/runs/{old}")).json()["status"] == "waiting"

        await eventually(waiting)
        make_project(project_dir, {"versioned": V1.replace("VERSION", "2")}, sink_connection(sink.url))
        await server.restart()
        new = (await client.post("/hooks/v", json={"k": "b"})).json()["run_id"]
        for key in ("a", "b"):
            await client.post("/api/v1/signals", json={"name": "go", "key": key})

        async def both_done() -> list[dict]:
            runs = [(await client.get(f"/api/v1/runs/{r}")).json() for r in (old, new)]
            assert [r["status"] for r in runs] == ["completed", "completed"]
            return runs

        old_run, new_run = await eventually(both_done)
    assert old_run["version"] != new_run["version"]
    posted = {codec.loads(r.body)["k"]: codec.loads(r.body)["version"] for r in sink.requests}
    assert posted == {"a": 1, "b": 2}
