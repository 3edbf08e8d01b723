"""Durable waits and schedules: a parked run survives kill -9; cron ticks fire once each across restarts."""

from __future__ import annotations

import asyncio
from pathlib import Path

from seamflow import codec
from tests.acceptance.flows import sink_connection
from tests.support.runs import run_in_status
from tests.support.server import Server, make_project, serve
from tests.support.sink import Sink
from tests.support.wait import eventually

APPROVAL = """
id: purchase-approval
trigger: {webhook: {path: purchases}}
steps:
  - id: ask
    wait: {signal: approval.decided, key: "{{ event.body.request_no }}", timeout: TIMEOUT}
  - id: decide
    if: "{{ steps.ask.timed_out }}"
    then:
      - id: escalate
        action: sink.post
        with: {path: /escalations, json: {request: "{{ event.body.request_no }}"}}
    else:
      - id: record
        action: sink.post
        with:
          path: /decisions
          json: {request: "{{ event.body.request_no }}", decision: "{{ steps.ask.payload.decision }}"}
"""


async def test_a_run_waiting_for_a_signal_survives_kill_9_and_resumes_on_the_signal(
    project_dir: Path, sink: Sink
) -> None:
    make_project(project_dir, {"approval": APPROVAL.replace("TIMEOUT", "1h")}, sink_connection(sink.url))
    async with serve(project_dir) as server, server.client() as client:
        run_id = (await client.post("/hooks/purchases", json={"request_no": "PR-2026-0042"})).json()["run_id"]
        await run_in_status(client, run_id, "waiting")
        await server.restart()
        answer = await client.post(
            "/api/v1/signals",
            json={"name": "approval.decided", "key": "PR-2026-0042", "payload": {"decision": "approved"}},
        )
        assert answer.json() == {"delivered_to": [run_id], "kept": False}
        await run_in_status(client, run_id, "completed")
    decisions = [codec.loads(r.body) for r in sink.requests if r.path == "/decisions"]
    assert decisions == [{"request": "PR-2026-0042", "decision": "approved"}]
    assert not [r for r in sink.requests if r.path == "/escalations"]


async def test_a_wait_without_its_signal_takes_the_timeout_branch_also_across_a_restart(
    project_dir: Path, sink: Sink
) -> None:
    make_project(project_dir, {"approval": APPROVAL.replace("TIMEOUT", "3s")}, sink_connection(sink.url))
    async with serve(project_dir) as server, server.client() as client:
        run_id = (await client.post("/hooks/purchases", json={"request_no": "PR-2026-0043"})).json()["run_id"]
        await run_in_status(client, run_id, "waiting")
        await server.restart()
        run = await run_in_status(client, run_id, "completed")
        late = await client.post(
            "/api/v1/signals", json={"name": "approval.decided", "key": "PR-2026-0043", "payload": {}}
        )
    assert [r.path for r in sink.requests] == ["/escalations"]
    assert run["steps"][-2]["output"]["branch"] == "then"
    assert late.json()["kept"] is True, "a signal nobody waits for is kept, not lost"


async def test_a_signal_sent_before_the_run_waits_is_delivered_when_it_does(project_dir: Path, sink: Sink) -> None:
    make_project(project_dir, {"approval": APPROVAL.replace("TIMEOUT", "1h")}, sink_connection(sink.url))
    async with serve(project_dir) as server, server.client() as client:
        await client.post(
            "/api/v1/signals", json={"name": "approval.decided", "key": "PR-7", "payload": {"decision": "rejected"}}
        )
        run_id = (await client.post("/hooks/purchases", json={"request_no": "PR-7"})).json()["run_id"]
        await run_in_status(client, run_id, "completed")
    assert [codec.loads(r.body) for r in sink.requests] == [{"request": "PR-7", "decision": "rejected"}]


CRON = """
id: daily-report
trigger:
  schedule: {cron: "0 9 * * *", timezone: Asia/Shanghai}
steps:
  - id: report
    action: sink.post
    with: {path: /reports, json: {tick: "{{ event.body.tick }}"}}
"""


def _set_clock(path: Path, instant: str) -> None:
    """Move the server's clock: it reads this file whenever its modification time changes."""
    path.write_text(instant)


async def test_cron_in_asia_shanghai_fires_at_9_local_and_a_restart_neither_skips_nor_doubles(
    project_dir: Path, sink: Sink, tmp_path: Path
) -> None:
    clock_file = tmp_path / "clock"
    _set_clock(clock_file, "2026-11-24T00:59:58+00:00")  # 08:59:58 in Shanghai
    make_project(project_dir, {"report": CRON}, sink_connection(sink.url))
    server = Server(project_dir, env={"SEAMFLOW_FAKE_CLOCK": str(clock_file)})
    await server.start()
    try:

        async def ticks(n: int) -> list[str]:
            # distinct ticks in order: a run killed after its call and before its journal commit
            # calls again with the same idempotency key after the restart (one effect at the sink)
            got = list(dict.fromkeys(codec.loads(r.body)["tick"] for r in sink.requests if r.path == "/reports"))
            assert len(got) >= n, got
            return got

        assert await eventually(lambda: ticks(1)) == ["2026-11-24T09:00:00+08:00"]
        server.kill()
        _set_clock(clock_file, "2026-11-26T01:00:30+00:00")  # two days later, 09:00:30 in Shanghai
        await server.start()
        got = await eventually(lambda: ticks(3))
        await server.restart()  # no time passes: nothing more may fire
        await asyncio.sleep(1.0)  # a negative check (nothing to poll): give a wrong extra tick the chance to fire
        got = await ticks(3)
    finally:
        server.kill()
    assert got == ["2026-11-24T09:00:00+08:00", "2026-11-25T09:00:00+08:00", "2026-11-26T09:00:00+08:00"]
    assert sink.stats()["effects"] == 3, "one effect per tick"
    [(runs,)] = server.database.query("SELECT COUNT(*) FROM runs WHERE flow_id = 'daily-report'")
    assert runs == 3
