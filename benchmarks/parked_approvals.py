"""10,000 approval runs parked at once: server memory, an approver's inbox query, and decisions that resume runs.

Usage: .venv/bin/python benchmarks/parked_approvals.py [--runs 10000] [--approvers 100] [--decisions 1000]
       [--clients 16] [--queries 200]

One `seamflow serve` (SQLite, default durability) on a fresh project. Each run of the flow below
parks at its `approval` step, one task for one of `--approvers` people (the runs are spread
evenly, so each approver has runs/approvers pending tasks). Measured, in this order:

1. memory (RSS of the serve processes, summed) after a warm-up of 500 parked runs, then after
   `--runs` more: the difference per parked run says whether anything is held per waiting run;
2. `GET /api/v1/tasks?assignee=me&status=pending` for one approver, `--queries` times in a row:
   median and p95;
3. `--decisions` approvals sent by `--clients` concurrent clients (each as the task's assignee):
   decisions accepted per second, and the time until every decided run has completed.

Prints the figures and saves them to benchmarks/results/parked-approvals-<stamp>.json (and -latest.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.processes import STAMP, Proc, machine_busy_s
from tests.support.server import Server, make_project

HERE = Path(__file__).resolve().parent
FLOW = """
id: parked
trigger: {manual: {}}
steps:
  - id: approve
    approval:
      requester: "{{ event.body.requester }}"
      subject: "报销单 {{ event.body.no }}：差旅费 {{ event.body.amount }} 元"
      levels:
        - name: 财务审核
          assignees: [{expression: "{{ event.body.approver }}"}]
  - id: done
    transform: {decision: "{{ steps.approve.decision }}"}
"""
WARM_UP = 500


def approver(i: int) -> str:
    return f"fin.{i:03d}"


async def _gated(count: int, clients: int, one: Any) -> float:
    """Run `one(i)` for i < count with `clients` at once; the wall time in seconds."""
    gate = asyncio.Semaphore(clients)

    async def gated(i: int) -> None:
        async with gate:
            await one(i)

    started = time.perf_counter()
    await asyncio.gather(*(gated(i) for i in range(count)))
    return time.perf_counter() - started


def _count(db: Path, sql: str) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        return int(conn.execute(sql).fetchone()[0])


async def _wait_count(db: Path, sql: str, want: int, timeout_s: float) -> float:
    """Poll until the count reaches `want`; seconds waited."""
    started = time.perf_counter()
    while _count(db, sql) < want:
        if time.perf_counter() - started > timeout_s:
            raise RuntimeError(f"{sql!r} stayed below {want} for {timeout_s} s")
        await asyncio.sleep(0.05)
    return time.perf_counter() - started


async def _park(admin: httpx.AsyncClient, first: int, count: int, args: argparse.Namespace) -> float:
    async def one(i: int) -> None:
        n = first + i
        body = {
            "no": f"BX-2026-{n:06d}",
            "requester": "li.na",
            "approver": approver(n % args.approvers),
            "amount": "1280.50",
        }
        answer = await admin.post("/api/v1/flows/parked/runs", json={"input": body})
        answer.raise_for_status()

    return await _gated(count, args.clients, one)


async def _directory(admin: httpx.AsyncClient, args: argparse.Namespace) -> dict[str, str]:
    (await admin.put("/api/v1/directory/departments/finance", json={"name": "财务部"})).raise_for_status()
    users = {"li.na": "李娜"} | {approver(i): f"财务审核{i:03d}" for i in range(args.approvers)}
    tokens = {}
    for login, name in users.items():
        body = {"name": name, "department": "finance", "roles": ["approver"]}
        (await admin.put(f"/api/v1/directory/users/{login}", json=body)).raise_for_status()
        if login != "li.na":
            made = await admin.post(f"/api/v1/directory/users/{login}/tokens", json={"name": "bench"})
            tokens[login] = made.json()["token"]
    return tokens


async def main(args: argparse.Namespace) -> dict[str, Any]:
    busy_before, wall_before = machine_busy_s(), time.monotonic()
    with tempfile.TemporaryDirectory() as folder:
        project = make_project(Path(folder) / "project", {"parked": FLOW})
        os.environ.pop("SEAMFLOW_DATABASE_URL", None)  # SQLite, the embedded default
        server = Server(project)
        await server.start(timeout_s=60)
        db = project / ".seamflow" / "seamflow.db"
        assert server.process is not None
        proc = Proc("seamflow", server.process, server.url)  # type: ignore[arg-type]  # Popen of bytes
        try:
            async with server.client() as admin:
                tokens = await _directory(admin, args)
                await _park(admin, 0, WARM_UP, args)
                await _wait_count(db, "SELECT COUNT(*) FROM tasks WHERE status = 'pending'", WARM_UP, 120)
                rss_before = proc.rss_mb()
                park_s = await _park(admin, WARM_UP, args.runs, args)
                total = WARM_UP + args.runs
                await _wait_count(db, "SELECT COUNT(*) FROM tasks WHERE status = 'pending'", total, 600)
                rss_after = proc.rss_mb()
                health = await _timed_gets(server.url, None, "/health/live", args.queries)
                inbox = await _inbox(server.url, tokens[approver(7)], args.queries)
                decided = await _decide(server.url, tokens, db, args, proc)
                rss_end = proc.rss_mb()
        finally:
            server.kill()
    return {
        "benchmark": "parked_approvals",
        "stamp": STAMP,
        "machine_cpu_percent_during": round(
            100 * (machine_busy_s() - busy_before) / (time.monotonic() - wall_before) / (os.cpu_count() or 1)
        ),
        "cores": os.cpu_count(),
        "runs_parked": args.runs,
        "warm_up_runs": WARM_UP,
        "approvers": args.approvers,
        "clients": args.clients,
        "parking_runs_per_s": round(args.runs / park_s, 1),
        "rss_mb": {"after_warm_up": rss_before, "after_parking": rss_after, "after_decisions": rss_end},
        "rss_bytes_per_parked_run": round((rss_after - rss_before) * 1024 * 1024 / args.runs, 1),
        "inbox_query_ms": inbox,
        "control_health_ms": health,
        "decisions": decided,
    }


async def _timed_gets(url: str, token: str | None, path: str, count: int) -> dict[str, Any]:
    """A control beside the inbox query: the same server's cheapest route, timed the same way."""
    times = []
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        for _ in range(count):
            started = time.perf_counter()
            (await client.get(path)).raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"median": round(statistics.median(times), 2), "p95": round(times[int(len(times) * 0.95) - 1], 2)}


async def _inbox(url: str, token: str, queries: int) -> dict[str, Any]:
    times = []
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as me:
        for _ in range(queries):
            started = time.perf_counter()
            answer = await me.get("/api/v1/tasks?assignee=me&status=pending")
            times.append((time.perf_counter() - started) * 1000)
            answer.raise_for_status()
        tasks = len(answer.json())
    times.sort()
    return {
        "tasks_listed": tasks,
        "median": round(statistics.median(times), 2),
        "p95": round(times[int(len(times) * 0.95) - 1], 2),
        "target_ms": 50,
    }


async def _decide(url: str, tokens: dict[str, str], db: Path, args: argparse.Namespace, proc: Proc) -> dict[str, Any]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT id, assignee FROM tasks WHERE status = 'pending' ORDER BY created_ms, id LIMIT ?", (args.decisions,)
        ).fetchall()
    clients = {
        login: httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {t}"}, timeout=60)
        for login, t in tokens.items()
    }
    completed_before = _count(db, "SELECT COUNT(*) FROM runs WHERE status = 'completed'")

    async def one(i: int) -> None:
        task_id, login = rows[i]
        answer = await clients[login].post(f"/api/v1/tasks/{task_id}/decision", json={"decision": "approve"})
        answer.raise_for_status()

    spies = _spy(proc, args.profile, "decisions") if args.profile else []
    try:
        cpu_before = proc.cpu_s()
        started = time.perf_counter()
        decide_s = await _gated(len(rows), args.clients, one)
        want = completed_before + len(rows)
        await _wait_count(db, "SELECT COUNT(*) FROM runs WHERE status = 'completed'", want, 600)
        resumed_s = time.perf_counter() - started
        cpu_s = proc.cpu_s() - cpu_before
    finally:
        for client in clients.values():
            await client.aclose()
        for spy in spies:
            spy.wait(60)
    return {
        "count": len(rows),
        "accepted_per_s": round(len(rows) / decide_s, 1),
        "all_runs_resumed_and_completed_s": round(resumed_s, 2),
        "resumed_runs_per_s": round(len(rows) / resumed_s, 1),
        "target_per_s": 1000,
        "server_cpu_s": round(cpu_s, 2),
        "decisions_per_server_cpu_s": round(len(rows) / cpu_s, 1),
    }


def _spy(proc: Proc, seconds: float, phase: str) -> list[subprocess.Popen[bytes]]:
    """py-spy (samples of threads holding the GIL) on every serve process for the first `seconds`
    of a phase; collapsed stacks in artifacts/profiles/parked-<phase>-<stamp>-<n>.txt."""
    spy = Path(sys.executable).parent / "py-spy"
    out = HERE.parent / "artifacts" / "profiles"
    out.mkdir(parents=True, exist_ok=True)
    spies = []
    for n, pid in enumerate(proc.pids()):
        path = out / f"parked-{phase}-{STAMP}-{n}.txt"
        command = [spy, "record", "-p", str(pid), "-d", f"{seconds:g}", "-r", "200", "--gil", "--nonblocking"]
        command += ["-f", "raw", "-o", path]
        spies.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return spies


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--approvers", type=int, default=100)
    parser.add_argument("--decisions", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--profile", type=float, default=0, help="py-spy the serve processes for this many seconds")
    report = asyncio.run(main(parser.parse_args()))
    print(json.dumps(report, ensure_ascii=False, indent=2))
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    for name in (f"parked-approvals-{STAMP}.json", "parked-approvals-latest.json"):
        (results / name).write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
