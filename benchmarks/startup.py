"""Start-up benchmark: how soon the `seamflow` command answers and a (re)started server serves again.

Usage: .venv/bin/python benchmarks/startup.py [--runs 5] [--src PATH] [--label NAME] [--skip-postgres]

Each figure is the median of `--runs` runs (with min and max), wall time from process start:
- `help`: `seamflow --help` until it exits;
- `validate`: `seamflow flow validate` on examples/lead-to-cash until it exits;
- `serve_ready_cold`: `seamflow serve` on SQLite with 20 flows, a new database (migrations, 20 flow
  versions registered) until `GET /health/ready` answers 200; `serve_ready_warm`: the same restarted
  on that database;
- `restart_sqlite`: `serve` under load (wrk, 16 connections, webhook → map → POST to a sink) is
  killed with SIGKILL; the load stops; a new `serve` is started on the same database. `accept_s`:
  until a webhook is answered 2xx; `first_effect_s`: until the sink receives any effect (a run
  taken over from the dead process, or a new one);
- `restart_postgres`: the same with a `seamflow api` + `seamflow worker` group on PostgreSQL (a
  new database per run); both are killed and both restarted at once.

`--src` runs another checkout's code (PYTHONPATH, same venv), so the code before a change is
measured side by side with the code after it:
    git archive e39f0f6 | tar -x -C /tmp/before && python benchmarks/startup.py --src /tmp/before/src --label before
Results go to benchmarks/results/startup-<label>-<stamp>.json and startup-<label>-latest.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from processes import CONNECTIONS, FLOW, HERE, PYTHON, ROOT, STAMP, Proc, free_port, http_json, start_sink

EXAMPLE = ROOT / "examples" / "lead-to-cash"
TARGETS_S = {"help": 0.3, "validate": 0.6, "serve_ready_cold": 1.0, "restart_sqlite": 1.5, "restart_postgres": 3.0}


# -- the code under test ------------------------------------------------------------------
def seamflow(*argv: object) -> list[str]:
    return [str(PYTHON), "-m", "seamflow", *map(str, argv)]


def child_env(args: argparse.Namespace, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEAMFLOW_")}
    env["PYTHONPATH"] = str(args.src)
    env.update(extra)
    return env


def write_project(folder: Path, sink_url: str, flows: int) -> Path:
    """A project with `flows` webhook → map → POST flows (`/hooks/orders`, `/hooks/orders-1`, …)."""
    (folder / "flows").mkdir(parents=True)
    for i in range(flows):
        text = FLOW if i == 0 else FLOW.replace("bench-forward", f"bench-forward-{i}").replace("orders", f"orders-{i}")
        (folder / "flows" / f"forward-{i}.yaml").write_text(text, encoding="utf-8")
    (folder / "connections.yaml").write_text(CONNECTIONS.format(url=sink_url), encoding="utf-8")
    return folder


# -- timing -------------------------------------------------------------------------------
def summary(samples: list[float]) -> dict[str, Any]:
    return {
        "median_s": round(statistics.median(samples), 3),
        "min_s": round(min(samples), 3),
        "max_s": round(max(samples), 3),
        "runs_s": [round(s, 3) for s in samples],
    }


def repeat(runs: int, once: Callable[[], float]) -> dict[str, Any]:
    return summary([once() for _ in range(runs)])


def timed_command(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, cwd=ROOT, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{argv} exited with {done.returncode}: {done.stderr.decode()[-2000:]}")
    return elapsed


def start(argv: list[str], env: dict[str, str], log: Path, name: str, port: int) -> Proc:
    popen = subprocess.Popen(argv, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, cwd=ROOT)
    return Proc(name, popen, f"http://127.0.0.1:{port}")


def poll_until(proc: Proc, log: Path, check: Callable[[], bool], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError, urllib.error.URLError):
            if check():
                return
        time.sleep(0.01)
    raise RuntimeError(f"{proc.name}: condition not met in {timeout_s}s:\n{log.read_text()[-3000:]}")


def is_ready(proc: Proc) -> bool:
    with urllib.request.urlopen(proc.url + "/health/ready", timeout=1) as answer:
        return bool(answer.status == 200)


def accepts_webhook(proc: Proc) -> bool:
    body = json.dumps({"order_no": f"probe-{time.time_ns()}", "amount": "1.00", "customer": "c", "sent_ns": 0})
    request = urllib.request.Request(
        proc.url + "/hooks/orders", data=body.encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as answer:
            return 200 <= answer.status < 300
    except urllib.error.HTTPError:  # 503 while starting or overloaded: not yet
        return False


def kill(*procs: Proc) -> None:
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            proc.popen.send_signal(signal.SIGKILL)
        proc.popen.wait()


def load(url: str) -> subprocess.Popen[bytes]:
    """wrk at 16 connections sending webhooks until killed."""
    command = ["wrk", "-t1", "-c16", "-d300s", "--timeout", "5s", "-s", str(HERE / "webhook.lua"), url, "--", "load"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# -- the measures ---------------------------------------------------------------------------
def measure_cli(args: argparse.Namespace) -> dict[str, Any]:
    env = child_env(args)
    return {
        "help": repeat(args.runs, lambda: timed_command(seamflow("--help"), env)),
        "validate": repeat(args.runs, lambda: timed_command(seamflow("flow", "validate", "-p", EXAMPLE), env)),
    }


def measure_serve_ready(args: argparse.Namespace, work: Path, sink_url: str) -> dict[str, Any]:
    cold: list[float] = []
    warm: list[float] = []
    for i in range(args.runs):
        project = write_project(work / f"ready-{i}", sink_url, 20)
        for samples in (cold, warm):  # a new database, then a restart on it
            port = free_port()
            log = project / "serve.log"
            started = time.perf_counter()
            proc = start(seamflow("serve", "-p", project, "--port", port), child_env(args), log, "serve", port)
            poll_until(proc, log, lambda p=proc: is_ready(p))
            samples.append(time.perf_counter() - started)
            proc.stop()
    return {"serve_ready_cold": summary(cold), "serve_ready_warm": summary(warm)}


def restart_once(
    args: argparse.Namespace, sink: Proc, launch: Callable[[], tuple[Proc, list[Proc], Path]], load_s: float
) -> dict[str, float]:
    """Start a group, load it, kill -9 every process, restart it; time until it accepts and executes."""
    front, group, log = launch()
    poll_until(front, log, lambda: is_ready(front))
    effects_at_start = http_json(sink.url + "/_bench/count")["count"]
    wrk = load(front.url + "/hooks/orders")
    time.sleep(load_s)  # under load: runs queued, in flight and leased when the group dies
    kill(*group)
    wrk.kill()
    wrk.wait()
    effects_before = http_json(sink.url + "/_bench/count")["count"]
    if effects_before == effects_at_start:
        raise RuntimeError(f"no effect reached the sink during {load_s}s of load; is wrk working?")
    started = time.perf_counter()
    front, group, log = launch()
    try:
        poll_until(front, log, lambda: accepts_webhook(front))
        accept_s = time.perf_counter() - started
        poll_until(front, log, lambda: http_json(sink.url + "/_bench/count")["count"] > effects_before)
        effect_s = time.perf_counter() - started
    finally:
        for proc in group:
            proc.stop()
    return {"accept_s": accept_s, "first_effect_s": effect_s, "effects_under_load": effects_before - effects_at_start}


def measure_restarts(
    args: argparse.Namespace, sink: Proc, launcher: Callable[[Path], Callable[[], tuple[Proc, list[Proc], Path]]]
) -> dict[str, Any]:
    accept: list[float] = []
    effect: list[float] = []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="sf-startup-") as tmp:
            project = write_project(Path(tmp) / "project", sink.url, 1)
            once = restart_once(args, sink, launcher(project), args.load_s)
        accept.append(once["accept_s"])
        effect.append(once["first_effect_s"])
        print(
            f"  run {i + 1}: accepts after {once['accept_s']:.2f}s, first effect {once['first_effect_s']:.2f}s"
            f" ({once['effects_under_load']:.0f} effects under load before the kill)"
        )
    return {**summary(accept), "first_effect": summary(effect)}


def sqlite_launcher(args: argparse.Namespace) -> Callable[[Path], Callable[[], tuple[Proc, list[Proc], Path]]]:
    def for_project(project: Path) -> Callable[[], tuple[Proc, list[Proc], Path]]:
        def launch() -> tuple[Proc, list[Proc], Path]:
            port, log = free_port(), project / "serve.log"
            argv = seamflow("serve", "-p", project, "--port", port, "--log-level", "warning")
            proc = start(argv, child_env(args), log, "serve", port)
            poll_until(proc, log, lambda: is_ready(proc))
            return proc, [proc], log

        return launch

    return for_project


def postgres_launcher(
    args: argparse.Namespace, url: str
) -> Callable[[Path], Callable[[], tuple[Proc, list[Proc], Path]]]:
    def for_project(project: Path) -> Callable[[], tuple[Proc, list[Proc], Path]]:
        def launch() -> tuple[Proc, list[Proc], Path]:
            env = child_env(args, SEAMFLOW_DATABASE_URL=url)
            api_port, worker_port = free_port(), free_port()
            api_log, worker_log = project / "api.log", project / "worker.log"
            common = ("-p", project, "--log-level", "warning")
            api = start(seamflow("api", *common, "--port", api_port), env, api_log, "api", api_port)
            worker = start(seamflow("worker", *common, "--port", worker_port), env, worker_log, "worker", worker_port)
            return api, [api, worker], api_log

        return launch

    return for_project


def measure_restart_postgres(args: argparse.Namespace, sink: Proc) -> dict[str, Any]:
    from cluster import drop_database, new_database

    accept: list[float] = []
    effect: list[float] = []
    for i in range(args.runs):
        url = new_database()
        try:
            with tempfile.TemporaryDirectory(prefix="sf-startup-") as tmp:
                project = write_project(Path(tmp) / "project", sink.url, 1)
                launch = postgres_launcher(args, url)(project)
                first, group, log = launch()  # migrate the new database before the measured starts
                poll_until(first, log, lambda p=first: is_ready(p))
                for proc in group:
                    proc.stop()
                once = restart_once(args, sink, launch, args.load_s)
        finally:
            drop_database(url)
        accept.append(once["accept_s"])
        effect.append(once["first_effect_s"])
        print(
            f"  run {i + 1}: accepts after {once['accept_s']:.2f}s, first effect {once['first_effect_s']:.2f}s"
            f" ({once['effects_under_load']:.0f} effects under load before the kill)"
        )
    return {**summary(accept), "first_effect": summary(effect)}


def verdicts(result: dict[str, Any]) -> dict[str, str]:
    out = {}
    for name, target in TARGETS_S.items():
        if name in result:
            median = result[name]["median_s"]
            out[name] = f"{median:.3f}s {'<=' if median <= target else '>'} {target}s"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (default 5)")
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the source tree to measure (PYTHONPATH)")
    parser.add_argument("--label", default="current", help="names the result files (e.g. before, after)")
    parser.add_argument("--load-s", type=float, default=3, help="seconds of load before each kill -9 (default 3)")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-restarts", action="store_true", help="only the CLI and ready-time figures")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="folder for the JSON results")
    args = parser.parse_args()
    if not args.skip_restarts and shutil.which("wrk") is None:
        parser.error("wrk is needed for the restart figures (or pass --skip-restarts)")
    result: dict[str, Any] = {}
    work = Path(tempfile.mkdtemp(prefix="sf-startup-"))
    sink = start_sink(work)
    try:
        print("CLI …")
        result.update(measure_cli(args))
        print("serve until ready …")
        result.update(measure_serve_ready(args, work, sink.url))
        if not args.skip_restarts:
            print("restart after kill -9 under load, SQLite serve …")
            result["restart_sqlite"] = measure_restarts(args, sink, sqlite_launcher(args))
            if not args.skip_postgres:
                print("restart after kill -9 under load, PostgreSQL api + worker …")
                result["restart_postgres"] = measure_restart_postgres(args, sink)
    finally:
        sink.stop()
        shutil.rmtree(work, ignore_errors=True)
    report(args, result)


def report(args: argparse.Namespace, result: dict[str, Any]) -> None:
    for name, figure in result.items():
        print(f"{name:20} median {figure['median_s']:.3f}s  (min {figure['min_s']:.3f}, max {figure['max_s']:.3f})")
        if "first_effect" in figure:
            e = figure["first_effect"]
            print(f"{'  first effect':20} median {e['median_s']:.3f}s  (min {e['min_s']:.3f}, max {e['max_s']:.3f})")
    checks = verdicts(result)
    for name, verdict in checks.items():
        print(f"target {name}: {verdict}")
    saved = {
        "label": args.label,
        "src": str(args.src),
        "runs": args.runs,
        "load_s": args.load_s,
        "environment": {"loadavg_after": os.getloadavg(), "cpus": os.cpu_count()},
        "figures": result,
        "targets": checks,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(saved, indent=1)
    (args.out / f"startup-{args.label}-{STAMP}.json").write_text(text, encoding="utf-8")
    (args.out / f"startup-{args.label}-latest.json").write_text(text, encoding="utf-8")
    print(f"saved {args.out / f'startup-{args.label}-{STAMP}.json'}")


if __name__ == "__main__":
    main()
