"""Data quality benchmark: profile + validate, and migrations with checkpoints, on a GBK customer export.

Generates a CSV of N customers (default 1,000,000) in GBK the way a retail POS exports them
(`tests/support/customers_cn.py`: Chinese names, phones typed five ways, resident ID numbers,
amounts with 元 and ￥, dates in three forms, ~13% bad rows), then runs each phase in its own
process and reads that process's peak RSS from `wait4`:

- floor: plain `csv.reader` over the same file (decode + split, nothing else);
- profile: `seamflow.quality.profile_table` without rules; profile+validate: with the rule file;
- flat memory: profile+validate of the first tenth of the file, to compare peak RSS with the whole;
- migrate to SQLite and to PostgreSQL: `seamflow migrate` (rules, quarantine, a checkpoint in the
  store after each batch of 5,000, upserts into the target), beside a naive load (csv.reader +
  executemany into the same kind of table, no checks, no checkpoints) measured in the same run.

The machine is shared: besides rows per wall-clock second, each phase reports rows per CPU second of
its process (user + system, from `wait4`), which stays meaningful when other work takes the cores.
Prints and saves JSON under benchmarks/results/. Targets (issue 16): profile+validate ≥ 100,000 rows/s
with flat peak RSS; migration ≥ 30,000 rows/s.

Run: `.venv/bin/python benchmarks/data_quality.py [--rows 1000000] [--skip-postgres]`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
STAMP = dt.datetime.now().strftime("%Y-%m-%dT%H%M%S")
PG_ADMIN = os.environ.get("SEAMFLOW_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _phase(name: str, path: Path, extra: str) -> dict[str, Any]:
    """Run inside the child process: one phase over `path`; print rows and seconds as JSON."""
    import csv

    from tests.support import customers_cn

    from seamflow import quality

    started = time.perf_counter()
    if name == "floor":
        with path.open(encoding="gb18030", newline="") as handle:
            rows = sum(1 for _ in csv.reader(handle)) - 1
    elif name in ("profile", "validate"):
        rules = quality.parse_rules(customers_cn.RULES, "rules/members.yaml") if name == "validate" else None
        found = quality.profile_table(quality.open_file(path), rules=rules, fields=customers_cn.FIELDS)
        rows = found.rows
        extra = json.dumps({"rows_breaking_rules": found.rows_breaking_rules, "violations": found.violations})
    elif name == "naive-sqlite":
        import sqlite3

        conn = sqlite3.connect(extra)
        conn.execute(f"CREATE TABLE members ({', '.join(f'{c} TEXT' for c in customers_cn.FIELDS)})")
        with path.open(encoding="gb18030", newline="") as handle:
            reader = csv.reader(handle)
            next(reader)
            with conn:
                conn.executemany(f"INSERT INTO members VALUES ({', '.join('?' * 8)})", reader)
        rows = conn.execute("SELECT COUNT(*) FROM members").fetchone()[0]
        conn.close()
    elif name == "naive-postgres":
        import psycopg

        with psycopg.connect(extra, autocommit=True) as conn, path.open(encoding="gb18030", newline="") as handle:
            conn.execute(f"CREATE TABLE naive ({', '.join(f'{c} TEXT' for c in customers_cn.FIELDS)})")
            reader = csv.reader(handle)
            next(reader)
            with conn.cursor() as cur:
                cur.executemany(f"INSERT INTO naive VALUES ({', '.join(['%s'] * 8)})", list(reader))
            rows = conn.execute("SELECT COUNT(*) FROM naive").fetchone()[0]
    else:
        raise SystemExit(f"unknown phase {name}")
    seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": seconds, "detail": extra}


def _rss_of(command: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> dict[str, Any]:
    """As `_run`, but the peak RSS of exactly this child (wait4 on its pid before anything reaps it)."""
    started = time.perf_counter()
    out_file = tempfile.TemporaryFile(mode="w+")
    child = subprocess.Popen(
        command, stdout=out_file, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, cwd=cwd, text=True
    )
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    out_file.seek(0)
    out = out_file.read()
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({child.returncode}):\n{out[-2000:]}")
    try:
        data = json.loads(out.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        data = {"stdout": out[-500:]}
    cpu = usage.ru_utime + usage.ru_stime
    return {"result": data, "wall_s": wall, "cpu_s": cpu, "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def _phase_command(name: str, path: Path, extra: str = "") -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--phase", name, "--file", str(path), "--extra", extra]


def _migration_project(root: Path, csv_path: Path, url: str, rows: int) -> None:
    import yaml
    from tests.support import customers_cn

    (root / "flows").mkdir(parents=True)
    (root / "rules").mkdir()
    (root / "rules" / "members.yaml").write_text(customers_cn.RULES, encoding="utf-8")
    mapping = {
        "id": f"members-{rows}",
        "source": {"file": str(csv_path)},
        "key": ["member_no"],
        "fields": customers_cn.FIELDS,
        "rules": "rules/members.yaml",
        "target": {"sql": {"url": url, "table": "members", "create": True}},
        "batch": 5000,
    }
    (root / "members.yaml").write_text(yaml.safe_dump(mapping, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _new_pg_database() -> str:
    import psycopg

    name = f"sf_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def _drop_pg_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _migrate(work: Path, csv_path: Path, rows: int, backend: str) -> dict[str, Any]:
    project = work / f"migrate-{backend}"
    env: dict[str, str] = {}
    created: list[str] = []
    if backend == "sqlite":
        target = f"sqlite:///{project / 'crm.db'}"
        naive_target = str(work / "naive.db")
    else:
        store_url, target_url = _new_pg_database(), _new_pg_database()
        created += [store_url, target_url]
        env["SEAMFLOW_DATABASE_URL"] = store_url
        target = target_url.replace("postgresql://", "postgresql+psycopg://")
        naive_target = target_url
    _migration_project(project, csv_path, target, rows)
    try:
        migrated = _rss_of(
            [sys.executable, "-m", "seamflow", "migrate", "members.yaml", "--json"], env=env, cwd=project
        )
        naive = _rss_of(_phase_command(f"naive-{backend}", csv_path, naive_target))
    finally:
        for url in created:
            _drop_pg_database(url)
    report = migrated["result"]
    return {
        "rows_per_s": round(rows / migrated["wall_s"]),
        "rows_per_cpu_s": round(rows / migrated["cpu_s"]),
        "wall_s": round(migrated["wall_s"], 2),
        "peak_rss_mb": migrated["peak_rss_mb"],
        "loaded": report.get("loaded"),
        "quarantined": report.get("quarantined"),
        "by_rule": report.get("by_rule"),
        "naive_load_rows_per_s": round(rows / naive["result"]["seconds"]),
        "ratio_to_naive_load": round(naive["result"]["seconds"] / migrated["wall_s"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--extra", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(_phase(args.phase, args.file, args.extra)))
        return

    from tests.support import customers_cn

    work = Path(tempfile.mkdtemp(prefix="sf-quality-"))
    try:
        big, small = work / "members.csv", work / "members-tenth.csv"
        started = time.perf_counter()
        customers_cn.write_csv(big, args.rows)
        customers_cn.write_csv(small, args.rows // 10)
        size_mb = big.stat().st_size / 1e6
        print(f"generated {args.rows:,} rows ({size_mb:.0f} MB GBK) in {time.perf_counter() - started:.0f}s")
        phases: dict[str, Any] = {}
        for name in ("floor", "profile", "validate"):
            measured = _rss_of(_phase_command(name, big))
            result = measured["result"]
            phases[name] = {
                "rows_per_s": round(result["rows"] / result["seconds"]),
                "rows_per_cpu_s": round(result["rows"] / measured["cpu_s"]),
                "seconds": round(result["seconds"], 2),
                "peak_rss_mb": measured["peak_rss_mb"],
            }
            print(name, phases[name])
        tenth = _rss_of(_phase_command("validate", small))
        phases["validate"]["peak_rss_mb_tenth_of_rows"] = tenth["peak_rss_mb"]
        phases["validate"]["rss_growth_mb_for_9x_rows"] = round(
            phases["validate"]["peak_rss_mb"] - tenth["peak_rss_mb"], 1
        )
        for name in ("profile", "validate"):
            phases[name]["ratio_to_floor"] = round(phases[name]["rows_per_s"] / phases["floor"]["rows_per_s"], 3)
        migrations = {"sqlite": _migrate(work, big, args.rows, "sqlite")}
        print("migrate sqlite", migrations["sqlite"])
        if not args.skip_postgres:
            migrations["postgres"] = _migrate(work, big, args.rows, "postgres")
            print("migrate postgres", migrations["postgres"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    target_profile, target_migrate = 100_000, 30_000
    result = {
        "benchmark": "data_quality",
        "when": STAMP,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_1m": os.getloadavg()[0]},
        "rows": args.rows,
        "phases": phases,
        "migrations": migrations,
        "targets": {
            "validate_rows_per_s": target_profile,
            "validate_met": phases["validate"]["rows_per_s"] >= target_profile,
            "validate_share_of_target": round(phases["validate"]["rows_per_s"] / target_profile, 3),
            "migrate_rows_per_s": target_migrate,
            "migrate_share_of_target": {k: round(v["rows_per_s"] / target_migrate, 3) for k, v in migrations.items()},
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=1, ensure_ascii=False)
    (args.out / f"data-quality-{STAMP}.json").write_text(text, encoding="utf-8")
    (args.out / "data-quality-latest.json").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
