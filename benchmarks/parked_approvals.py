"""10,000 approval runs parked at once: server memory, an approver's inbox query, and decisions that resume runs.

Usage: .venv/bin/python benchmarks/parked_approvals.py [--runs 10000] [--approvers 100] [--decisions 1000]
       [--clients 16] [--queries 200] [--rounds 5] [--baseline REF] [--profile SECONDS]

One `seamflow serve` (SQLite, default durability) on a fresh project; with `--baseline REF` a
second one runs the code of git REF (its `src/` exported with `git archive` into a temporary
folder and put first on PYTHONPATH) beside it, on its own fresh project, and every measure below
alternates between the two, round by round, so both see the same load of the (shared) machine.
Each run of the flow below parks at its `approval` step, one task for one of `--approvers`
people (the runs are spread evenly, so each approver has runs/approvers pending tasks). Measured:

1. memory (RSS of the serve processes, summed) after a warm-up of 500 parked runs, then after
   `--runs` more: the difference per parked run says whether anything is held per waiting run;
2. `GET /api/v1/tasks?assignee=me&status=pending` for one approver, `--queries` times in all
   (a share per round): median and p95 (and `GET /health/live` timed the same way, a control);
3. `--decisions` approvals in all (a share per round), sent by `--clients` concurrent clients,
   each as the task's assignee: decisions accepted per second, the time until every decided run
   has completed, and the CPU seconds the serve processes used meanwhile (decisions per CPU
   second of the server: the figure that depends least on what else the machine runs).

`--profile S` records the serve processes with py-spy (threads holding the GIL) for the first S
seconds of the first round's decisions (artifacts/profiles/). Prints the figures (medians over
the rounds) and saves them to benchmarks/results/parked-approvals-<stamp>.json (and -latest.json).
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
from dataclasses import dataclass, field
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


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> httpx.Response:
    """POST, sent again (up to 3 times) if the connection broke before an answer (a busy machine
    resets a kept-alive connection now and then); a decision that did commit answers 409 then."""
    for attempt in range(3):
        try:
            return await client.post(path, json=body)
        except (httpx.ReadError, httpx.RemoteProtocolError, httpx.ConnectError):
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


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
        (await _post(admin, "/api/v1/flows/parked/runs", {"input": body})).raise_for_status()

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


@dataclass
class Side:
    """One serve under test: the current code, or the baseline's."""

    name: str
    project: Path
    server: Server
    proc: Proc
    tokens: dict[str, str] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    rounds: list[dict[str, Any]] = field(default_factory=list)
    inbox_ms: list[float] = field(default_factory=list)
    health_ms: list[float] = field(default_factory=list)

    @property
    def db(self) -> Path:
        return self.project / ".seamflow" / "seamflow.db"


async def _start(name: str, folder: Path, source: Path | None) -> Side:
    project = make_project(folder / name, {"parked": FLOW})
    env = {} if source is None else {"PYTHONPATH": str(source)}
    server = Server(project, env=env)
    await server.start(timeout_s=120)
    assert server.process is not None
    return Side(name, project, server, Proc(name, server.process, server.url))  # type: ignore[arg-type]  # bytes


async def _prepare(side: Side, args: argparse.Namespace) -> None:
    """Directory, warm-up, then `--runs` parked runs; memory before and after."""
    pending = "SELECT COUNT(*) FROM tasks WHERE status = 'pending'"
    async with side.server.client() as admin:
        side.tokens = await _directory(admin, args)
        await _park(admin, 0, WARM_UP, args)
        await _wait_count(side.db, pending, WARM_UP, 300)
        before = side.proc.rss_mb()
        park_s = await _park(admin, WARM_UP, args.runs, args)
        await _wait_count(side.db, pending, WARM_UP + args.runs, 900)
        after = side.proc.rss_mb()
    side.figures = {
        "parking_runs_per_s": round(args.runs / park_s, 1),
        "rss_mb": {"after_warm_up": before, "after_parking": after},
        "rss_bytes_per_parked_run": round((after - before) * 1024 * 1024 / args.runs, 1),
    }


def _export(ref: str, folder: Path) -> Path:
    """The `src/` of git `ref`, exported into `folder` (nothing of the working tree is touched)."""
    archive = subprocess.run(["git", "-C", str(HERE.parent), "archive", ref, "src"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder / "src"


async def main(args: argparse.Namespace) -> dict[str, Any]:
    busy_before, wall_before = machine_busy_s(), time.monotonic()
    os.environ.pop("SEAMFLOW_DATABASE_URL", None)  # SQLite, the embedded default
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sides = [await _start("current", folder, None)]
        if args.baseline:
            (folder / "baseline-src").mkdir()
            sides.append(await _start("baseline", folder, _export(args.baseline, folder / "baseline-src")))
        try:
            for side in sides:
                await _prepare(side, args)
            for n in range(args.rounds):
                for side in sides if n % 2 == 0 else sides[::-1]:
                    await _round(side, args, profile=args.profile if n == 0 else 0)
            for side in sides:
                side.figures["rss_mb"]["after_decisions"] = side.proc.rss_mb()
        finally:
            for side in sides:
                side.server.kill()
    report: dict[str, Any] = {
        "benchmark": "parked_approvals",
        "stamp": STAMP,
        "machine_cpu_percent_during": round(
            100 * (machine_busy_s() - busy_before) / (time.monotonic() - wall_before) / (os.cpu_count() or 1)
        ),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "cores": os.cpu_count(),
        "baseline": args.baseline,
        "runs_parked": args.runs,
        "warm_up_runs": WARM_UP,
        "approvers": args.approvers,
        "clients": args.clients,
        "rounds": args.rounds,
        **{side.name: _summary(side) for side in sides},
    }
    if args.baseline:
        now, then = report["current"]["decisions"], report["baseline"]["decisions"]
        report["current_over_baseline"] = {
            key: round(now[key] / then[key], 2) for key in ("accepted_per_s", "decisions_per_server_cpu_s")
        }
    return report


async def _round(side: Side, args: argparse.Namespace, *, profile: float) -> None:
    queries = max(1, args.queries // args.rounds)
    side.health_ms += await _timed_gets(side.server.url, None, "/health/live", queries)
    side.inbox_ms += await _timed_gets(side.server.url, side.tokens[approver(7)], _INBOX, queries)
    side.rounds.append(await _decide(side, args, max(1, args.decisions // args.rounds), profile))


def _summary(side: Side) -> dict[str, Any]:
    def median(key: str) -> float:
        return round(statistics.median(r[key] for r in side.rounds), 2)

    return {
        **side.figures,
        "inbox_query_ms": {**_spread(side.inbox_ms), "target_ms": 50},
        "control_health_ms": _spread(side.health_ms),
        "decisions": {
            "count": sum(r["count"] for r in side.rounds),
            "accepted_per_s": median("accepted_per_s"),
            "resumed_runs_per_s": median("resumed_runs_per_s"),
            "decisions_per_server_cpu_s": median("decisions_per_server_cpu_s"),
            "target_per_s": 1000,
            "rounds": side.rounds,
        },
    }


def _spread(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {"median": round(statistics.median(ordered), 2), "p95": round(ordered[int(len(ordered) * 0.95) - 1], 2)}


_INBOX = "/api/v1/tasks?assignee=me&status=pending"


async def _timed_gets(url: str, token: str | None, path: str, count: int) -> list[float]:
    """`count` GETs in a row; each one's milliseconds."""
    times = []
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        for _ in range(count):
            started = time.perf_counter()
            (await client.get(path)).raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
    return times


async def _decide(side: Side, args: argparse.Namespace, count: int, profile: float) -> dict[str, Any]:
    with sqlite3.connect(f"file:{side.db}?mode=ro", uri=True, timeout=30) as conn:
        rows = conn.execute(
            "SELECT id, assignee FROM tasks WHERE status = 'pending' ORDER BY created_ms, id LIMIT ?", (count,)
        ).fetchall()
    clients = {
        login: httpx.AsyncClient(base_url=side.server.url, headers={"Authorization": f"Bearer {t}"}, timeout=60)
        for login, t in side.tokens.items()
    }
    completed = "SELECT COUNT(*) FROM runs WHERE status = 'completed'"
    completed_before = _count(side.db, completed)

    async def one(i: int) -> None:
        task_id, login = rows[i]
        answer = await _post(clients[login], f"/api/v1/tasks/{task_id}/decision", {"decision": "approve"})
        if answer.status_code != 409:  # 409: sent again after a broken connection, and decided the first time
            answer.raise_for_status()

    spies = _spy(side.proc, profile, f"{side.name}-decisions") if profile else []
    try:
        cpu_before = side.proc.cpu_s()
        started = time.perf_counter()
        decide_s = await _gated(len(rows), args.clients, one)
        await _wait_count(side.db, completed, completed_before + len(rows), 600)
        resumed_s = time.perf_counter() - started
        cpu_s = side.proc.cpu_s() - cpu_before
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
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", help="also measure the code of this git ref (e.g. main), side by side")
    parser.add_argument("--profile", type=float, default=0, help="py-spy the serve processes for this many seconds")
    report = asyncio.run(main(parser.parse_args()))
    print(json.dumps(report, ensure_ascii=False, indent=2))
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    for name in (f"parked-approvals-{STAMP}.json", "parked-approvals-latest.json"):
        (results / name).write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
