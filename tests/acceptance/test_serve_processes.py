"""`seamflow serve --processes N`: several processes behind one port share the work, the metrics and their fate."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.acceptance.flows import FORWARD, sink_connection
from tests.support.server import TOKEN, Server, make_project
from tests.support.sink import Sink
from tests.support.wait import eventually

EVENTS = 200


def _children(pid: int) -> set[int]:
    """Live processes whose parent is `pid` (from /proc)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry))
    return found


def _is_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def _answering_workers(url: str, tries: int = 60) -> set[str]:
    """The worker ids that answer /health over fresh connections (the kernel spreads them).

    The worker's id is a detail of /health shown only to a caller with the read scope.
    """
    seen: set[str] = set()
    for _ in range(tries):
        async with httpx.AsyncClient(timeout=5, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            seen.add((await client.get(url + "/health")).json()["worker"])
    return seen


async def both_answer(server: Server) -> None:
    """Wait until both processes of a `serve --processes 2` group answer on the shared port."""

    async def two_answer() -> None:
        assert len(await _answering_workers(server.url)) == 2

    await eventually(two_answer, timeout=30)


async def test_the_processes_of_one_serve_share_the_work_and_answer_for_each_other(
    project_dir: Path, sink: Sink
) -> None:
    make_project(project_dir, {"forward": FORWARD}, sink_connection(sink.url))
    server = Server(project_dir, env={"SEAMFLOW_PROCESSES": "2"})
    await server.start()
    try:
        await both_answer(server)
        fresh = httpx.Limits(max_keepalive_connections=0)  # each request on its own connection
        async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=fresh) as client:
            answers = await asyncio.gather(
                *[
                    client.post(
                        "/hooks/orders", json={"order_no": f"SO-{n:04d}", "amount": "19.90", "customer": "王芳"}
                    )
                    for n in range(EVENTS)
                ]
            )
        assert {a.status_code for a in answers} == {202}

        async def all_completed() -> None:
            rows = dict(server.database.query("SELECT status, COUNT(*) FROM runs GROUP BY status"))
            assert rows == {"completed": EVENTS}, rows

        await eventually(all_completed, timeout=60)
        async with server.client() as api:
            workers = (await api.get("/api/v1/workers")).json()
            assert len(workers) == 2, workers
            for _ in range(6):  # whichever process answers, /metrics counts for both
                text = (await api.get("/metrics")).text
                accepted = re.search(
                    r'seamflow_events_accepted_total\{duplicate="false",flow="forward-orders"\} (\S+)', text
                )
                assert accepted is not None and float(accepted.group(1)) == EVENTS, text[:2000]
    finally:
        server.kill()
    assert sink.stats()["effects"] == EVENTS
    keys = [r.idempotency_key for r in sink.requests if r.path == "/orders"]
    assert len(keys) == len(set(keys)) == EVENTS, "each run's effect once"


async def test_kill_9_of_the_first_process_takes_the_others_with_it_and_a_restart_serves(project_dir: Path) -> None:
    make_project(project_dir, {"forward": FORWARD}, sink_connection("http://127.0.0.1:9"))
    server = Server(project_dir, env={"SEAMFLOW_PROCESSES": "2"})
    await server.start()
    try:
        assert server.process is not None

        async def other_started() -> set[int]:
            assert server.process is not None
            others = _children(server.process.pid)
            assert len(others) == 1, others
            return others

        [other] = await eventually(other_started, timeout=30)
        server.kill()

        async def other_gone() -> None:
            assert not _is_alive(other), "the other process outlived the first"

        await eventually(other_gone, timeout=10)
        await server.start()  # the same port at once
        async with httpx.AsyncClient(timeout=5) as client:
            assert (await client.get(server.url + "/health/ready")).status_code == 200
    finally:
        server.kill()


async def test_another_process_that_dies_is_started_again(project_dir: Path) -> None:
    make_project(project_dir, {"forward": FORWARD}, sink_connection("http://127.0.0.1:9"))
    server = Server(project_dir, env={"SEAMFLOW_PROCESSES": "2"})
    await server.start()
    try:
        assert server.process is not None
        first = server.process.pid

        async def one_other() -> int:
            others = _children(first)
            assert len(others) == 1, others
            return others.pop()

        dead = await eventually(one_other, timeout=30)
        os.kill(dead, 9)

        async def replaced() -> None:
            assert (await one_other()) != dead
            assert len(await _answering_workers(server.url)) == 2

        await eventually(replaced, timeout=30)
        async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}) as api:
            live = (await api.get("/api/v1/workers")).json()
        assert len(live) >= 2, live
    finally:
        server.kill()


async def test_a_second_serve_on_a_taken_port_is_refused_clearly_and_the_first_keeps_serving(project_dir: Path) -> None:
    make_project(project_dir, {"forward": FORWARD}, sink_connection("http://127.0.0.1:9"))
    server = Server(project_dir, env={"SEAMFLOW_PROCESSES": "2"})
    await server.start()
    try:
        second = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "seamflow", "serve", "--project", str(project_dir), "--port", str(server.port)],
            env={**server.env, "SEAMFLOW_PROCESSES": "2"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 2, second.stderr
        assert f"error [serve.port_in_use]: port 127.0.0.1:{server.port} is in use by another process" in second.stderr
        assert "Traceback" not in second.stderr
        async with httpx.AsyncClient(timeout=5) as client:
            assert (await client.get(server.url + "/health/ready")).status_code == 200
    finally:
        server.kill()


def test_a_bad_process_count_is_a_usage_error_naming_what_is_expected(project_dir: Path) -> None:
    answer = subprocess.run(
        [sys.executable, "-m", "seamflow", "serve", "--project", str(project_dir), "--processes", "many"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert answer.returncode == 2
    assert "Invalid value for '--processes': got 'many'; expected auto or a number from 1 to 64" in answer.stderr
