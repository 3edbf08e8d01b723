"""CSV load benchmark: a GBK POS export streamed by the `file` connector into SQLite through the `sql` connector.

Generates GBK CSV files of realistic rows (Chinese customer names and companies, mainland
mobile numbers, CNY amounts) in a temporary folder, then, for each size, starts a fresh
process that streams the file with `FileConnector.stream("read", …, chunk_rows=N)` and
writes each chunk with one `sql` call (`upsert` with `rows:` and `key: [order_no]` by
default, or `bulk_insert` into a table with a primary key), each with its own idempotency
key as a resumable load would. It measures rows/s end to end and the process's memory
(VmRSS sampled every 20 ms, and VmHWM), and saves the figures as JSON under
benchmarks/results/.

Run: `.venv/bin/python benchmarks/csv_load.py [--sizes 100000,1000000] [--chunk-rows 5000]
[--action upsert|bulk_insert]`.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import json
import os
import platform
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STAMP = dt.datetime.now().strftime("%Y-%m-%dT%H%M%S")

HEADER = ["单号", "客户名称", "手机号", "金额", "门店", "销售时间"]
COLUMNS = ["order_no", "customer", "phone", "amount", "store", "sold_at"]
TABLE = """CREATE TABLE pos_sales (
    order_no TEXT PRIMARY KEY, customer TEXT NOT NULL, phone TEXT, amount TEXT NOT NULL, store TEXT, sold_at TEXT
)"""
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = [
    "伟",
    "芳",
    "娜",
    "秀英",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀兰",
    "霞",
]
CITIES = ["上海", "北京", "深圳", "广州", "杭州", "成都", "武汉", "南京", "苏州", "西安"]
TRADES = ["浦东发展", "商贸", "科技", "餐饮管理", "服饰", "电子", "物流", "食品", "文化传媒", "医药"]
PREFIXES = ["138", "139", "137", "136", "135", "150", "151", "152", "158", "159", "186", "187", "188", "177", "199"]


def generate(path: Path, rows: int, seed: int = 7) -> None:
    """Write `rows` rows of a GBK POS export with a Chinese header row."""
    rng = random.Random(seed)
    start = dt.datetime(2026, 11, 1, 8, 0)
    with path.open("w", encoding="gbk", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        for n in range(1, rows + 1):
            if rng.random() < 0.2:
                customer = f"{rng.choice(CITIES)}{rng.choice(TRADES)}有限公司"
            else:
                customer = rng.choice(SURNAMES) + rng.choice(GIVEN)
            phone = rng.choice(PREFIXES) + f"{rng.randrange(10**8):08d}"
            cents = rng.randrange(100, 5_000_000)
            sold = start + dt.timedelta(seconds=n * 2)
            writer.writerow(
                [
                    f"POS{n:09d}",
                    customer,
                    phone,
                    f"{cents // 100}.{cents % 100:02d}",
                    f"门店{n % 37:02d}",
                    sold.isoformat(sep=" "),
                ]
            )


class RssSampler(threading.Thread):
    """Samples this process's VmRSS (kB) every `interval_s`."""

    def __init__(self, interval_s: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.interval_s = interval_s
        self.samples: list[int] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.samples.append(status_kb("VmRSS"))
            self._halt.wait(self.interval_s)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


async def load(folder: Path, name: str, action: str, chunk_rows: int) -> dict[str, Any]:
    """Stream `folder/name` into a fresh SQLite database; return the figures."""
    from seamflow.connectors.base import Connection
    from seamflow.connectors.file import FileConnector
    from seamflow.connectors.sql import SqlConnector

    db = folder / f"load-{os.getpid()}.db"
    db.unlink(missing_ok=True)
    with sqlite3.connect(db) as conn:
        conn.execute(TABLE)
    files, sql = FileConnector(), SqlConnector()
    await files.open(Connection("pos_exports", "file", {"root": str(folder)}))
    await sql.open(Connection("erp", "sql", {"url": f"sqlite:///{db}"}))
    params = {"path": name, "encoding": "gbk", "columns": COLUMNS}
    rss_before = status_kb("VmRSS")
    sampler = RssSampler()
    sampler.start()
    started = time.perf_counter()
    read_s = 0.0
    count = chunks = 0
    try:
        stream = files.stream("read", params, start=None, chunk_rows=chunk_rows)
        while True:
            t0 = time.perf_counter()
            try:
                chunk = await anext(stream)
            except StopAsyncIteration:
                break
            read_s += time.perf_counter() - t0
            key = f"load:{name}:{json.dumps(chunk.position, sort_keys=True)}"
            if action == "upsert":
                await sql.call(
                    "upsert", {"table": "pos_sales", "rows": chunk.rows, "key": ["order_no"]}, idempotency_key=key
                )
            else:
                await sql.call(
                    "bulk_insert",
                    {"table": "pos_sales", "rows": chunk.rows, "chunk_size": chunk_rows},
                    idempotency_key=key,
                )
            count += len(chunk.rows)
            chunks += 1
    finally:
        elapsed = time.perf_counter() - started
        sampler.stop()
        await sql.close()
        await files.close()
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT COUNT(*), SUM(CAST(amount AS REAL)) FROM pos_sales").fetchone()
        sample = conn.execute("SELECT * FROM pos_sales ORDER BY order_no LIMIT 1").fetchone()
    db.unlink(missing_ok=True)
    return {
        "rows": count,
        "rows_in_table": stored[0],
        "chunks": chunks,
        "seconds": round(elapsed, 3),
        "rows_per_s": round(count / elapsed),
        "file_stream_seconds": round(read_s, 3),
        "file_stream_rows_per_s": round(count / read_s) if read_s else None,
        "sql_seconds": round(elapsed - read_s, 3),
        "rss_before_load_mb": round(rss_before / 1024, 1),
        "peak_rss_sampled_mb": round(max(sampler.samples, default=0) / 1024, 1),
        "vm_hwm_mb": round(status_kb("VmHWM") / 1024, 1),
        "first_row": list(sample) if sample else None,
    }


def child(args: argparse.Namespace) -> None:
    """One measurement in this (fresh) process; prints its figures as JSON."""
    sys.path.insert(0, str(ROOT / "src"))
    folder, name = Path(args.child).parent, Path(args.child).name
    result = asyncio.run(load(folder, name, args.action, args.chunk_rows))
    print(json.dumps(result, ensure_ascii=False))


def environment() -> dict[str, Any]:
    git = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False)
    return {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "loadavg_before": os.getloadavg(),
        "git_commit": git.stdout.strip(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="rows per file (default 100000,1000000)")
    parser.add_argument("--chunk-rows", type=int, default=5000, help="rows per chunk and per sql call (default 5000)")
    parser.add_argument("--action", choices=["upsert", "bulk_insert"], default="upsert", help="the sql action")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="folder for the JSON results")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    env_info = environment()
    workdir = Path(tempfile.mkdtemp(prefix="seamflow-csv-load-"))
    runs = []
    try:
        for size in [int(s) for s in args.sizes.split(",")]:
            path = workdir / f"pos-{size}.csv"
            t0 = time.perf_counter()
            generate(path, size)
            mib, took = path.stat().st_size / 2**20, time.perf_counter() - t0
            print(f"generated {size:,} rows, {mib:.1f} MiB GBK in {took:.1f} s", flush=True)
            command = [
                sys.executable,
                __file__,
                "--child",
                str(path),
                "--action",
                args.action,
                "--chunk-rows",
                str(args.chunk_rows),
                "--out",
                str(args.out),
            ]
            answer = subprocess.run(command, capture_output=True, text=True, check=False)
            if answer.returncode:
                sys.exit(f"the load of {size:,} rows failed:\n{answer.stderr}")
            result = {
                "size": size,
                "file_mib": round(path.stat().st_size / 2**20, 1),
                **json.loads(answer.stdout.splitlines()[-1]),
            }
            runs.append(result)
            print(
                f"{size:>9,} rows: {result['rows_per_s']:>8,} rows/s end to end ({result['seconds']} s;"
                f" file stream {result['file_stream_rows_per_s']:,} rows/s, sql {result['sql_seconds']} s),"
                f" peak RSS {result['peak_rss_sampled_mb']} MB (VmHWM {result['vm_hwm_mb']} MB,"
                f" {result['rss_before_load_mb']} MB before the load)",
                flush=True,
            )
            path.unlink()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    peaks = [r["vm_hwm_mb"] for r in runs]
    targets = {
        "rows_per_s>=50000": all(r["rows_per_s"] >= 50_000 for r in runs),
        "peak_rss_flat (largest within 10% + 10 MB of smallest)": max(peaks) <= min(peaks) * 1.1 + 10,
    }
    print(f"targets: {targets}")
    result = {
        "when": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python", "benchmarks/csv_load.py", *sys.argv[1:]]),
        "settings": {
            "chunk_rows": args.chunk_rows,
            "sql_action": args.action,
            "database": "SQLite file, default durability",
        },
        "environment": {**env_info, "loadavg_after": os.getloadavg()},
        "runs": runs,
        "targets": targets,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=1, ensure_ascii=False)
    (args.out / f"csv-load-{STAMP}.json").write_text(text, encoding="utf-8")
    (args.out / "csv-load-latest.json").write_text(text, encoding="utf-8")
    print(f"saved {args.out / f'csv-load-{STAMP}.json'}")


if __name__ == "__main__":
    main()
