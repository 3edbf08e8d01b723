"""The first process-map question after a restart of `seamflow serve`, on a store whose event log holds
≈1,000,000 rows (150,000 orders of `o2c_log.py`): the index built in memory from the whole log at
that question (before: each process built its own), against the index kept in a DuckDB file and
brought up to date with the rows appended since it stopped (after: what `serve` does now).

    .venv/bin/python benchmarks/insight_restart.py [--cases 150000] [--repeats 3] [--since 1000]

Each round is a fresh process (peak memory is its own ru_maxrss); before each "after" round
`--since` new rows are appended to the log, as traffic while the server was down. Medians printed
and saved to results/insight-restart-<time>.json and insight-restart-latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

BATCH = 10_000


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rows(events):  # type: ignore[no-untyped-def]
    from seamflow import store

    for ev in events:
        objects = {o.type: {"id": o.id, "attributes": dict(o.attributes)} if o.attributes else o.id for o in ev.objects}
        attributes = {"resource": ev.resource} if ev.resource else None
        yield store.LogRow(ev.at, "business", "o2c", None, "emit", ev.activity, objects, attributes)


async def _append(db, rows) -> None:  # type: ignore[no-untyped-def]
    for i in range(0, len(rows), BATCH):
        chunk = rows[i : i + BATCH]
        await db.transact(lambda tx, chunk=chunk: tx.append_log(chunk))


def _store(folder: Path):  # type: ignore[no-untyped-def]
    from seamflow import store

    return store.SqliteStore(folder / "seamflow.db", durability="normal")


async def role_build(folder: Path, cases: int) -> dict[str, object]:
    import o2c_log

    from seamflow import insight

    db = _store(folder)
    await db.open()
    started = time.perf_counter()
    await _append(db, list(_rows(o2c_log.generate(cases))))
    write_s = time.perf_counter() - started
    kept = insight.Insight(db, folder / "index.duckdb")
    started = time.perf_counter()
    events = await kept.catch_up()
    index_s = time.perf_counter() - started
    kept.close()
    await db.close()
    return {"rows": events, "write_log_s": write_s, "build_kept_index_s": index_s}


async def role_grow(folder: Path, since: int, round_no: int) -> dict[str, object]:
    import o2c_log

    db = _store(folder)
    await db.open()
    fresh = list(o2c_log.generate(since // 8 + 1, seed=1000 + round_no))[:since]
    rows = [r for r in _rows(fresh)]
    rows = [
        type(r)(r.at, r.kind, r.flow_id, r.run_id, r.path, r.activity, _renamed(r.objects, round_no), r.attributes)
        for r in rows
    ]
    await _append(db, rows)
    await db.close()
    return {"appended": len(rows)}


def _renamed(objects, round_no: int):  # type: ignore[no-untyped-def]
    # New orders of their own, so that the map's answer changes with the rows appended.
    out = {}
    for otype, value in objects.items():
        if otype == "order":
            value = {**value, "id": f"R{round_no}-{value['id']}"} if isinstance(value, dict) else f"R{round_no}-{value}"
        out[otype] = value
    return out


async def role_first_map(folder: Path, is_kept: bool) -> dict[str, object]:
    from seamflow import insight

    db = _store(folder)
    await db.open()
    started = time.perf_counter()
    found = insight.Insight(db, folder / "index.duckdb" if is_kept else None)
    result = await found.process_map(insight.CaseFilter("order"))
    first_s = time.perf_counter() - started
    found.close()
    await db.close()
    return {"first_map_s": first_s, "cases": result.cases, "peak_mb": _peak_mb()}


def _child(*args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=True, env={**os.environ}
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=150_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--since", type=int, default=1_000, help="rows appended while the server was down")
    parser.add_argument("--role", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--round", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        roles = {
            "build": lambda: role_build(args.folder, args.cases),
            "grow": lambda: role_grow(args.folder, args.since, args.round),
            "before": lambda: role_first_map(args.folder, is_kept=False),
            "after": lambda: role_first_map(args.folder, is_kept=True),
        }
        print(json.dumps(asyncio.run(roles[args.role]())))
        return
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        build = _child("--role", "build", "--folder", tmp, "--cases", str(args.cases))
        print(f"built: {build}", flush=True)
        before, after = [], []
        for n in range(args.repeats):
            before.append(_child("--role", "before", "--folder", tmp))
            _child("--role", "grow", "--folder", tmp, "--since", str(args.since), "--round", str(n))
            after.append(_child("--role", "after", "--folder", tmp))
            print(f"round {n + 1}: before {before[-1]}, after {after[-1]}", flush=True)
        size_mb = (folder / "index.duckdb").stat().st_size / 1e6

    def median(rounds: list[dict[str, object]], key: str) -> float:
        return statistics.median(float(r[key]) for r in rounds)  # type: ignore[arg-type]

    report = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "log_rows": build["rows"],
        "appended_since_stop": args.since,
        "kept_index_mb": size_mb,
        "before_in_memory": {"first_map_s": median(before, "first_map_s"), "peak_mb": median(before, "peak_mb")},
        "after_kept_file": {"first_map_s": median(after, "first_map_s"), "peak_mb": median(after, "peak_mb")},
        "speedup": median(before, "first_map_s") / median(after, "first_map_s"),
        "load_average_at_start": load,
        "load_average_at_end": os.getloadavg(),
        "repeats": args.repeats,
    }
    print(json.dumps(report, ensure_ascii=False, indent=2))
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%S")
    for name in (f"insight-restart-{stamp}.json", "insight-restart-latest.json"):
        (out / name).write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
