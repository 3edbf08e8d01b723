"""Console page speed with many runs stored: server time of the API calls each page makes.

Usage: .venv/bin/python benchmarks/console_pages.py [--runs 1000000] [--samples 40]

A SQLite project gets `--runs` runs (five flows, one event each with a business key, created over
30 days: 96% completed, 2% failed, 1% dead letters, 1% waiting), written straight into the
migrated database; then one `seamflow serve --processes 1` answers, and each page's calls are
timed from a client on 127.0.0.1 one after the other (wall time of the answers, so it includes
HTTP and JSON). Printed and saved: median and p95 per page in ms. The target (issue 17): every
page under 300 ms with 1,000,000 runs. Results: benchmarks/results/console-pages-latest.json.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

TOKEN = "sf_bench_console_0123456789abcdefghijklmnop"
FLOWS = ["contract-signed-to-erp", "erp-shipment-to-crm", "invoice-paid", "member-sync", "procure-to-pay"]
DAY_MS = 86_400_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_project(root: Path) -> None:
    (root / "flows").mkdir(parents=True)
    for flow in FLOWS:
        text = f"id: {flow}\ntrigger: {{manual: {{}}}}\nsteps:\n  - id: order\n    transform: 1\n"
        (root / "flows" / f"{flow}.yaml").write_text(text, encoding="utf-8")
    (root / "connections.yaml").write_text("{}\n", encoding="utf-8")


def status_of(i: int) -> str:
    bucket = i % 100
    return "failed" if bucket < 2 else "dead_letter" if bucket == 2 else "waiting" if bucket == 3 else "completed"


def fill(db: Path, runs: int) -> tuple[str, int]:
    """`runs` runs with their events; ids sort by creation time like the engine's. Returns the
    middle run's id and creation time (ms)."""
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA synchronous=OFF")
    start_ms = int(time.time() * 1000) - 30 * DAY_MS
    step_ms = max(1, 30 * DAY_MS // runs)
    batch = 20_000
    for first in range(0, runs, batch):
        events, rows = [], []
        for i in range(first, min(runs, first + batch)):
            at = start_ms + i * step_ms
            flow = FLOWS[i % len(FLOWS)]
            status = status_of(i)
            event_id, run_id = f"evt_{at:013d}{i:08d}", f"run_{at:013d}{i:08d}"
            events.append((event_id, flow, "manual", f"SO-{i:08d}", None, None, at))
            error = (
                '{"code":"connector.permanent","message":"HTTP 400"}' if status in ("failed", "dead_letter") else None
            )
            finished = None if status == "waiting" else at + 800
            rows.append((run_id, flow, "v1", event_id, status, 0, error, at, at + 800, finished))
        conn.executemany(
            "INSERT INTO events (id, flow_id, trigger, dedupe_key, body, body_ref, received_ms) VALUES (?,?,?,?,?,?,?)",
            events,
        )
        conn.executemany(
            "INSERT INTO runs (id, flow_id, flow_version, event_id, status, generation, error,"
            " created_ms, updated_ms, finished_ms) VALUES (?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
        conn.commit()
    conn.execute(
        "INSERT INTO api_tokens (id, name, hash, created_ms) VALUES ('tok_bench', 'bench', ?, 0)",
        (hashlib.sha256(TOKEN.encode()).hexdigest(),),
    )
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()
    middle = runs // 2
    at = start_ms + middle * step_ms
    return f"run_{at:013d}{middle:08d}", at


def serve(project: Path, port: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "seamflow",
        "serve",
        "--project",
        str(project),
        "--port",
        str(port),
        "--processes",
        "1",
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "SEAMFLOW_DATABASE_URL": ""}
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1).status_code == 200:
                return process
        time.sleep(0.1)
    process.kill()
    raise SystemExit("seamflow serve did not start in 120 s")


def pages(runs: int, before: str, at: int) -> dict[str, list[str]]:
    middle = runs // 2
    day = time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime(at / 1000))
    next_day = time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime(at / 1000 + 86_400))
    return {
        "overview": ["/api/v1/overview"],
        "health_ready": ["/health/ready"],
        "flows": ["/api/v1/flows"],
        "flow": [f"/api/v1/flows/{FLOWS[0]}"],
        "runs": ["/api/v1/flows", "/api/v1/runs?limit=50"],
        "runs_older_page": [f"/api/v1/runs?limit=50&before={before}"],
        "runs_by_flow": [f"/api/v1/runs?flow={FLOWS[1]}&limit=50"],
        "runs_dead_letters": ["/api/v1/runs?status=dead_letter&limit=50"],
        "runs_by_flow_and_status": [f"/api/v1/runs?flow={FLOWS[2]}&status=failed&limit=50"],
        "runs_one_day": [f"/api/v1/runs?since={day}&until={next_day}&limit=50"],
        "runs_by_business_key": [f"/api/v1/runs?key=SO-{middle:08d}&limit=50"],
        "runs_by_business_key_and_flow": [
            f"/api/v1/runs?key=SO-{middle:08d}&flow={FLOWS[middle % len(FLOWS)]}&limit=50"
        ],
        "run": [f"/api/v1/runs/{before}"],
        "inbox": ["/api/v1/tasks?assignee=me&status=pending&limit=100"],
        "connections": ["/api/v1/connections"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sf-console-bench-") as tmp:
        project = Path(tmp) / "project"
        write_project(project)
        port = free_port()
        serve(project, port).terminate()  # migrate the new database, then stop
        time.sleep(1)
        began = time.monotonic()
        middle_run, middle_at = fill(project / ".seamflow" / "seamflow.db", args.runs)
        print(f"stored {args.runs:,} runs in {time.monotonic() - began:.0f} s")
        process = serve(project, port)
        result: dict[str, dict[str, float]] = {}
        try:
            with httpx.Client(
                base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
            ) as client:
                for name, calls in pages(args.runs, middle_run, middle_at).items():
                    for call in calls:  # warm: the first answer of a route builds its caches
                        client.get(call).raise_for_status()
                    times = []
                    for _ in range(args.samples):
                        began = time.perf_counter()
                        for call in calls:
                            client.get(call).raise_for_status()
                        times.append((time.perf_counter() - began) * 1000)
                    times.sort()
                    result[name] = {
                        "median_ms": round(statistics.median(times), 1),
                        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
                    }
                    print(
                        f"{name:32} median {result[name]['median_ms']:8.1f} ms   p95 {result[name]['p95_ms']:8.1f} ms"
                    )
        finally:
            process.terminate()
            process.wait(30)
    saved = {
        "runs": args.runs,
        "samples": args.samples,
        "target_ms": 300,
        "pages": result,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    out = Path(__file__).parent / "results" / "console-pages-latest.json"
    out.write_text(json.dumps(saved, indent=2) + "\n", encoding="utf-8")
    print(f"saved to {out}")


if __name__ == "__main__":
    main()
