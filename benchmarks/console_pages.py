"""Console page speed with many runs stored: server time of the API calls each page makes.

Usage: .venv/bin/python benchmarks/console_pages.py [--runs 1000000] [--samples 40] [--backend sqlite|postgres|both]
                                                   [--pages insight,audit]  (only these pages)

Per backend (a new SQLite project, and a new PostgreSQL database on $SEAMFLOW_BENCH_PG_URL's server,
default postgresql://postgres@127.0.0.1:5432/postgres, dropped at the end) the store is migrated,
then filled straight into its tables by `console_seed.py`: `--runs` runs (five flows over 30 days:
96% completed, 2% failed, 1% dead letters, 1% waiting) with their events (business keys), journal
and event log (≈ one event per run), approvals and tasks, a customer sync (100,000 records, 200,000
links, conflicts), feedback and 100,000 audit entries. Then one `seamflow serve --processes 1`
answers, and the calls each console page makes on its first load (src/seamflow/console/static/js/
pages/) are timed from a client on 127.0.0.1 one after the other, after one warm-up each: median
and p95 of each request (wall time of the answer, so it includes HTTP and JSON) and of each page
(its requests in a row), and the serving process's CPU time per page load. The target (issue 17):
every page under 300 ms with 1,000,000 runs. Results: benchmarks/results/console-pages-latest.json
(with --pages: console-pages-<pages>-latest.json).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
import console_seed as seed

TOKEN = "sf_bench_console_0123456789abcdefghijklmnop"
PG_ADMIN_URL = os.environ.get("SEAMFLOW_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SYNC_SIDE = """
  {side}:
    connection: {side}
    key: id
    updated: updated_at
    fields: {{name: name, phone: phone, tax_id: tax_id}}
    changes: {{poll: {{feed: rows, with: {{table: customers, cursor: updated_at, key: id}}, every: 60s}}}}
    create:
      action: insert
      with: {{table: customers, row: {{name: "{{{{ record.name }}}}", updated_at: "{{{{ now('UTC') }}}}"}}}}
      key: "{{{{ result['keys'][0]['id'] }}}}"
    update:
      action: update
      with: {{table: customers, where: {{id: "{{{{ key | int }}}}"}}, values: {{name: "{{{{ record.name }}}}"}}}}
    list: {{action: query, with: {{sql: "SELECT * FROM customers"}}, items: rows}}
"""
KPIS = """timezone: "+08:00"
kpis:
  - {id: order_to_cash, kind: cycle_time, object_type: order, from: Sales order created, to: Payment received,
     sla: 30d, by: [region]}
  - {id: wait_per_activity, kind: waiting_time, object_type: order, per: activity}
  - {id: paid_per_day, kind: throughput, object_type: order, activity: Payment received, period: day}
"""
# the Insight page's calls; the browser makes the last four at once, the server answers them in turn
INSIGHT = [
    "/api/v1/insight/object-types",
    "/api/v1/insight/kpis",
    "/api/v1/feedback?status=open&limit=20",
    "/api/v1/insight/map?object_type=order",
    "/api/v1/insight/diagnosis?object_type=order&top=5",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_project(root: Path) -> None:
    """Five manual flows, a two-way customer sync between two SQLite tables, and the KPI file."""
    import sqlite3

    (root / "flows").mkdir(parents=True)
    for flow in seed.FLOWS:
        text = f"id: {flow}\ntrigger: {{manual: {{}}}}\nsteps:\n  - id: order\n    transform: 1\n"
        (root / "flows" / f"{flow}.yaml").write_text(text, encoding="utf-8")
    connections = ""
    for side in ("crm", "erp"):
        with contextlib.closing(sqlite3.connect(root.parent / f"{side}.db")) as conn:
            conn.execute(
                "CREATE TABLE customers (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, phone TEXT, tax_id TEXT,"
                " updated_at TEXT NOT NULL)"
            )
        connections += f"{side}: {{connector: sql, url: 'sqlite:///{root.parent / side}.db'}}\n"
    (root / "connections.yaml").write_text(connections, encoding="utf-8")
    (root / "models").mkdir()
    (root / "models" / "customer.yaml").write_text(
        "id: customer\nfields:\n  name: {type: text, required: true}\n  phone: {type: text}\n  tax_id: {type: text}\n",
        encoding="utf-8",
    )
    (root / "syncs").mkdir()
    sides = "".join(SYNC_SIDE.format(side=side) for side in ("crm", "erp"))
    sync = f"id: {seed.SYNC}\nmodel: customer\nmode: two_way\nmatch: [tax_id]\nconflicts: queue\nsides:{sides}"
    (root / "syncs" / f"{seed.SYNC}.yaml").write_text(sync, encoding="utf-8")
    (root / "kpis.yaml").write_text(KPIS, encoding="utf-8")


def serve(project: Path, port: int, database: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "seamflow", "serve", "--project", str(project), "--port", str(port)]
    command += ["--processes", "1", "--log-level", "warning"]
    env = {**os.environ, "SEAMFLOW_DATABASE_URL": database}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1).status_code == 200:
                return process
        if process.poll() is not None:
            raise SystemExit(f"seamflow serve exited with {process.returncode}")
        time.sleep(0.1)
    process.kill()
    raise SystemExit("seamflow serve did not start in 120 s")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of a process and its children so far, from /proc."""
    total, ticks = 0.0, os.sysconf("SC_CLK_TCK")
    pids = [pid]
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            pids += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    for p in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _fresh(call: str) -> str:
    return call + ("&" if "?" in call else "?") + "fresh=true"


def pages(runs: int, found: seed.Seeded) -> dict[str, list[str]]:
    """Each console page's first-load API calls (the shell's /me and /flows come with every page)."""
    middle = runs // 2
    at, flows = found.middle_at_ms, seed.FLOWS
    day = time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime(at / 1000))
    next_day = time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime(at / 1000 + 86_400))
    runs_page = "/api/v1/runs?limit=50"
    return {
        "shell": ["/api/v1/me", "/api/v1/flows"],
        "overview": ["/api/v1/overview", "/api/v1/feeds"],
        "health_ready": ["/health/ready"],
        "flows": ["/api/v1/flows"],
        "flow": [f"/api/v1/flows/{flows[0]}"],
        "runs": ["/api/v1/flows", runs_page],
        "runs_older_page": [f"{runs_page}&before={found.middle_run}"],
        "runs_by_flow": [f"{runs_page}&flow={flows[1]}"],
        "runs_dead_letters": [f"{runs_page}&status=dead_letter"],
        "runs_by_flow_and_status": [f"{runs_page}&flow={flows[2]}&status=failed"],
        "runs_one_day": [f"{runs_page}&since={day}&until={next_day}"],
        "runs_by_business_key": [f"{runs_page}&key=SO-{middle:08d}"],
        "runs_by_business_key_and_flow": [f"{runs_page}&key=SO-{middle:08d}&flow={flows[middle % len(flows)]}"],
        "run": [f"/api/v1/runs/{found.middle_run}"],
        "inbox": ["/api/v1/tasks?assignee=me&status=pending&limit=100"],
        "inbox_history": ["/api/v1/tasks?assignee=me&status=decided&limit=100"],
        "task": [f"/api/v1/tasks/{found.pending_task}"],
        "connections": ["/api/v1/connections"],
        "syncs": ["/api/v1/syncs", f"/api/v1/syncs/{seed.SYNC}/conflicts?status=open"],
        "syncs_resolved": ["/api/v1/syncs", f"/api/v1/syncs/{seed.SYNC}/conflicts?status=resolved"],
        "insight": INSIGHT,
        # a log that grows: the KPIs and diagnosis answer the last result (computed again in the background)
        "insight_after_new_event": INSIGHT,
        # side by side: the same loads asking for a fresh KPIs and diagnosis (what each load did before)
        "insight_fresh_after_new_event": [_fresh(c) if "kpis" in c or "diagnosis" in c else c for c in INSIGHT],
        "insight_one_day": [f"/api/v1/insight/map?object_type=order&from={day}&until={next_day}"],
        "insight_before_after": [f"/api/v1/insight/kpis?before_after={day}"],
        "audit": ["/api/v1/audit?limit=100", f"/api/v1/audit?since={day}&limit=100"],
    }


def stats(times: list[float]) -> dict[str, float]:
    times = sorted(times)
    return {"median_ms": round(statistics.median(times), 1), "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1)}


def get(client: httpx.Client, call: str) -> None:
    answer = client.get(call)
    if answer.status_code != 200:
        raise SystemExit(f"GET {call}: {answer.status_code} {answer.text[:500]}")


def new_event(client: httpx.Client) -> None:
    """One new row of the event log (feedback on a flow): what the index has remembered is forgotten."""
    body = {"kind": "problem", "flow": seed.FLOWS[0], "text": "这个审批总是在等财务总监"}
    answer = client.post("/api/v1/feedback", json=body)
    if answer.status_code != 201:
        raise SystemExit(f"POST /api/v1/feedback: {answer.status_code} {answer.text[:500]}")


def measure(
    client: httpx.Client, pid: int, calls: list[str], samples: int, *, is_cold: bool = False
) -> dict[str, object]:
    """Median and p95 of the page (its calls in a row) and of each call; the server's CPU ms per load.

    With `is_cold`, an event is added to the log before each load (not timed, its CPU counted).
    """
    for call in calls:  # warm: the first answer of a route builds its caches
        get(client, call)
    page: list[float] = []
    each: dict[str, list[float]] = {call: [] for call in calls}
    cpu_before = cpu_s(pid)
    for _ in range(samples):
        if is_cold:
            new_event(client)
        total = 0.0
        for call in calls:
            began = time.perf_counter()
            get(client, call)
            took = (time.perf_counter() - began) * 1000
            each[call].append(took)
            total += took
        page.append(total)
    cpu_ms = (cpu_s(pid) - cpu_before) * 1000 / samples
    return {**stats(page), "cpu_ms": round(cpu_ms, 1), "requests": {call: stats(t) for call, t in each.items()}}


@contextlib.contextmanager
def database(backend: str, project: Path) -> Iterator[str]:
    """The store's URL (empty: the project's SQLite file); a PostgreSQL database is dropped afterwards."""
    if backend == "sqlite":
        yield ""
        return
    import psycopg

    name = f"sf_console_bench_{os.getpid()}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def run_backend(backend: str, runs: int, samples: int, only: list[str]) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="sf-console-bench-") as tmp:
        project = Path(tmp) / "project"
        write_project(project)
        with database(backend, project) as url:
            port = free_port()
            stop(serve(project, port, url))  # migrate the new store, then stop
            plan, began = seed.Plan(runs), time.monotonic()
            if backend == "sqlite":
                seed.fill_sqlite(str(project / ".seamflow" / "seamflow.db"), plan)
            else:
                seed.fill_postgres(url, plan)
            _add_admin_token(backend, project, url)
            filled_s = time.monotonic() - began
            print(f"{backend}: stored {runs:,} runs (and the rest) in {filled_s:.0f} s; load {os.getloadavg()}")
            process = serve(project, port, url)
            result: dict[str, object] = {}
            try:
                headers = {"Authorization": f"Bearer {seed.USER_TOKEN}"}
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=900) as client:
                    began = time.monotonic()
                    get(client, "/api/v1/insight/object-types")  # the index catches up
                    indexed_s = time.monotonic() - began
                    print(f"{backend}: insight index caught up in {indexed_s:.0f} s")
                    for name, calls in pages(runs, plan.seeded()).items():
                        if only and not any(name.startswith(o) for o in only):
                            continue
                        is_cold = name.endswith("_after_new_event")
                        result[name] = found = measure(client, process.pid, calls, samples, is_cold=is_cold)
                        print(f"{backend} {name:30} median {found['median_ms']:8.1f} ms   p95 {found['p95_ms']:8.1f} ms"
                              f"   cpu {found['cpu_ms']:7.1f} ms")  # fmt: skip
            finally:
                stop(process)
    return {"filled_s": round(filled_s), "indexed_s": round(indexed_s), "pages": result}


def _add_admin_token(backend: str, project: Path, url: str) -> None:
    """The bootstrap admin token (health/ready is for it only)."""
    row = ("tok_bench", "bench", hashlib.sha256(TOKEN.encode()).hexdigest(), 0)
    sql = "INSERT INTO api_tokens (id, name, hash, created_ms) VALUES ({0}, {0}, {0}, {0})"
    if backend == "sqlite":
        import sqlite3

        with contextlib.closing(sqlite3.connect(project / ".seamflow" / "seamflow.db")) as conn, conn:
            conn.execute(sql.format("?"), row)
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.format("%s"), row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--pages", default="", help="only the pages whose names start with these (comma-separated)")
    args = parser.parse_args()
    only = [p for p in args.pages.split(",") if p]
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    load_before = os.getloadavg()
    results = {backend: run_backend(backend, args.runs, args.samples, only) for backend in backends}
    saved = {
        "runs": args.runs,
        "samples": args.samples,
        "pages_only": only,
        "target_ms": 300,
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "backends": results,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    name = "console-pages-" + "".join(f"{o}-" for o in only) + "latest.json"  # a part: beside the whole run's
    out = Path(__file__).parent / "results" / name
    out.write_text(json.dumps(saved, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"saved to {out}")


if __name__ == "__main__":
    main()
