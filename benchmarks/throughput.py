"""Throughput benchmark: webhook → map → HTTP POST, durable, against a bare forwarder.

Starts a timing sink (`benchmarks/sink.py`), then `seamflow serve` on a fresh project whose
flow maps each webhook event and POSTs it to the sink (every run journaled, default
durability), drives it with `wrk` (a separate C process, `benchmarks/webhook.lua`) at each
concurrency level, then does the same with the bare forwarder (`benchmarks/bare_forwarder.py`).

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
import resource
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = VENV_BIN / "python"
TICKS_PER_S = os.sysconf("SC_CLK_TCK")
STAMP = dt.datetime.now().strftime("%Y-%m-%dT%H%M%S")

FLOW = """\
id: bench-forward
trigger:
  webhook:
    path: orders
    dedupe_key: "{{ event.body.order_no }}"
steps:
  - id: order
    transform:
      number: "{{ event.body.order_no }}"
      amount_cents: "{{ event.body.amount | cents }}"
      customer: "{{ event.body.customer }}"
      sent_ns: "{{ event.body.sent_ns }}"
  - id: post
    action: sink.post
    with:
      path: /orders
      json: "{{ steps.order }}"
    retry: {attempts: 20, backoff: exponential, initial_delay: 100ms, max_delay: 1s}
on_error: dead_letter
"""

CONNECTIONS = """\
sink:
  connector: http
  base_url: {url}
  timeout: 5s
"""


# -- processes ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    """A process under test: its memory and CPU as /proc shows them."""

    name: str
    popen: subprocess.Popen[bytes]
    url: str

    @property
    def pid(self) -> int:
        return self.popen.pid

    def status_kb(self, field_name: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
        return 0

    def rss_mb(self) -> float:
        return round(self.status_kb("VmRSS") / 1024, 1)

    def peak_rss_mb(self) -> float:
        return round(self.status_kb("VmHWM") / 1024, 1)

    def reset_peak_rss(self) -> bool:
        """Reset VmHWM to the current RSS (Linux `clear_refs` 5), so each level has its own peak."""
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    def cpu_s(self) -> float:
        """User + system CPU time of all the process's threads so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS_PER_S

    def main_thread_sched_s(self) -> tuple[float, float]:
        """Seconds the main (event-loop) thread ran on a CPU and waited runnable for one."""
        run_ns, wait_ns, _ = Path(f"/proc/{self.pid}/task/{self.pid}/schedstat").read_text().split()
        return int(run_ns) / 1e9, int(wait_ns) / 1e9

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def machine_busy_s() -> float:
    """CPU time all processes of the machine used so far (every core, from /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / TICKS_PER_S


def wait_for_quiet(threshold_pct: float, max_wait_s: float) -> dict[str, float]:
    """Wait until the whole machine used under `threshold_pct` of a core for 3 s in a row (our
    processes are idle between levels, so what is measured is other people's work)."""
    started = time.monotonic()
    calm = 0
    busy = 0.0
    while time.monotonic() - started < max_wait_s:
        before = machine_busy_s()
        time.sleep(1)
        busy = 100 * (machine_busy_s() - before)
        calm = calm + 1 if busy < threshold_pct else 0
        if calm >= 3:
            break
    return {"waited_s": round(time.monotonic() - started, 1), "machine_busy_percent": round(busy)}


def http_json(url: str, *, method: str = "GET", timeout_s: float = 30) -> Any:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=timeout_s) as answer:
        return json.loads(answer.read())


def wait_ready(proc: Proc, log: Path, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            http_json(proc.url + "/health", timeout_s=1)
            return
        time.sleep(0.05)
    raise RuntimeError(f"{proc.name} not ready in {timeout_s}s:\n{log.read_text()[-3000:]}")


def start_sink(workdir: Path) -> Proc:
    log = (workdir / "sink.log").open("wb")
    popen = subprocess.Popen([PYTHON, HERE / "sink.py", "--port", "0"], stdout=subprocess.PIPE, stderr=log)
    assert popen.stdout is not None
    line = popen.stdout.readline().decode()
    if not line.startswith("SINK_URL "):
        raise RuntimeError(f"the sink did not start: {line!r}")
    return Proc("sink", popen, line.split()[1])


def start_seamflow(workdir: Path, sink_url: str, extra_env: dict[str, str]) -> tuple[Proc, Path]:
    project = workdir / "project"
    (project / "flows").mkdir(parents=True)
    (project / "flows" / "forward.yaml").write_text(FLOW, encoding="utf-8")
    (project / "connections.yaml").write_text(CONNECTIONS.format(url=sink_url), encoding="utf-8")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "SEAMFLOW_DURABILITY"}  # the default: full
    env.update(extra_env)
    log_path = project / "serve.log"
    popen = subprocess.Popen(
        [VENV_BIN / "seamflow", "serve", "--project", project, "--port", str(port), "--log-level", "warning"],
        stdout=log_path.open("wb"), stderr=subprocess.STDOUT, env=env, cwd=ROOT,
    )  # fmt: skip
    proc = Proc("seamflow", popen, f"http://127.0.0.1:{port}")
    wait_ready(proc, log_path)
    return proc, project / ".seamflow" / "seamflow.db"


def start_bare(workdir: Path, sink_url: str) -> Proc:
    port = free_port()
    log_path = workdir / "bare.log"
    popen = subprocess.Popen(
        [PYTHON, HERE / "bare_forwarder.py", "--port", str(port), "--sink", sink_url],
        stdout=log_path.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT,
    )  # fmt: skip
    proc = Proc("bare", popen, f"http://127.0.0.1:{port}")
    wait_ready(proc, log_path)
    return proc


# -- measuring ---------------------------------------------------------------------------
class RssSampler:
    """Samples a process's RSS in a thread while a level runs."""

    def __init__(self, proc: Proc, every_s: float = 0.5) -> None:
        self.proc, self.every_s = proc, every_s
        self.samples: list[tuple[float, float]] = []  # (s since start, MB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.is_set():
            with contextlib.suppress(OSError):
                self.samples.append((round(time.monotonic() - start, 2), self.proc.rss_mb()))
            self._stop.wait(self.every_s)

    @contextlib.contextmanager
    def running(self) -> Iterator[RssSampler]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()


def rss_trend(samples: list[tuple[float, float]], skip_s: float) -> dict[str, Any]:
    """Start/end/max RSS and the least-squares slope after the warm-up: flat or growing."""
    kept = [(t, m) for t, m in samples if t >= skip_s] or samples
    if len(kept) < 2:
        return {"samples": samples}
    n = len(kept)
    mean_t = sum(t for t, _ in kept) / n
    mean_m = sum(m for _, m in kept) / n
    var = sum((t - mean_t) ** 2 for t, _ in kept) or 1.0
    slope = sum((t - mean_t) * (m - mean_m) for t, m in kept) / var
    grown = kept[-1][1] - kept[0][1]
    return {
        "start_mb": kept[0][1],
        "end_mb": kept[-1][1],
        "max_mb": max(m for _, m in kept),
        "slope_mb_per_min": round(slope * 60, 1),
        "verdict": "growing" if grown > max(5.0, 0.05 * kept[0][1]) else "flat",
        "samples": samples,
    }


def run_wrk(url: str, concurrency: int, seconds: float, prefix: str) -> tuple[dict[str, Any], float]:
    """Run wrk as a child process; return its WRK_JSON summary and its CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    command = [
        "wrk", "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "--timeout", "10s",
        "-s", str(HERE / "webhook.lua"), url + "/hooks/orders", "--", prefix,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    for line in done.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            return json.loads(line.removeprefix("WRK_JSON ")), cpu
    raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")


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
    details: dict[str, Any] = field(default_factory=dict)


def measure_level(proc: Proc, sink: Proc, concurrency: int, args: argparse.Namespace, db_path: Path | None) -> Level:
    prefix = f"{proc.name}-c{concurrency}-{secrets.token_hex(3)}"
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
        "missing_effects": max(0, accepted - effects),
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
    http_json(sink.url + "/_bench/reset", method="POST")
    time.sleep(1)
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


# -- profiling ---------------------------------------------------------------------------
def profile_under_load(proc: Proc, seconds: float, concurrency: int, out: Path, stamp: str) -> dict[str, Any]:
    """Run py-spy on the server under wrk load: a flamegraph (svg) and collapsed stacks (txt)."""
    spy = VENV_BIN / "py-spy"
    if not spy.exists():
        return {"skipped": "py-spy is not installed: .venv/bin/pip install py-spy"}
    out.mkdir(parents=True, exist_ok=True)
    files = {"flamegraph": out / f"profile-{proc.name}-c{concurrency}-{stamp}.svg",
             "raw": out / f"profile-{proc.name}-c{concurrency}-{stamp}.txt"}  # fmt: skip
    load = threading.Thread(
        target=run_wrk,
        args=(proc.url, concurrency, 2 * seconds + 4, f"{proc.name}-prof-{secrets.token_hex(3)}"),
    )
    load.start()
    time.sleep(2)
    for fmt, path in files.items():
        subprocess.run(
            [spy, "record", "-p", str(proc.pid), "-d", f"{seconds:g}", "-r", "250", "--threads", "--nonblocking",
             "-f", fmt, "-o", path],
            check=True, capture_output=True,
        )  # fmt: skip
    load.join()
    return {
        "concurrency": concurrency,
        "seconds": seconds,
        **{k: os.path.relpath(v, ROOT) for k, v in files.items()},
        "summary": summarize_profile(files["raw"]),
    }


def summarize_profile(raw: Path, top: int = 25) -> dict[str, Any]:
    """Per-thread sample shares and the top functions, self and inclusive, from py-spy's raw stacks.

    Percentages are of all samples of the thread (py-spy skips idle stacks, so they are
    shares of the thread's busy time; the main thread runs the event loop).
    """
    threads: dict[str, int] = {}
    own: dict[tuple[str, str], int] = {}
    within: dict[tuple[str, str], int] = {}
    for line in raw.read_text(encoding="utf-8").splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames = stack.split(";")
        thread = frames[0].split(": ", 1)[-1]
        count = int(count_text)
        threads[thread] = threads.get(thread, 0) + count
        names = [f.rsplit(":", 1)[0] + ")" if "(" in f else f for f in frames[1:]]
        if names:
            own[thread, names[-1]] = own.get((thread, names[-1]), 0) + count
        for name in set(names):
            within[thread, name] = within.get((thread, name), 0) + count

    def ranked(table: dict[tuple[str, str], int]) -> list[dict[str, Any]]:
        rows = sorted(table.items(), key=lambda kv: -kv[1])[:top]
        return [{"thread": t, "function": f, "percent": round(100 * n / threads[t], 1)} for (t, f), n in rows]

    total = sum(threads.values()) or 1
    return {
        "samples": total,
        "thread_percent": {t: round(100 * n / total, 1) for t, n in threads.items()},
        "self": ranked(own),
        "inclusive": ranked(within),
    }


# -- report ------------------------------------------------------------------------------
def print_table(levels: list[Level]) -> None:
    columns = ("target", "level", "runs/s", "p50 ms", "p95 ms", "p99 ms", "errors", "503s", "peak RSS MB")
    head = "{:9} {:>5} {:>8} {:>8} {:>8} {:>8} {:>6} {:>6} {:>11}".format(*columns)
    print(head)
    print("-" * len(head))
    for lv in levels:
        lat = lv.latency_ms or {}
        p50, p95, p99 = (lat.get(p, float("nan")) for p in ("p50", "p95", "p99"))
        print(
            f"{lv.target:9} {'c' + str(lv.concurrency):>5} {lv.runs_per_s:>8.0f} {p50:>8.1f} {p95:>8.1f} {p99:>8.1f}"
            f" {lv.errors:>6} {lv.status_503:>6} {lv.peak_rss_mb:>11.1f}"
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


def targets_check(levels: list[Level], ratios: dict[int, float | None]) -> dict[str, Any]:
    c16 = next((lv for lv in levels if lv.target == "seamflow" and lv.concurrency == 16), None)
    c64 = next((lv for lv in levels if lv.target == "seamflow" and lv.concurrency == 64), None)
    if c16 is None:
        return {}
    p99 = (c16.latency_ms or {}).get("p99")
    return {
        "c64_runs_per_s>=0.8*c16 (no collapse)": None if c64 is None else c64.runs_per_s >= 0.8 * c16.runs_per_s,
        "c16_runs_per_s>=2000": c16.runs_per_s >= 2000,
        "c16_p99_ms<25": p99 is not None and p99 < 25,
        "c16_ratio_to_bare>=0.35": None if ratios.get(16) is None else ratios[16] >= 0.35,  # type: ignore[operator]
    }


def main() -> None:
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
    parser.add_argument("--skip-bare", action="store_true", help="measure Seamflow only")
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
        server_env = dict(item.split("=", 1) for item in args.server_env)
        server, db_path = start_seamflow(workdir, sink.url, server_env)
        try:
            for c in levels_wanted:
                levels.append(measure_level(server, sink, c, args, db_path))
                print_table(levels[-1:])
            if args.profile:
                profile = profile_under_load(server, args.profile, 16, args.out, STAMP)
            if args.big_events:
                big = measure_big_payload(server, sink, args, db_path)
                print(
                    f"1 MiB run: RSS {big['rss_before_mb']} → {big['rss_after_mb']} MB (peak {big['peak_rss_mb']})",
                    flush=True,
                )
        finally:
            server.stop()
        if not args.skip_bare:
            bare = start_bare(workdir, sink.url)
            try:
                for c in levels_wanted:
                    levels.append(measure_level(bare, sink, c, args, None))
                    print_table(levels[-1:])
            finally:
                bare.stop()
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
    by = {(lv.target, lv.concurrency): lv for lv in levels}
    ratios: dict[int, float | None] = {}
    for (target, c), lv in by.items():
        if target == "seamflow":
            bare = by.get(("bare", c))
            ratios[c] = round(lv.runs_per_s / bare.runs_per_s, 3) if bare and bare.runs_per_s else None
    print()
    print("seamflow / bare: " + ", ".join(f"c{c} {r if r is not None else '-'}×" for c, r in ratios.items()))
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
            "load_generator": "wrk -t1 (benchmarks/webhook.lua)",
        },
        "environment": {**env_info, "loadavg_after": os.getloadavg()},
        "levels": [vars(lv) for lv in levels],
        "ratio_to_bare": {f"c{c}": r for c, r in ratios.items()},
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
