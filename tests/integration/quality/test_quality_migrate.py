"""`seamflow migrate` beyond the happy path: a dry run writes nothing, a reference check reads
another system through its connection, quarantined rows are exported, fixed and re-submitted,
and a mapping that does not fit its source or target is a clear error."""

from __future__ import annotations

import csv
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import yaml

from tests.support import customers_cn

ROWS = 400


def _project(root: Path, *, references: bool = False) -> Path:
    (root / "flows").mkdir(parents=True)
    (root / "rules").mkdir()
    rules = customers_cn.RULES
    fields = dict(customers_cn.FIELDS)
    if references:
        rules += "  province_store: {}\nreferences:\n  - {field: province, connection: erp, action: query, key: name,"
        rules += ' with: {sql: "SELECT name FROM provinces"}}\n'
        with sqlite3.connect(root / "erp.db") as conn:
            conn.execute("CREATE TABLE provinces (name TEXT)")
            conn.executemany("INSERT INTO provinces VALUES (?)", [("北京市",), ("上海市",), ("广东省",)])
        (root / "connections.yaml").write_text(
            f"erp:\n  connector: sql\n  url: sqlite:///{root / 'erp.db'}\n", encoding="utf-8"
        )
    (root / "rules" / "members.yaml").write_text(rules, encoding="utf-8")
    customers_cn.write_csv(root / "members.csv", ROWS)
    mapping = {
        "id": "members",
        "source": {"file": "members.csv"},
        "key": ["member_no"],
        "fields": fields,
        "rules": "rules/members.yaml",
        "target": {"sql": {"url": f"sqlite:///{root / 'crm.db'}", "table": "members", "create": True}},
        "batch": 50,
    }
    (root / "members.yaml").write_text(yaml.safe_dump(mapping, allow_unicode=True), encoding="utf-8")
    return root


def _migrate(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seamflow", "migrate", "members.yaml", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _target_count(root: Path) -> int:
    if not (root / "crm.db").exists():
        return 0
    with sqlite3.connect(root / "crm.db") as conn:
        try:
            return int(conn.execute("SELECT COUNT(*) FROM members").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


BAD = [n for n in range(1, ROWS + 1) if customers_cn.is_bad(n)]


def test_a_dry_run_checks_every_row_and_writes_nothing(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    done = _migrate(root, "--dry-run", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["dry_run"] and report["read"] == ROWS and report["quarantined"] == len(BAD)
    assert _target_count(root) == 0
    real = json.loads(_migrate(root, "--json").stdout)
    assert real["resumed_at"] == 0 and real["loaded"] == ROWS - len(BAD), "the dry run stored no checkpoint"


def test_a_reference_check_reads_the_values_through_the_connection(tmp_path: Path) -> None:
    root = _project(tmp_path / "p", references=True)
    done = _migrate(root, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    not_held = sum(1 for row in customers_cn.rows(ROWS) if row[6] not in ("北京", "上海市", "广东省"))
    assert report["by_rule"]["province.reference"] == not_held > 0


def test_quarantined_rows_are_exported_fixed_and_resubmitted(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    first = json.loads(_migrate(root, "--json").stdout)
    assert first["quarantined"] == len(BAD)
    exported = _migrate(root, "--export-quarantine", "fixes.csv")
    assert exported.returncode == 0 and f"wrote {len(BAD)} quarantined rows" in exported.stdout
    with (root / "fixes.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["_row"]) for r in rows] == BAD
    assert "mobile.type: '1234-" in rows[0]["_reasons"] or "id_number.type" in rows[0]["_reasons"]
    for row in rows[:-1]:  # the steward fixes all but the last
        row["mobile"] = "13800138000"
        if "id_number.type" in row["_reasons"]:
            row["id_number"] = ""
    with (root / "fixes.csv").open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    again = _migrate(root, "--resubmit", "fixes.csv", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["loaded"] == len(BAD) - 1
    assert _target_count(root) == ROWS - 1
    left = _migrate(root, "--export-quarantine", "left.csv")
    assert "wrote 1 quarantined rows" in left.stdout


def test_a_mapping_that_does_not_fit_is_a_clear_error(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    text = (root / "members.yaml").read_text(encoding="utf-8").replace("手机", "手机号")
    (root / "members.yaml").write_text(text, encoding="utf-8")
    done = _migrate(root)
    assert done.returncode == 2
    assert (
        "error [quality.source]: source members.csv has no column '手机号'; its columns are 会员编号, 姓名, 手机"
        in done.stderr
    )
    (root / "members.yaml").write_text("id: m\nsource: {file: a.csv, sql: {url: x, query: y}}\n", encoding="utf-8")
    broken = _migrate(root)
    assert broken.returncode == 2 and "error [quality.mapping_invalid]: members.yaml:2:9 source" in broken.stderr


def test_a_connector_action_target_gets_each_good_row_once_with_its_idempotency_key(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    with sqlite3.connect(root / "crm.db") as conn:
        conn.execute(
            f"CREATE TABLE members ({', '.join(f'{c} TEXT' for c in customers_cn.FIELDS)}, PRIMARY KEY (member_no))"
        )
    (root / "connections.yaml").write_text(
        f"crm:\n  connector: sql\n  url: sqlite:///{root / 'crm.db'}\n", encoding="utf-8"
    )
    mapping = yaml.safe_load((root / "members.yaml").read_text(encoding="utf-8"))
    mapping["target"] = {
        "action": {
            "connection": "crm",
            "action": "upsert",
            "parallel": 4,
            "with": {"table": "members", "key": ["member_no"], "row": "{{ row }}"},
        }
    }
    (root / "members.yaml").write_text(yaml.safe_dump(mapping, allow_unicode=True), encoding="utf-8")
    done = _migrate(root, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["loaded"] == ROWS - len(BAD) == _target_count(root)
    again = _migrate(root, "--restart", "--json")
    assert again.returncode == 0 and _target_count(root) == ROWS - len(BAD), "written again: still once each"
