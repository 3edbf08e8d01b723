"""Throughput benchmark: webhook → map → HTTP POST, durable, side by side with its peers.

Starts a timing sink (`benchmarks/sink.py`), `seamflow serve` on a fresh project whose flow
maps each webhook event and POSTs it to the sink (every run journaled, default durability),
and its peers doing the same work: Node-RED (`benchmarks/nodered/`, keeps nothing), a naive
durable forwarder (`benchmarks/naive_forwarder.py`, one SQLite FULL commit per event and step)
and a bare forwarder (`benchmarks/bare_forwarder.py`, keeps nothing). At each concurrency level
`wrk` (a separate C process, `benchmarks/webhook.lua`) drives each of them in turn.

A run counts when its effect reached the sink: runs/s = effects that arrived within the
measured window (after the warm-up) / window length. Latency is end to end, sink arrival
minus the client's send time (`sent_ns` in the body), both `time.time_ns()` on this machine.
See benchmarks/README.md.

Run: `.venv/bin/python benchmarks/throughput.py [--duration 15] [--levels 1,16,64]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from processes import (
    HERE,
    ROOT,
    STAMP,
    Proc,
    RssSampler,
    http_json,
    machine_busy_s,
    rss_trend,
    run_wrk,
    start_bare,
    start_baseline,
    start_naive,
    start_nodered,
    start_seamflow,
    start_sink,
    wait_for_quiet,
)
from pyspy import profile_under_load


# -- measuring ---------------------------------------------------------------------------
def wait_for_effects(sink: Proc, expected: int, *, stall_s: float = 15) -> tuple[int, float]:
    """Wait until the sink saw `expected` effects or stopped making progress; return count and wait."""
    start = time.monotonic()
    last_count, last_change = -1, start
    while True:
        count = http_json(sink.url + "/_bench/count")["count"]
        now = time.monotonic()
        if count >= expected:
            return count, now - start
        if count != last_count:
            last_count, last_change = count, now
        elif now - last_change > stall_s:
            return count, now - start
        time.sleep(0.1)


def settled_db_runs(db_path: Path, prefix: str, timeout_s: float = 30) -> dict[str, int]:
    """`db_runs` once no run is queued or running any more (the last step is journaled after its effect)."""
    deadline = time.monotonic() + timeout_s
    while True:
        runs = db_runs(db_path, prefix)
        if not (runs.get("queued") or runs.get("running")) or time.monotonic() > deadline:
            return runs
        time.sleep(0.1)


def wait_until_idle(sink: Proc, quiet_s: float = 1.0, timeout_s: float = 60) -> None:
    """Wait until no effect arrived at the sink for `quiet_s` (runs accepted earlier finished)."""
    deadline = time.monotonic() + timeout_s
    last = http_json(sink.url + "/_bench/count")["count"]
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        count = http_json(sink.url + "/_bench/count")["count"]
        if count == last:
            return
        last = count


def db_runs(db_path: Path, prefix: str) -> dict[str, int]:
    """Status counts of the runs whose event's dedupe key starts with `prefix`, read from SQLite."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute(
            "SELECT r.status, COUNT(*) FROM runs r JOIN events e ON e.id = r.event_id"
            " WHERE e.dedupe_key LIKE ? GROUP BY r.status",
            (prefix + "-%",),
        ).fetchall()
    finally:
        conn.close()
    return {status: count for status, count in rows}


@dataclass
class Level:
    """What one concurrency level measured."""

    target: str
    concurrency: int
    runs_per_s: float = 0.0
    latency_ms: dict[str, float] | None = None
    errors: int = 0
    status_503: int = 0
    peak_rss_mb: float = 0.0
    runs_per_cpu_s: float = 0.0
    """Runs per second of the server's own CPU time (all its threads): robust when the machine is busy."""
    details: dict[str, Any] = field(default_factory=dict)


def measure_level(proc: Proc, sink: Proc, concurrency: int, args: argparse.Namespace, db_path: Path | None) -> Level:
    prefix = f"{proc.name}-c{concurrency}-{secrets.token_hex(3)}"
    wait_until_idle(sink)
    quiet = wait_for_quiet(args.quiet_below, args.quiet_wait) if args.quiet_wait else None
    http_json(sink.url + "/_bench/reset", method="POST")
    has_peak_reset = proc.reset_peak_rss()
    cpu = {"server": proc.cpu_s(), "sink": sink.cpu_s(), "machine": machine_busy_s()}
    main_run, main_wait = proc.main_thread_sched_s()
    with RssSampler(proc).running() as sampler:
        start_ns = time.time_ns()
        started = time.monotonic()
        wrk, wrk_cpu = run_wrk(proc.url, concurrency, args.warmup + args.duration, prefix)
        wall = time.monotonic() - started
        cpu = {
            k: round(100 * (now - cpu[k]) / wall)
            for k, now in (("server", proc.cpu_s()), ("sink", sink.cpu_s()), ("machine", machine_busy_s()))
        }
        cpu["wrk"] = round(100 * wrk_cpu / wall)
        cpu["others"] = cpu["machine"] - cpu["server"] - cpu["sink"] - cpu["wrk"]  # noise
        run_now, wait_now = proc.main_thread_sched_s()
        loop_thread = {
            "running": round(100 * (run_now - main_run) / wall),
            "waiting_for_cpu": round(100 * (wait_now - main_wait) / wall),
        }
        statuses = {int(k): v for k, v in wrk["statuses"].items()}
        accepted = statuses.get(202, 0) + statuses.get(200, 0)
        effects, drain_s = wait_for_effects(sink, accepted)
    window_start = start_ns + int(args.warmup * 1e9)
    window = http_json(
        f"{sink.url}/_bench/window?start_ns={window_start}&end_ns={window_start + int(args.duration * 1e9)}"
    )
    counts = http_json(sink.url + "/_bench/count")
    socket_errors = sum(wrk["errors"][k] for k in ("connect", "read", "write", "timeout"))
    level = Level(
        target=proc.name,
        concurrency=concurrency,
        runs_per_s=round(window["count"] / args.duration, 1),
        latency_ms=window["latency_ms"],
        errors=socket_errors + sum(v for k, v in statuses.items() if k not in (200, 202, 503)),
        status_503=statuses.get(503, 0),
        peak_rss_mb=proc.peak_rss_mb(),
        runs_per_cpu_s=round(window["count"] / args.duration / max(cpu["server"], 1) * 100),
    )
    level.details = {
        "prefix": prefix,
        "quiet_before": quiet,
        "requests_sent": wrk["requests"],
        "statuses": statuses,
        "socket_errors": wrk["errors"],
        "ack_latency_ms": wrk["ack_latency_ms"],
        "error_sample": wrk["error_sample"],
        "effects_at_sink": effects,
        "duplicate_effects": counts["duplicates"],
        "missing_effects": max(0, accepted - effects),  # answered 202 by the server, no effect
        "drain_after_load_s": round(drain_s, 2),
        "cpu_percent_of_one_core": cpu,
        "server_main_thread_percent": loop_thread,
        "peak_rss_is_per_level": has_peak_reset,
        "rss": rss_trend(sampler.samples, args.warmup),
    }
    if db_path is not None:
        runs = settled_db_runs(db_path, prefix)
        level.details["db_runs"] = runs
        level.errors += sum(v for k, v in runs.items() if k != "completed")
    # wrk does not count the answers of its last requests in flight; their runs finish too
    wait_until_idle(sink, quiet_s=0.5)
    level.details["effects_at_sink_final"] = http_json(sink.url + "/_bench/count")["count"]
    return level


# -- the 1 MiB-payload run -----------------------------------------------------------------
async def _post_big_events(url: str, count: int, concurrency: int, size: int, prefix: str) -> dict[int, int]:
    import aiohttp  # benchmark-only dependency

    statuses: dict[int, int] = {}
    filler = "x" * size
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def client(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            body = json.dumps({
                "order_no": f"{prefix}-{i}", "amount": "19.90", "customer": "张伟",
                "note": f"{i}:" + filler, "sent_ns": time.time_ns(),
            })  # fmt: skip
            async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as answer:
                await answer.read()
                statuses[answer.status] = statuses.get(answer.status, 0) + 1

    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    return statuses


def measure_big_payload(proc: Proc, sink: Proc, args: argparse.Namespace, db_path: Path | None) -> dict[str, Any]:
    prefix = f"{proc.name}-big-{secrets.token_hex(3)}"
    wait_until_idle(sink)
    http_json(sink.url + "/_bench/reset", method="POST")
    before = proc.rss_mb()
    proc.reset_peak_rss()
    with RssSampler(proc, every_s=0.25).running() as sampler:
        started = time.monotonic()
        statuses = asyncio.run(
            _post_big_events(proc.url + "/hooks/orders", args.big_events, 16, args.big_bytes, prefix)
        )
        sent_s = time.monotonic() - started
        effects, drain_s = wait_for_effects(sink, statuses.get(202, 0))
    after = proc.rss_mb()
    time.sleep(5)
    result: dict[str, Any] = {
        "events": args.big_events,
        "field_bytes": args.big_bytes,
        "concurrency": 16,
        "statuses": statuses,
        "effects_at_sink": effects,
        "duplicate_effects": http_json(sink.url + "/_bench/count")["duplicates"],
        "events_per_s": round(args.big_events / (sent_s + drain_s), 1),
        "rss_before_mb": before,
        "rss_after_mb": after,
        "rss_after_5s_idle_mb": proc.rss_mb(),
        "peak_rss_mb": proc.peak_rss_mb(),
        "rss_samples": sampler.samples,
    }
    if db_path is not None:
        result["db_runs"] = settled_db_runs(db_path, prefix)
    return result


# -- report ------------------------------------------------------------------------------
def print_table(levels: list[Level]) -> None:
    columns = ("target", "level", "runs/s", "p50 ms", "p95 ms", "p99 ms", "errors", "503s", "peak RSS MB", "runs/CPU-s")
    head = "{:9} {:>5} {:>8} {:>8} {:>8} {:>8} {:>6} {:>6} {:>11} {:>10}".format(*columns)
    print(head)
    print("-" * len(head))
    for lv in levels:
        lat = lv.latency_ms or {}
        p50, p95, p99 = (lat.get(p, float("nan")) for p in ("p50", "p95", "p99"))
        print(
            f"{lv.target:9} {'c' + str(lv.concurrency):>5} {lv.runs_per_s:>8.0f} {p50:>8.1f} {p95:>8.1f} {p99:>8.1f}"
            f" {lv.errors:>6} {lv.status_503:>6} {lv.peak_rss_mb:>11.1f} {lv.runs_per_cpu_s:>10.0f}"
        )


def environment() -> dict[str, Any]:
    git = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--short", "--", "src"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg_before": os.getloadavg(),
        "git_commit": git,
        "src_changes_uncommitted": dirty.stdout.splitlines(),
        "durability": "full (SEAMFLOW_DURABILITY unset)",
    }


PEERS = ("nodered", "naive", "bare")
TARGET_RATIOS = {"nodered": 1.0, "naive": 1.5, "bare": 0.35}
"""Seamflow runs/s ÷ the peer's at c16 that DESIGN.md asks for."""


def ratios_to_peers(levels: list[Level]) -> dict[str, dict[str, float | None]]:
    """Seamflow runs/s ÷ each other target's runs/s, per level: {"nodered": {"c16": 1.2}, …} (medians of repeats)."""
    by: dict[tuple[str, int], list[float]] = {}
    for lv in levels:  # a level given twice (--levels 16,16,16) is measured twice: use the median
        by.setdefault((lv.target, lv.concurrency), []).append(lv.runs_per_s)
    ratios: dict[str, dict[str, float | None]] = {}
    for (target, c), runs in by.items():
        if target != "seamflow":
            continue
        for peer in dict.fromkeys(t for t, _ in by if t != "seamflow"):
            other = statistics.median(by.get((peer, c), [0.0]))
            ratio = round(statistics.median(runs) / other, 3) if other else None
            ratios.setdefault(peer, {})[f"c{c}"] = ratio
    return ratios


def targets_check(levels: list[Level], ratios: dict[str, dict[str, float | None]]) -> dict[str, Any]:
    c16 = next((lv for lv in levels if lv.target == "seamflow" and lv.concurrency == 16), None)
    c64 = next((lv for lv in levels if lv.target == "seamflow" and lv.concurrency == 64), None)
    if c16 is None:
        return {}
    p99 = (c16.latency_ms or {}).get("p99")
    checks: dict[str, Any] = {
        "c64_runs_per_s>=0.8*c16 (no collapse)": None if c64 is None else c64.runs_per_s >= 0.8 * c16.runs_per_s,
        "c16_p99_ms<25": p99 is not None and p99 < 25,
    }
    for peer, wanted in TARGET_RATIOS.items():
        ratio = ratios.get(peer, {}).get("c16")
        checks[f"c16_ratio_to_{peer}>={wanted}"] = None if ratio is None else ratio >= wanted
    return checks


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=15, help="measured seconds per level (default 15)")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of load before the window (default 2)")
    parser.add_argument("--levels", default="1,16,64", help="concurrency levels (default 1,16,64)")
    parser.add_argument("--big-events", type=int, default=300, help="events in the 1 MiB-payload run (0: skip)")
    parser.add_argument("--big-bytes", type=int, default=1 << 20, help="size of the large string field")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=120,
        help="before each level, wait up to this many s for the machine to be quiet (0: don't)",
    )
    parser.add_argument(
        "--quiet-below", type=float, default=25, help="quiet: all processes use under this %% of a core"
    )
    parser.add_argument(
        "--peers", default=",".join(PEERS), help=f"peers measured beside Seamflow (default {','.join(PEERS)}; '' none)"
    )
    parser.add_argument("--skip-bare", action="store_true", help="leave out the bare forwarder")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout with its own .venv (e.g. the commit before a change): its `seamflow serve`"
        " is measured too, as `sf-base`, at every level right after this one",
    )
    parser.add_argument(
        "--profile",
        type=float,
        default=0,
        help="after the levels, py-spy the server this many s at c16",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="diagnostics only: an environment variable for the Seamflow server (repeatable)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary project and logs")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="folder for the JSON results")
    args = parser.parse_args()
    args.peers = [p for p in args.peers.split(",") if p and not (p == "bare" and args.skip_bare)]
    if unknown := set(args.peers) - set(PEERS):
        parser.error(f"unknown peer(s) {sorted(unknown)}; expected some of {', '.join(PEERS)}")
    return args


def start_targets(
    workdir: Path, sink: Proc, args: argparse.Namespace, stack: contextlib.ExitStack
) -> list[tuple[Proc, Path | None]]:
    """Start every target once; all stay up (idle ones cost next to nothing) so levels interleave."""
    server_env = dict(item.split("=", 1) for item in args.server_env)
    server, db_path = start_seamflow(workdir, sink.url, server_env)
    stack.callback(server.stop)
    targets: list[tuple[Proc, Path | None]] = [(server, db_path)]
    if args.baseline:
        base, base_db = start_baseline(workdir, sink.url, args.baseline.resolve(), server_env)
        stack.callback(base.stop)
        targets.append((base, base_db))
    starters = {"nodered": start_nodered, "naive": start_naive, "bare": start_bare}
    for peer in args.peers:
        proc = starters[peer](workdir, sink.url)
        stack.callback(proc.stop)
        targets.append((proc, None))
    return targets


def main() -> None:
    args = parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")
    levels_wanted = [int(x) for x in args.levels.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="seamflow-bench-"))
    env_info = environment()
    print(f"load average before: {env_info['loadavg_before']}; workdir {workdir}", flush=True)
    levels: list[Level] = []
    big: dict[str, Any] | None = None
    profile: dict[str, Any] | None = None
    sink = start_sink(workdir)
    try:
        with contextlib.ExitStack() as stack:
            targets = start_targets(workdir, sink, args, stack)
            for c in levels_wanted:  # each level measures every target in turn: drift hits all alike
                for proc, db_path in targets:
                    levels.append(measure_level(proc, sink, c, args, db_path))
                    print_table(levels[-1:])
            server, db_path = targets[0]
            if args.profile:
                profile = profile_under_load(server, args.profile, 16, args.out, STAMP)
            if args.big_events:
                big = measure_big_payload(server, sink, args, db_path)
                print(
                    f"1 MiB run: RSS {big['rss_before_mb']} → {big['rss_after_mb']} MB (peak {big['peak_rss_mb']})",
                    flush=True,
                )
    finally:
        sink.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    report(levels, big, profile, args, env_info)


def report(
    levels: list[Level],
    big: dict[str, Any] | None,
    profile: dict[str, Any] | None,
    args: argparse.Namespace,
    env_info: dict[str, Any],
) -> None:
    print()
    print_table(levels)
    ratios = ratios_to_peers(levels)
    print()
    for peer, by_level in ratios.items():
        print(f"seamflow / {peer}: " + ", ".join(f"{c} {r if r is not None else '-'}×" for c, r in by_level.items()))
    for lv in levels:
        rss = lv.details["rss"]
        print(
            f"{lv.target:9} c{lv.concurrency:<3} RSS {rss.get('start_mb')} → {rss.get('end_mb')} MB"
            f" ({rss.get('slope_mb_per_min')} MB/min, {rss.get('verdict')}),"
            f" CPU % of a core {lv.details['cpu_percent_of_one_core']},"
            f" main thread % {lv.details['server_main_thread_percent']},"
            f" drain {lv.details['drain_after_load_s']} s, db {lv.details.get('db_runs', '-')}"
        )
    if big:
        print(
            f"1 MiB payload: {big['events']} events at c16, statuses {big['statuses']},"
            f" RSS before {big['rss_before_mb']} MB, after {big['rss_after_mb']} MB,"
            f" after 5 s idle {big['rss_after_5s_idle_mb']} MB, peak {big['peak_rss_mb']} MB"
        )
    checks = targets_check(levels, ratios)
    print(f"targets (DESIGN.md): {checks}")
    result = {
        "when": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python", "benchmarks/throughput.py", *sys.argv[1:]]),
        "server_env": args.server_env,
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "quiet_wait_s": args.quiet_wait,
            "load_generator": "wrk -t1 (benchmarks/webhook.lua)",
            "baseline": str(args.baseline) if args.baseline else None,
        },
        "environment": {**env_info, "loadavg_after": os.getloadavg()},
        "levels": [vars(lv) for lv in levels],
        "ratio_to_bare": ratios.get("bare", {}),
        "ratios": ratios,
        "targets": checks,
        "big_payload": big,
        "profile": profile,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=1, ensure_ascii=False)
    (args.out / f"throughput-{STAMP}.json").write_text(text, encoding="utf-8")
    (args.out / "throughput-latest.json").write_text(text, encoding="utf-8")
    print(f"saved {args.out / f'throughput-{STAMP}.json'}")


if __name__ == "__main__":
    main()
