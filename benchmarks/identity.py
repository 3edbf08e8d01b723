"""Identity resolution benchmark: batch resolution of ~1,000,000 member records from three sources, and the
real-time match of one new record against them.

Generates members with known truth (examples/member-unification: ~1.73 records per person over a POS
export in GBK, a web shop's REST list served on 127.0.0.1 and a CRM table in SQLite), then

- resolve: `identity.Resolver.resolve` — read the three sources, prepare, block (DuckDB), score,
  cluster, golden records, store everything in the SQLite store — timed by phase, with the CPU seconds
  of this process (user + system, every thread) beside the wall-clock seconds: the machine is shared;
- quality: precision, recall and F1 of the pairs put in one cluster against the generator's truth;
- real time: `Resolver.match` of N new records one at a time (half are new cards of existing
  people, typed differently; half are new people), each stored with its cluster's golden record in
  one commit; p50 and p99 of the latencies.

Prints and saves JSON under benchmarks/results/ (identity-<timestamp>.json and identity-latest.json).
Targets (issue 16): 1,000,000 records in ≤ 60 s with F1 ≥ 0.95; a match p50 ≤ 5 ms, p99 ≤ 20 ms.

Run: `.venv/bin/python benchmarks/identity.py [--people 580000] [--matches 2000]`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples" / "member-unification"))  # the example's generator and shop
STAMP = dt.datetime.now().strftime("%Y-%m-%dT%H%M%S")


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rounded(seconds: dict[str, float]) -> dict[str, float]:
    return {phase: round(value, 2) for phase, value in seconds.items()}


async def _resolve(resolver: Any) -> tuple[Any, float, float]:
    cpu, wall = _cpu_s(), time.perf_counter()
    report = await resolver.resolve()
    return report, time.perf_counter() - wall, _cpu_s() - cpu


async def _matches(resolver: Any, members: Any, count: int) -> list[float]:
    rng = random.Random(5)
    crm = [row for row in members.crm if row["mobile"]]
    latencies = []
    for number in range(count):
        if number % 2 == 0:  # a new card of someone the systems know, typed another way
            row = rng.choice(crm)
            digits = "".join(c for c in row["mobile"] if c.isdigit())[-11:]
            record = {"name": row["name"], "mobile": f"{digits[:3]} {digits[3:7]} {digits[7:]}", "points": 10}
        else:
            record = {"name": "新会员" + str(number), "mobile": f"199{rng.randrange(10**8):08d}", "points": 0}
        started = time.perf_counter()
        await resolver.match("pos-live", f"L{number:07d}", record)
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=580_000, help="people (records: about 1.73 per person)")
    parser.add_argument("--matches", type=int, default=2000)
    args = parser.parse_args()

    from member_unification.shop import serve_shop
    from tests.support.members import data, pair_scores, write_project

    from seamflow import identity, store

    load_before = os.getloadavg()
    started = time.perf_counter()
    members = data.generate(args.people)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "data").mkdir()
        data.write_shop(members, root / "data" / "shop.json")
        server = serve_shop(root / "data" / "shop.json", 0)
        url = f"http://127.0.0.1:{server.server_address[1]}/members?limit=10000"
        path = write_project(members, root, shop_url=url)
        print(
            f"generated {members.records:,} records of {args.people:,} people in {time.perf_counter() - started:.0f} s"
        )
        db = store.SqliteStore(root / "seamflow.db")
        await db.open()
        resolver = identity.Resolver(db, identity.load_resolution(path), base=path.parent)
        report, wall_s, cpu_s = await _resolve(resolver)
        server.shutdown()
        scores = pair_scores(report.assignments, members.truth)
        print(f"resolve: {wall_s:.1f} s wall, {cpu_s:.1f} s CPU")
        print(f"  phases wall s {_rounded(report.seconds)}\n  phases CPU s  {_rounded(report.cpu_seconds)}")
        print(f"quality: precision {scores['precision']:.4f}, recall {scores['recall']:.4f}, F1 {scores['f1']:.4f}")
        latencies = await _matches(resolver, members, args.matches)
        await db.close()
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    result = {
        "benchmark": "identity",
        "at": STAMP,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_before": load_before,
            "load_after": os.getloadavg(),
        },
        "records": members.records,
        "by_source": report.by_source,
        "people": args.people,
        "resolve": {
            "wall_s": round(wall_s, 2),
            "cpu_s": round(cpu_s, 2),
            "records_per_s": round(members.records / wall_s),
            "phases_s": _rounded(report.seconds),
            "phases_cpu_s": _rounded(report.cpu_seconds),
            "pairs": report.pairs,
            "links": report.links,
            "clusters": report.clusters,
        },
        "quality": {k: round(v, 5) if isinstance(v, float) else v for k, v in scores.items()},
        "match_ms": {
            "count": len(latencies),
            "p50": round(statistics.median(latencies), 3),
            "p99": round(p99, 3),
            "max": round(ordered[-1], 3),
        },
        "targets": {"resolve_wall_s": 60, "f1": 0.95, "match_p50_ms": 5, "match_p99_ms": 20},
    }
    print(f"match: p50 {result['match_ms']['p50']} ms, p99 {result['match_ms']['p99']} ms over {len(latencies)}")
    print(json.dumps(result, ensure_ascii=False, indent=2))
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    for name in (f"identity-{STAMP}.json", "identity-latest.json"):
        (out / name).write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", "utf-8")


if __name__ == "__main__":
    asyncio.run(main())
