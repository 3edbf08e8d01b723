"""Valid webhooks while slow clients (slowloris) hold connections: latency beside the same load without them.

Usage: .venv/bin/python benchmarks/slowloris.py [--slow 200] [--webhooks 1000] [--concurrency 8] [--rounds 3]

Starts one `seamflow serve` (one process, SQLite, default durability, header timeout 10 s) in a
temporary project with a webhook flow of one transform step. Each round sends `--webhooks`
valid webhooks at `--concurrency` over keep-alive connections, twice: once alone (`quiet`) and
once while `--slow` connections send their request headers a byte every 100 ms (`slowloris`;
they are renewed when the server closes them, so the pressure stays on). The slow clients run
in a process of their own, so their work does not delay the measuring client's event loop. Reports p50/p99 of
the valid webhooks per phase (medians over rounds), their ratio, how many slow connections the
server closed, and saves the figures to benchmarks/results/slowloris-<time>.json. The target
(DESIGN, issue 18): p99 under 50 ms with 200 slow clients.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
FLOW = """id: bench-orders
trigger: {webhook: {path: orders, dedupe_key: "{{ event.body.order_no }}"}}
steps:
  - id: total
    transform: {amount: "{{ event.body.amount }}", customer: "{{ event.body.customer }}"}
"""
HEAD = b"POST /hooks/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Pad: "


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(project: Path, port: int) -> subprocess.Popen[bytes]:
    (project / "flows").mkdir(parents=True)
    (project / "flows" / "orders.yaml").write_text(FLOW, encoding="utf-8")
    (project / "connections.yaml").write_text("{}\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEAMFLOW_")}
    env.update({"SEAMFLOW_PROCESSES": "1", "SEAMFLOW_HEADER_TIMEOUT": "10s"})
    seamflow = [sys.executable, "-m", "seamflow", "serve", "-p", str(project), "--port", str(port)]
    log = (project / "serve.log").open("wb")
    return subprocess.Popen([*seamflow, "--log-level", "warning"], stdout=log, stderr=log, env=env)


async def wait_ready(url: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url + "/health/live", timeout=1)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise SystemExit("seamflow serve did not start")


class Slowloris:
    """`count` connections that trickle header bytes forever; a closed one is replaced."""

    def __init__(self, port: int, count: int) -> None:
        self.port, self.count = port, count
        self.closed_by_server = 0
        self._stop = asyncio.Event()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for _ in range(self.count):
                group.create_task(self._one())

    def stop(self) -> None:
        self._stop.set()

    async def _one(self) -> None:
        while not self._stop.is_set():
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            sent = 0
            try:
                while not self._stop.is_set():
                    writer.write(HEAD[sent % len(HEAD) : sent % len(HEAD) + 1] if sent < len(HEAD) else b"x")
                    await writer.drain()
                    sent += 1
                    with contextlib.suppress(TimeoutError):
                        if await asyncio.wait_for(reader.read(1), 0.1) == b"":
                            self.closed_by_server += 1
                            break
                    if reader.at_eof():
                        self.closed_by_server += 1
                        break
            except ConnectionError:
                self.closed_by_server += 1
            finally:
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()


async def send_webhooks(url: str, count: int, concurrency: int, tag: str) -> list[float]:
    latencies: list[float] = []
    queue = iter(range(count))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def worker() -> None:
            for n in queue:
                body = {"order_no": f"{tag}-{n}", "amount": "1299.00", "customer": "杭州恒达贸易有限公司"}
                started = time.perf_counter()
                answer = await client.post("/hooks/orders", json=body)
                latencies.append((time.perf_counter() - started) * 1000)
                if answer.status_code != 202:
                    raise SystemExit(f"webhook answered {answer.status_code}: {answer.text}")

        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker())
    return latencies


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def measure(args: argparse.Namespace, url: str, port: int) -> dict[str, object]:
    await send_webhooks(url, 200, args.concurrency, "warm")
    rounds: list[dict[str, float]] = []
    closed = 0
    for r in range(args.rounds):
        quiet = await send_webhooks(url, args.webhooks, args.concurrency, f"q{r}")
        tally = Path(tempfile.mkdtemp(prefix="sf-slowloris-")) / "closed"
        pressure = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--slow-clients-only", str(port), str(args.slow), str(tally)
        )
        await asyncio.sleep(1.0)  # let every slow connection open and start trickling (a benchmark, not a test)
        loaded = await send_webhooks(url, args.webhooks, args.concurrency, f"s{r}")
        await asyncio.sleep(11)  # past the header timeout: the server closes the first generation
        pressure.terminate()
        await pressure.wait()
        closed += int(tally.read_text()) if tally.exists() else 0
        rounds.append(
            {
                "quiet_p50_ms": percentile(quiet, 50),
                "quiet_p99_ms": percentile(quiet, 99),
                "slowloris_p50_ms": percentile(loaded, 50),
                "slowloris_p99_ms": percentile(loaded, 99),
            }
        )
        print(json.dumps({"round": r + 1, **{k: round(v, 2) for k, v in rounds[-1].items()}}), flush=True)
    medians = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    return {
        **{k: round(v, 2) for k, v in medians.items()},
        "p99_ratio_slowloris_to_quiet": round(medians["slowloris_p99_ms"] / medians["quiet_p99_ms"], 2),
        "slow_connections_closed_by_server": closed,
        "is_p99_under_50_ms": medians["slowloris_p99_ms"] < 50,
        "rounds": rounds,
    }


async def slow_clients_only(port: int, count: int, tally: Path) -> None:
    """The slow clients' process: trickle until SIGTERM, then write how many the server closed."""
    import signal

    slow = Slowloris(port, count)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, slow.stop)
    await slow.run()
    tally.write_text(str(slow.closed_by_server))


async def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--slow-clients-only":
        await slow_clients_only(int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", type=int, default=200, help="slow connections (default 200)")
    parser.add_argument("--webhooks", type=int, default=1000, help="valid webhooks per phase and round")
    parser.add_argument("--concurrency", type=int, default=8, help="valid webhooks in flight")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="sf-slowloris-") as folder:
        server = start_server(Path(folder) / "project", port)
        try:
            url = f"http://127.0.0.1:{port}"
            await wait_ready(url)
            figures = await measure(args, url, port)
        finally:
            server.kill()
            server.wait()
    report = {
        "benchmark": "slowloris",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "slow_connections": args.slow,
        "webhooks_per_phase": args.webhooks,
        "concurrency": args.concurrency,
        "cpus": os.cpu_count(),
        **figures,
    }
    out = ROOT / "benchmarks" / "results" / f"slowloris-{datetime.now(UTC):%Y-%m-%dT%H%M%S}.json"
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in report.items() if k != "rounds"}, indent=2))
    print(f"saved {out.relative_to(ROOT)}")


if __name__ == "__main__":
    asyncio.run(main())
