"""Scale-out benchmark: the webhook → map → http flow on PostgreSQL with 1, 2 and 4 worker processes.

Usage: .venv/bin/python benchmarks/cluster.py [--workers 1,2,4] [--duration 10] [--concurrency 32]

Each configuration gets a fresh PostgreSQL database (durable: `synchronous_commit` on) with one
`seamflow api` process accepting webhooks (wrk drives it) and N `seamflow worker` processes
executing the runs; the same run measures one `seamflow serve` on SQLite and one on PostgreSQL
beside them. Completed runs/s and p50/p99 latency (webhook sent → effect at the sink) come from the
sink. Per configuration it also records CPU per process (% of one core), PostgreSQL's CPU, and
the database wait events sampled every 100 ms from pg_stat_activity, which show what limits it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
from processes import (
    CONNECTIONS,
    FLOW,
    HERE,
    STAMP,
    VENV_BIN,
    Proc,
    free_port,
    http_json,
    machine_busy_s,
    run_wrk,
    start_seamflow,
    start_sink,
    wait_ready,
)

ADMIN_URL = os.environ.get("SEAMFLOW_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TICKS = os.sysconf("SC_CLK_TCK")


def postgres_cpu_s() -> float:
    """CPU seconds of every postgres process on this machine so far (other databases' too)."""
    return sum(_process_cpu_s(int(pid)) for pid in _pgrep_postgres())


def _pgrep_postgres() -> list[str]:
    return subprocess.run(["pgrep", "-x", "postgres"], capture_output=True, text=True).stdout.split()


def _process_cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


_SERVER_PROCESSES = ["walwriter", "checkpointer", "background writer"]


def benchmark_postgres_cpu_s(url: str | None) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL process that works for the benchmark's database: its
    backends, and the server's WAL writer, checkpointer and background writer (shared with any other
    database). Backends of other databases — other people's tests and benchmarks on a shared
    machine — are left out; `postgres_cpu_s` counts them too."""
    if url is None:
        return {}
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s OR backend_type = ANY(%s)",
            (url.rsplit("/", 1)[1], _SERVER_PROCESSES),
        ).fetchall()
    return {pid: _process_cpu_s(pid) for (pid,) in rows}


def cpu_since(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two `benchmark_postgres_cpu_s` readings (a backend that started in between counts whole)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


class WaitSampler:
    """Counts wait events of the benchmark database's backends, every 100 ms."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.counts: Counter[str] = Counter()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.is_set():
                rows = conn.execute(
                    "SELECT state, wait_event_type, wait_event FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'"
                ).fetchall()
                self.samples += 1
                for state, kind, event in rows:
                    self.counts[f"{kind}:{event}" if kind else f"CPU ({state})"] += 1
                time.sleep(0.1)

    def __enter__(self) -> WaitSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, float]:
        """Average number of active backends in each state (wait event) per sample."""
        return {k: round(v / max(self.samples, 1), 2) for k, v in self.counts.most_common(8)}


def new_database() -> str:
    name = f"sf_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"


def drop_database(url: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")


def start_role(role: str, project: Path, url: str) -> Proc:
    port = free_port()
    env = {**os.environ, "SEAMFLOW_DATABASE_URL": url}
    log_path = project / f"{role}-{port}.log"
    popen = subprocess.Popen(
        [VENV_BIN / "seamflow", role, "--project", project, "--port", str(port), "--log-level", "warning"],
        stdout=log_path.open("wb"), stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    proc = Proc(role, popen, f"http://127.0.0.1:{port}")
    wait_ready(proc, log_path)
    return proc


def measure(
    name: str, target: Proc, others: list[Proc], sink: Proc, args: argparse.Namespace, url: str | None
) -> dict[str, Any]:
    prefix = f"{name}-{secrets.token_hex(3)}"
    http_json(sink.url + "/_bench/reset", method="POST")
    procs = [target, *others]
    cpu_before = [p.cpu_s() for p in procs]
    pg_before, pg_all_before, machine_before = benchmark_postgres_cpu_s(url), postgres_cpu_s(), machine_busy_s()
    sampler = WaitSampler(url) if url else None
    started = time.monotonic()
    if sampler:
        sampler.__enter__()
    start_ns = time.time_ns()
    wrk, _ = run_wrk(target.url, args.concurrency, args.warmup + args.duration, prefix)
    if sampler:
        sampler.__exit__()
    wall = time.monotonic() - started
    window_start = start_ns + int(args.warmup * 1e9)
    window = http_json(
        f"{sink.url}/_bench/window?start_ns={window_start}&end_ns={window_start + int(args.duration * 1e9)}"
    )
    statuses = {int(k): v for k, v in wrk["statuses"].items()}
    result = {
        "config": name,
        "runs_per_s": round(window["count"] / args.duration, 1),
        "latency_ms": window["latency_ms"],
        "statuses": statuses,
        "cpu_percent_of_one_core": {
            **{
                f"{p.name}{i}": round(100 * (p.cpu_s() - b) / wall)
                for i, (p, b) in enumerate(zip(procs, cpu_before, strict=True))
            },
            "postgres": round(100 * cpu_since(pg_before, benchmark_postgres_cpu_s(url)) / wall),
            "machine": round(100 * (machine_busy_s() - machine_before) / wall),
        },
        # every postgres process of the machine, other databases' backends too (before 2026-12-08 the
        # figure counted in "postgres"): other people's work on a shared server, not the benchmark's
        "postgres_all_processes_percent_of_one_core": round(100 * (postgres_cpu_s() - pg_all_before) / wall),
        "db_active_backends_by_wait": sampler.summary() if sampler else None,
    }
    cpu = result["cpu_percent_of_one_core"]
    seamflow_and_db = sum(v for k, v in cpu.items() if k != "machine")
    result["cpu_percent_seamflow_and_postgres"] = seamflow_and_db
    # CPU per completed run, all of Seamflow's processes and PostgreSQL's together (issue 11: on
    # PostgreSQL within 1.5x of a SQLite serve's, so more machines buy throughput)
    result["runs_per_cpu_s"] = round(result["runs_per_s"] / max(seamflow_and_db, 1) * 100, 1)
    lat = result["latency_ms"]
    print(
        f"{name:12} {result['runs_per_s']:>8} runs/s  {result['runs_per_cpu_s']:>8} runs/CPU-s"
        f"  p50 {lat.get('p50')} ms  p99 {lat.get('p99')} ms"
        f"  CPU {result['cpu_percent_of_one_core']}  waits {result['db_active_backends_by_wait']}",
        flush=True,
    )
    return result


def write_project(root: Path, sink_url: str) -> Path:
    project = root / "project"
    (project / "flows").mkdir(parents=True)
    (project / "flows" / "forward.yaml").write_text(FLOW, encoding="utf-8")
    (project / "connections.yaml").write_text(CONNECTIONS.format(url=sink_url), encoding="utf-8")
    return project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", default="1,2,4", help="worker processes per configuration")
    parser.add_argument("--duration", type=float, default=10, help="measured seconds per configuration")
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--concurrency", type=int, default=32, help="wrk connections")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="sf-cluster-bench-") as tmp:
        root = Path(tmp)
        sink = start_sink(root)
        try:
            serve, _ = start_seamflow(root / "sqlite", sink.url, {})
            try:
                results.append(measure("sqlite-serve", serve, [], sink, args, None))
            finally:
                serve.stop()
            url = new_database()
            try:
                project = write_project(root / "pg-serve", sink.url)
                serve = start_role("serve", project, url)
                try:
                    results.append(measure("pg-serve", serve, [], sink, args, url))
                finally:
                    serve.stop()
            finally:
                drop_database(url)
            for count in [int(n) for n in args.workers.split(",")]:
                url = new_database()
                project = write_project(root / f"pg-{count}", sink.url)
                api = start_role("api", project, url)
                workers = [start_role("worker", project, url) for _ in range(count)]
                try:
                    results.append(measure(f"pg-api+{count}w", api, workers, sink, args, url))
                finally:
                    for p in [api, *workers]:
                        p.stop()
                    drop_database(url)
        finally:
            sink.stop()
    base = next((r["runs_per_cpu_s"] for r in results if r["config"] == "sqlite-serve"), None)
    cpu_ratios = {r["config"]: round(base / r["runs_per_cpu_s"], 2) for r in results if base and r["runs_per_cpu_s"]}
    print(f"CPU per run relative to sqlite-serve (target on PostgreSQL <= 1.5): {cpu_ratios}")
    saved = {
        "when": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu_per_run_relative_to_sqlite_serve": cpu_ratios,
        "command": " ".join([".venv/bin/python", "benchmarks/cluster.py", *sys.argv[1:]]),
        "settings": {"duration_s": args.duration, "warmup_s": args.warmup, "concurrency": args.concurrency},
        "cpus": os.cpu_count(),
        "loadavg_after": os.getloadavg(),
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(saved, indent=1, ensure_ascii=False)
    (args.out / f"cluster-{STAMP}.json").write_text(text, encoding="utf-8")
    (args.out / "cluster-latest.json").write_text(text, encoding="utf-8")
    print(f"saved {args.out / f'cluster-{STAMP}.json'}")


if __name__ == "__main__":
    main()
