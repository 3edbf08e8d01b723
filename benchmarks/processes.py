"""The processes of the throughput benchmark: start them, load them with wrk, watch their memory and CPU.

Linux only: memory, CPU and scheduling figures come from /proc.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = VENV_BIN / "python"
TICKS_PER_S = os.sysconf("SC_CLK_TCK")
STAMP = dt.datetime.now().strftime("%Y-%m-%dT%H%M%S")
LOOPBACK_ALLOW = "127.0.0.0/8,::1,localhost"
"""Every benchmark process (sink, servers, peers) runs on this machine: the outbound guard is told
so explicitly, for this process and the `seamflow` processes it starts (they inherit it)."""
os.environ.setdefault("SEAMFLOW_OUTBOUND_ALLOW", LOOPBACK_ALLOW)

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

    def pids(self) -> list[int]:
        """The process and its children: a `seamflow serve` runs one process per core behind its port."""
        found = [self.pid]
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(stat[1]) == self.pid and stat[0] != "Z":
                    found.append(int(entry))
        return found

    def status_kb(self, field_name: str) -> int:
        """The field summed over the process and its children."""
        total = 0
        for pid in self.pids():
            try:
                lines = Path(f"/proc/{pid}/status").read_text().splitlines()
            except OSError:
                continue
            for line in lines:
                if line.startswith(field_name + ":"):
                    total += int(line.split()[1])
        return total

    def rss_mb(self) -> float:
        return round(self.status_kb("VmRSS") / 1024, 1)

    def peak_rss_mb(self) -> float:
        return round(self.status_kb("VmHWM") / 1024, 1)

    def reset_peak_rss(self) -> bool:
        """Reset VmHWM to the current RSS (Linux `clear_refs` 5), so each level has its own peak."""
        try:
            for pid in self.pids():
                Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    def cpu_s(self) -> float:
        """User + system CPU time of all the threads of the process and its children so far."""
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / TICKS_PER_S

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


def start_seamflow(
    workdir: Path, sink_url: str, extra_env: dict[str, str], seamflow: Path = VENV_BIN / "seamflow"
) -> tuple[Proc, Path]:
    project = workdir / "project"
    (project / "flows").mkdir(parents=True)
    (project / "flows" / "forward.yaml").write_text(FLOW, encoding="utf-8")
    (project / "connections.yaml").write_text(CONNECTIONS.format(url=sink_url), encoding="utf-8")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "SEAMFLOW_DURABILITY"}  # the default: full
    env.update(extra_env)
    log_path = project / "serve.log"
    popen = subprocess.Popen(
        [seamflow, "serve", "--project", project, "--port", str(port), "--log-level", "warning"],
        stdout=log_path.open("wb"), stderr=subprocess.STDOUT, env=env, cwd=ROOT,
    )  # fmt: skip
    proc = Proc("seamflow", popen, f"http://127.0.0.1:{port}")
    wait_ready(proc, log_path)
    return proc, project / ".seamflow" / "seamflow.db"


def start_baseline(workdir: Path, sink_url: str, checkout: Path, extra_env: dict[str, str]) -> tuple[Proc, Path]:
    """`seamflow serve` of another checkout (its own `.venv`), e.g. the commit before a change."""
    seamflow = checkout / ".venv" / "bin" / "seamflow"
    proc, db = start_seamflow(workdir / "baseline", sink_url, extra_env, seamflow=seamflow)
    proc.name = "sf-base"
    return proc, db


def start_naive(workdir: Path, sink_url: str) -> Proc:
    """The naive durable forwarder (`naive_forwarder.py`): one SQLite commit per event and per step."""
    port = free_port()
    log_path = workdir / "naive.log"
    popen = subprocess.Popen(
        [PYTHON, HERE / "naive_forwarder.py", "--port", str(port), "--sink", sink_url, "--db", workdir / "naive.db"],
        stdout=log_path.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT,
    )  # fmt: skip
    proc = Proc("naive", popen, f"http://127.0.0.1:{port}")
    wait_ready(proc, log_path)
    return proc


def start_nodered(workdir: Path, sink_url: str) -> Proc:
    """Node-RED with `nodered/flows.json` (http in → function → http request → http response 202).

    Installs Node-RED from the npm registry into `benchmarks/nodered/node_modules` the first time
    (`npm install`, the version pinned in `nodered/package.json`); it is a peer, not a dependency.
    """
    folder = HERE / "nodered"
    if not (folder / "node_modules" / "node-red").is_dir():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=folder, check=True)
    user_dir = workdir / "nodered"
    user_dir.mkdir()
    shutil.copy(folder / "flows.json", user_dir / "flows.json")  # Node-RED may write beside its flow file
    port = free_port()
    env = {**os.environ, "SINK_ORDERS_URL": sink_url + "/orders", "NODE_RED_FLOW_FILE": str(user_dir / "flows.json")}
    log_path = workdir / "nodered.log"
    popen = subprocess.Popen(
        ["node", folder / "node_modules" / "node-red" / "red.js", "--settings", folder / "settings.js",
         "--userDir", user_dir, "--port", str(port)],
        stdout=log_path.open("wb"), stderr=subprocess.STDOUT, env=env, cwd=folder,
    )  # fmt: skip
    proc = Proc("nodered", popen, f"http://127.0.0.1:{port}")
    wait_ready(proc, log_path, timeout_s=60)
    return proc


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


# -- watching ----------------------------------------------------------------------------
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
