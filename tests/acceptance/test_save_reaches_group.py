"""A flow saved in the editor is served by every process of `serve --processes 2` when the save answers.

The save reloads the process that took it; the others reload when told by SIGHUP. The save's
answer waits until every live process of the group reports (in the store) that it serves the same
flows, so the editor's next request finds the new flow whichever process it reaches — never a 404.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.acceptance.test_serve_processes import both_answer
from tests.support.server import TOKEN, Server, make_project

FLOW = "id: {id}\nname: 新建流程 {n}\ntrigger: {{manual: {{}}}}\nsteps:\n  - id: a\n    transform: {{n: {n}}}\n"
SAVES = 4
READS = 30
SEEDS = 300
"""Flows already there: each reload reads and compiles them all, which widens the window of the race."""


async def test_a_new_flow_saved_is_found_by_every_process_at_once(project_dir: Path) -> None:
    make_project(project_dir, {f"seed-{n}": FLOW.format(id=f"seed-{n}", n=n) for n in range(SEEDS)})
    server = Server(project_dir, env={"SEAMFLOW_PROCESSES": "2"})
    await server.start()
    try:
        await both_answer(server)
        fresh = httpx.Limits(max_keepalive_connections=0)  # each request on its own connection: either process
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30, limits=fresh) as client:
            for n in range(1, SAVES + 1):
                flow_id = f"new-flow-{n}"
                saved = await client.post("/api/v1/flows", json={"source": FLOW.format(id=flow_id, n=n)})
                assert saved.status_code == 201, saved.text
                reads = await asyncio.gather(*[client.get(f"/api/v1/flows/{flow_id}") for _ in range(READS)])
                assert [r.status_code for r in reads] == [200] * READS, [r.text for r in reads if r.status_code != 200]
                workers = {(await client.get("/health")).json()["worker"] for _ in range(20)}
                assert len(workers) == 2, "the reads went to both processes"
    finally:
        server.kill()
