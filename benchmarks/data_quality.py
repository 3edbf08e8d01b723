"""Data quality benchmark: profile + validate, and migrations with checkpoints, on a GBK customer export.

Generates a CSV of N customers (default 1,000,000) in GBK the way a retail POS exports them
(`tests/support/customers_cn.py`: Chinese names, phones typed five ways, resident ID numbers,
amounts with 元 and ￥, dates in three forms, ~13% bad rows), then runs each phase in its own
process and reads that process's peak RSS from `wait4`:

- floor: plain `csv.reader` over the same file (decode + split, nothing else);
- profile: `seamflow.quality.profile_table` without rules; profile+validate: with the rule file
  (`validate` with the default workers, `validate1` with workers=1, side by side);
- flat memory: profile+validate of the first tenth of the file, to compare peak RSS with the whole;
- migrate to SQLite and to PostgreSQL: `seamflow migrate` (rules, quarantine, a checkpoint in the
  store after each batch of 5,000, upserts into the target), beside a naive load (csv.reader +
  executemany into the same kind of table, no checks, no checkpoints) measured in the same run.

The machine is shared: besides rows per wall-clock second, each phase reports rows per CPU second of
its process (user + system, from `wait4`), which stays meaningful when other work takes the cores.
Every phase runs `--repeat` times (medians reported, each run's rate kept); with `--baseline REV` the
same phases also run with the code of commit REV (its `src/` exported and put first on PYTHONPATH),
interleaved with this checkout's, so a change is measured against what it replaced under the same
load. `uptime` is recorded before and after. Prints and saves JSON under benchmarks/results/.
Targets (issue 16): profile+validate ≥ 100,000 rows/s with flat peak RSS; migration ≥ 30,000 rows/s.

Run: `.venv/bin/python benchmarks/data_quality.py [--rows 1000000] [--repeat 3] [--baseline REV]
[--skip-postgres] [--skip-migrations]`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
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

    started, cpu_started = time.perf_counter(), time.process_time()
    if name == "floor":
        with path.open(encoding="gb18030", newline="") as handle:
            rows = sum(1 for _ in csv.reader(handle)) - 1
    elif name in ("profile", "validate", "validate1"):
        rules = quality.parse_rules(customers_cn.RULES, "rules/members.yaml") if name != "profile" else None
        one = {"workers": 1} if name == "validate1" else {}  # validate1: without the second process
        found = quality.profile_table(quality.open_file(path), rules=rules, fields=customers_cn.FIELDS, **one)
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
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    code = str(Path(quality.__file__).parents[2])
    return {"rows": rows, "seconds": seconds, "work_cpu_s": cpu, "detail": extra, "code": code}


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


def _code_env(code: Path | None) -> dict[str, str]:
    """The environment of a child that runs the seamflow of `code` (an exported src/; None: this checkout)."""
    return {} if code is None else {"PYTHONPATH": str(code)}


def _export_baseline(rev: str, work: Path) -> Path:
    """Export src/ of the commit `rev` to `work`; a child with it first on PYTHONPATH runs that code."""
    archive = subprocess.run(["git", "archive", rev, "src"], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(work)], input=archive, check=True)
    return work / "src"


def _median(values: list[float]) -> float:
    return statistics.median(values)


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


def _migrate(work: Path, csv_path: Path, rows: int, backend: str, code: Path | None = None) -> dict[str, Any]:
    project = work / f"migrate-{backend}-{uuid.uuid4().hex[:6]}"
    env: dict[str, str] = _code_env(code)
    created: list[str] = []
    if backend == "sqlite":
        target = f"sqlite:///{project / 'crm.db'}"
        naive_target = str(project / "naive.db")
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
        "cpu_s": round(migrated["cpu_s"], 2),
        "wall_s": round(migrated["wall_s"], 2),
        "peak_rss_mb": migrated["peak_rss_mb"],
        "loaded": report.get("loaded"),
        "quarantined": report.get("quarantined"),
        "by_rule": report.get("by_rule"),
        "naive_load_rows_per_s": round(rows / naive["result"]["seconds"]),
        "ratio_to_naive_load": round(naive["result"]["seconds"] / migrated["wall_s"], 3),
    }


def _load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def _measure_phase(name: str, path: Path, code: Path | None) -> dict[str, Any]:
    measured = _rss_of(_phase_command(name, path), env=_code_env(code))
    result = measured["result"]
    return {
        "rows_per_s": result["rows"] / result["seconds"],
        "rows_per_cpu_s": result["rows"] / measured["cpu_s"],
        "rows_per_work_cpu_s": result["rows"] / result["work_cpu_s"],
        "seconds": result["seconds"],
        "peak_rss_mb": measured["peak_rss_mb"],
        "code": result["code"],
    }


def _medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each figure over the runs, and every run's rate (the machine is shared)."""
    out: dict[str, Any] = {"runs": len(runs)}
    for key, value in runs[0].items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            middle = _median([run[key] for run in runs])
            out[key] = round(middle, 2) if isinstance(middle, float) and middle < 1000 else round(middle)
        else:
            out[key] = value
    out["rows_per_s_each_run"] = [round(run["rows_per_s"]) for run in runs]
    if "rows_per_work_cpu_s" in runs[0]:
        out["rows_per_work_cpu_s_each_run"] = [round(run["rows_per_work_cpu_s"]) for run in runs]
    return out


def _sides(baseline: str | None, work: Path) -> dict[str, Path | None]:
    sides: dict[str, Path | None] = {"this": None}
    if baseline:
        (work / "baseline").mkdir()
        sides["baseline"] = _export_baseline(baseline, work / "baseline")
    return sides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each phase; medians are reported")
    parser.add_argument("--baseline", help="also run the phases with the code of this commit, interleaved")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-migrations", action="store_true")
    parser.add_argument(
        "--only",
        help="comma-separated phases to run: profile, validate, validate1 (one process), sqlite, postgres"
        " (the floor always runs)",
    )
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--extra", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(_phase(args.phase, args.file, args.extra)))
        return

    from tests.support import customers_cn

    load_before = _load()
    work = Path(tempfile.mkdtemp(prefix="sf-quality-"))
    try:
        sides = _sides(args.baseline, work)
        big, small = work / "members.csv", work / "members-tenth.csv"
        started = time.perf_counter()
        customers_cn.write_csv(big, args.rows)
        customers_cn.write_csv(small, args.rows // 10)
        size_mb = big.stat().st_size / 1e6
        print(f"generated {args.rows:,} rows ({size_mb:.0f} MB GBK) in {time.perf_counter() - started:.0f}s")
        runs: dict[str, dict[str, list[dict[str, Any]]]] = {side: {} for side in sides}
        only = set(args.only.split(",")) | {"floor"} if args.only else None
        backends = ("sqlite",) if args.skip_postgres else ("sqlite", "postgres")
        backends = tuple(b for b in backends if only is None or b in only)
        for _ in range(args.repeat):  # each round runs every phase on every side, so load hits them alike
            for name in ("floor", "profile", "validate", "validate1"):
                if only is not None and name not in only:
                    continue
                for side, code in sides.items():
                    if name in ("floor", "validate1") and side != "this":  # validate1 meets validate side by side
                        continue
                    runs[side].setdefault(name, []).append(_measure_phase(name, big, code))
                    print(side, name, {k: v for k, v in runs[side][name][-1].items() if k != "code"})
            if not args.skip_migrations:
                for backend in backends:
                    for side, code in sides.items():
                        runs[side].setdefault(f"migrate-{backend}", []).append(
                            _migrate(work, big, args.rows, backend, code)
                        )
                        print(side, f"migrate {backend}", runs[side][f"migrate-{backend}"][-1])
        results = {side: {name: _medians(found) for name, found in phases.items()} for side, phases in runs.items()}
        phases = results["this"]
        if "validate" in phases:
            tenth = _rss_of(_phase_command("validate", small))
            phases["validate"]["peak_rss_mb_tenth_of_rows"] = tenth["peak_rss_mb"]
            phases["validate"]["rss_growth_mb_for_9x_rows"] = round(
                phases["validate"]["peak_rss_mb"] - tenth["peak_rss_mb"], 1
            )
        for side_phases in results.values():
            for name in ("profile", "validate", "validate1"):
                if name not in side_phases:
                    continue
                side_phases[name]["ratio_to_floor"] = round(
                    side_phases[name]["rows_per_s"] / phases["floor"]["rows_per_s"], 3
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = _summary(args, results, load_before)
    args.out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=1, ensure_ascii=False)
    (args.out / f"data-quality-{STAMP}.json").write_text(text, encoding="utf-8")
    (args.out / "data-quality-latest.json").write_text(text, encoding="utf-8")
    print(text)


def _summary(args: argparse.Namespace, results: dict[str, dict[str, Any]], load_before: str) -> dict[str, Any]:
    target_profile, target_migrate = 100_000, 30_000
    phases = results["this"]
    migrations = {name.removeprefix("migrate-"): found for name, found in phases.items() if name.startswith("migrate")}
    speedups: dict[str, Any] = {}
    if "baseline" in results:
        for name, found in results["baseline"].items():
            speedups[name] = {
                "wall": round(phases[name]["rows_per_s"] / found["rows_per_s"], 2),
                "cpu": round(phases[name]["rows_per_cpu_s"] / found["rows_per_cpu_s"], 2),
            }
            if "rows_per_work_cpu_s" in found:
                speedups[name]["work_cpu"] = round(
                    phases[name]["rows_per_work_cpu_s"] / found["rows_per_work_cpu_s"], 2
                )
    return {
        "benchmark": "data_quality",
        "when": STAMP,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "uptime_before": load_before,
            "uptime_after": _load(),
        },
        "rows": args.rows,
        "repeat": args.repeat,
        "baseline": args.baseline,
        "phases": {name: found for name, found in phases.items() if not name.startswith("migrate")},
        "migrations": migrations,
        "baseline_phases": results.get("baseline"),
        "speedup_over_baseline": speedups,
        "targets": {
            "validate_rows_per_s": target_profile,
            **(
                {
                    "validate_met": phases["validate"]["rows_per_s"] >= target_profile,
                    "validate_share_of_target": round(phases["validate"]["rows_per_s"] / target_profile, 3),
                    "validate_share_of_target_per_cpu_s": round(
                        phases["validate"]["rows_per_cpu_s"] / target_profile, 3
                    ),
                }
                if "validate" in phases
                else {}
            ),
            "migrate_rows_per_s": target_migrate,
            "migrate_share_of_target": {k: round(v["rows_per_s"] / target_migrate, 3) for k, v in migrations.items()},
            "migrate_share_of_target_per_cpu_s": {
                k: round(v["rows_per_cpu_s"] / target_migrate, 3) for k, v in migrations.items()
            },
        },
    }


if __name__ == "__main__":
    main()
