"""`seamflow migrate` the way a data steward runs it: killed with `kill -9` mid-run, started again.

The store (checkpoints, quarantine) and the target table are on the suite's backend: a SQLite file
or a PostgreSQL database. After the resume the target holds every good row exactly once, the
quarantine every bad row once with the rule it broke, and the counts add up.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from tests.support import customers_cn, db
from tests.support.wait import eventually

ROWS = 30_000


def _project(project_dir: Path, backend: str) -> tuple[Path, db.Database]:
    (project_dir / "flows").mkdir(parents=True, exist_ok=True)
    (project_dir / "rules").mkdir(exist_ok=True)
    (project_dir / "rules" / "members.yaml").write_text(customers_cn.RULES, encoding="utf-8")
    customers_cn.write_csv(project_dir / "members.csv", ROWS)
    if backend == "sqlite":
        target = db.Database("sqlite", path=project_dir / "crm.db")
        url = f"sqlite:///{target.path}"
    else:
        target = db.new_database("postgres", project_dir)
        assert target.url is not None
        url = target.url.replace("postgresql://", "postgresql+psycopg://")
    columns = ", ".join(f"{name} TEXT" for name in customers_cn.FIELDS if name != "member_no")
    target.query(f"CREATE TABLE members (member_no TEXT PRIMARY KEY, {columns})")
    mapping = {
        "id": "members-2019",
        "source": {"file": "members.csv"},
        "key": ["member_no"],
        "fields": customers_cn.FIELDS,
        "rules": "rules/members.yaml",
        "target": {"sql": {"url": url, "table": "members"}},
        "batch": 300,
    }
    path = project_dir / "members.yaml"
    path.write_text(yaml.safe_dump(mapping, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path, target


def _migrate(project_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seamflow", "migrate", "members.yaml", "--project", ".", *args],
        cwd=project_dir,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _position(store: db.Database) -> int:
    try:
        found = store.query("SELECT position FROM data_migrations WHERE migration_id = 'members-2019'")
    except Exception:  # the schema is not there yet: the command is still starting
        return 0
    return int(found[0][0]) if found else 0


async def test_kill_9_mid_migration_then_resume_loads_every_good_row_once_and_quarantines_every_bad_row(
    project_dir: Path, backend: str, database: db.Database
) -> None:
    _, mapping_target = _project(project_dir, backend)
    first = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "seamflow",
        "migrate",
        "members.yaml",
        "--project",
        ".",
        cwd=project_dir,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )

    async def some_batches_done() -> int:
        position = _position(database)
        assert position >= 1_500, f"checkpoint at {position}"
        return position

    await eventually(some_batches_done, timeout=120, interval=0.02)
    first.send_signal(signal.SIGKILL)
    await first.wait()
    at_kill = _position(database)
    assert 0 < at_kill < ROWS, "killed part-way, after some checkpoints"

    second = _migrate(project_dir, "--json")
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)
    assert report["resumed_at"] == at_kill and report["finished"] is True

    good = {customers_cn.member_no(n) for n in range(1, ROWS + 1) if not customers_cn.is_bad(n)}
    bad = {n for n in range(1, ROWS + 1) if customers_cn.is_bad(n)}
    loaded = [row[0] for row in mapping_target.query("SELECT member_no FROM members")]
    assert len(loaded) == len(good) and set(loaded) == good, "every good row exactly once"
    quarantined = database.query(
        "SELECT row_number, violations FROM quarantine WHERE migration_id = 'members-2019' ORDER BY row_number"
    )
    assert [row[0] for row in quarantined] == sorted(bad), "every bad row once"
    for number, violations in quarantined:
        rules = {item["rule"] for item in json.loads(violations)}
        expected = set()
        if number % 10 == 7:
            expected.add("mobile.type")
        if number % 25 == 3:
            expected.add("id_number.type")
        assert rules == expected, (number, rules)
    assert report["loaded"] == len(good) and report["quarantined"] == len(bad)
    assert report["loaded"] + report["quarantined"] == report["read"] == ROWS, "the counts add up"
    assert report["by_rule"] == {
        "mobile.type": sum(1 for n in bad if n % 10 == 7),
        "id_number.type": sum(1 for n in bad if n % 25 == 3),
    }
    phone = mapping_target.query("SELECT mobile, balance, joined FROM members WHERE member_no = 'M00000005'")[0]
    assert phone[0].startswith("+86") and len(phone[0]) == 14, "phones are stored in E.164"

    again = _migrate(project_dir)
    assert again.returncode == 0 and "had finished" in again.stdout, "a finished migration does nothing"


async def test_ctrl_c_stops_a_migration_and_the_same_command_continues_where_it_stopped(
    project_dir: Path, backend: str, database: db.Database
) -> None:
    _, target = _project(project_dir, backend)
    first = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "seamflow",
        "migrate",
        "members.yaml",
        "--project",
        ".",
        cwd=project_dir,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )

    async def some_batches_done() -> None:
        assert _position(database) >= 1_500

    await eventually(some_batches_done, timeout=120, interval=0.02)
    first.send_signal(signal.SIGINT)
    _, err = await first.communicate()
    stopped_at = _position(database)
    assert first.returncode == 130 and "run the same command to continue" in err.decode()
    assert 0 < stopped_at < ROWS
    owner = database.query("SELECT owner FROM data_migrations WHERE migration_id = 'members-2019'")[0][0]
    assert owner is None, "a stopped migration lets its lease go"
    second = _migrate(project_dir, "--json")
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)
    assert report["resumed_at"] == stopped_at and report["read"] == ROWS
    assert target.query("SELECT COUNT(*) FROM members")[0][0] == report["loaded"]
