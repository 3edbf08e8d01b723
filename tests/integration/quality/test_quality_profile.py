"""`seamflow data profile` on the files and tables data stewards get: a GBK CSV export, an XLSX
workbook, a SQL table of a connection; as text, JSON and a self-contained HTML page."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import yaml

from seamflow import quality
from tests.support import customers_cn


def _profile(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seamflow", "data", "profile", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _columns(found: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    return {column["name"]: column for column in found["columns"]}


def test_a_gbk_export_is_profiled_with_types_nulls_distinct_patterns_and_rule_violations(tmp_path: Path) -> None:
    customers_cn.write_csv(tmp_path / "members.csv", 2_000)
    (tmp_path / "rules.yaml").write_text(customers_cn.RULES, encoding="utf-8")
    mapping = {
        "id": "m",
        "source": {"file": "members.csv"},
        "key": ["member_no"],
        "fields": customers_cn.FIELDS,
        "rules": "rules.yaml",
        "target": {"sql": {"url": "sqlite:///t.db", "table": "t"}},
    }
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(mapping, allow_unicode=True), encoding="utf-8")
    done = _profile(tmp_path, "members.csv", "--mapping", "m.yaml", "--json", "--html", "report.html")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["rows"] == 2_000 and found["encoding"] == "gb18030"
    columns = _columns(found)
    assert columns["手机"]["type"] == "mobile_cn" and columns["身份证号"]["type"] == "resident_id"
    assert columns["开卡日期"]["type"] == "date" and columns["储值余额"]["type"] == "amount"
    assert columns["会员编号"]["distinct"] == 2_000 and not columns["会员编号"]["distinct_is_estimate"]
    assert columns["会员等级"]["distinct"] == 3 and columns["会员等级"]["null_share"] == 0
    assert {p["pattern"] for p in columns["手机"]["patterns"]} >= {"999-9999-9999", "+99 999 9999 9999", "９" * 11}
    bad_phones = sum(1 for n in range(1, 2_001) if n % 10 == 7)
    bad_ids = sum(1 for n in range(1, 2_001) if n % 25 == 3)
    assert columns["手机"]["violations"] == {"mobile.type": bad_phones}
    assert found["violations"] == {"id_number.type": bad_ids, "mobile.type": bad_phones}
    assert found["rows_breaking_rules"] == sum(1 for n in range(1, 2_001) if customers_cn.is_bad(n))
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<svg" in page and "手机" in page and "mobile.type" in page
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page, "self-contained: nothing is fetched"


def test_the_text_report_names_each_column_with_its_type_and_top_values(tmp_path: Path) -> None:
    customers_cn.write_csv(tmp_path / "members.csv", 300, encoding="utf-8")
    done = _profile(tmp_path, "members.csv")
    assert done.returncode == 0, done.stderr
    assert "members.csv: 300 rows, utf-8" in done.stdout
    assert "会员等级  string  nulls 0.0%  distinct 3" in done.stdout
    assert "profiling members.csv: 300/300 rows (100%)" in done.stdout, "plain progress lines off a terminal"


def test_an_xlsx_workbook_is_read_in_streaming_mode(tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("会员")
    sheet.append(customers_cn.COLUMNS)
    for row in customers_cn.rows(500):
        sheet.append(row)
    book.save(tmp_path / "members.xlsx")
    profile = quality.profile_table(quality.open_file(tmp_path / "members.xlsx", sheet="会员"))
    assert profile.rows == 500
    assert {c.name: c.type_guess for c in profile.columns}["身份证号"] == "resident_id"


def test_a_table_of_a_sql_connection_is_profiled_as_connection_dot_table(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    with sqlite3.connect(tmp_path / "pos.db") as conn:
        conn.execute("CREATE TABLE members (member_no TEXT, mobile TEXT, balance TEXT)")
        conn.executemany("INSERT INTO members VALUES (?, ?, ?)", [(r[0], r[2], r[4]) for r in customers_cn.rows(400)])
        conn.execute("INSERT INTO members VALUES ('M99999999', NULL, NULL)")
    (tmp_path / "connections.yaml").write_text(
        f"pos:\n  connector: sql\n  url: sqlite:///{tmp_path / 'pos.db'}\n", encoding="utf-8"
    )
    done = _profile(tmp_path, "pos.members", "--json")
    assert done.returncode == 0, done.stderr
    columns = _columns(json.loads(done.stdout))
    assert columns["mobile"]["nulls"] == 1 and columns["mobile"]["count"] == 401
    assert columns["balance"]["type"] == "amount"


def test_a_missing_file_and_a_broken_rule_file_are_clear_errors(tmp_path: Path) -> None:
    missing = _profile(tmp_path, "nothing.csv")
    assert (
        missing.returncode == 2 and "error [quality.source]: source file nothing.csv does not exist" in missing.stderr
    )
    customers_cn.write_csv(tmp_path / "m.csv", 10)
    (tmp_path / "r.yaml").write_text("id: r\nfields:\n  手机: {type: mobil}\n", encoding="utf-8")
    broken = _profile(tmp_path, "m.csv", "--rules", "r.yaml")
    assert (
        broken.returncode == 2
        and "error [quality.rules_invalid]: r.yaml:3:14 fields[\"手机\"].type: unknown type 'mobil'" in broken.stderr
    )


def test_distinct_counts_beyond_the_exact_bound_are_estimated_within_a_few_percent() -> None:
    rows = ([f"{n:08d}"] for n in range(200_000))
    profile = quality.profile_table(quality.Table("numbers", ["n"], iter(rows)))
    column = profile.columns[0]
    assert column.is_distinct_estimate and abs(column.distinct - 200_000) / 200_000 < 0.05, column.distinct


def test_a_big_table_profiled_on_two_cores_gives_the_profile_of_one(tmp_path: Path) -> None:
    customers_cn.write_csv(tmp_path / "members.csv", 45_000)  # five batches: the second process takes two
    rules = quality.parse_rules(customers_cn.RULES, "rules/members.yaml")
    progress: list[int] = []

    def profile(workers: int) -> dict:  # type: ignore[type-arg]
        table = quality.open_file(tmp_path / "members.csv")
        return quality.profile_table(
            table, rules=rules, fields=customers_cn.FIELDS, workers=workers, on_progress=progress.append
        ).as_json()

    alone = profile(1)
    progress.clear()
    shared = profile(2)
    assert shared == alone
    assert alone["rows"] == 45_000 and alone["rows_breaking_rules"] > 0
    # one report per batch as it is counted; when the helper's batches answer depends on the machine's load
    assert len(progress) == 5 and progress == sorted(set(progress)) and progress[-1] == 45_000, progress
    assert all(done % 5_000 == 0 for done in progress), progress
