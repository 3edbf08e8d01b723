"""Initial-load benchmark: N ERP customers (SQLite) through a two-way customer sync into an empty CRM (SQLite).

Usage: .venv/bin/python benchmarks/sync_load.py [--records 100000] [--chunk 500] [--parallel 32]

Runs `seamflow sync load customers --from erp` as a child process on a fresh project (the store
is the embedded SQLite, durable) and reports records/s and the child's peak RSS; checks that the
CRM ends with exactly N customers. Saved to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from processes import HERE, ROOT, STAMP, VENV_BIN

MODEL = """id: customer
fields:
  name: {type: text, required: true}
  phone: {type: phone_cn}
  tax_id: {type: uscc}
  address: {type: text}
  credit_limit: {type: money}
"""

SIDE = """    connection: {name}
    key: id
    updated: updated_at
    fields: {{name: name, phone: phone, tax_id: tax_id, address: address, credit_limit: credit_limit}}
    changes: {{poll: {{feed: rows, with: {{table: customers, cursor: updated_at, key: id}}, every: 1h}}}}
    create:
      action: insert
      with: {{table: customers, row: {{name: "{{{{ record.name }}}}", phone: "{{{{ record.phone }}}}",
             tax_id: "{{{{ record.tax_id }}}}", address: "{{{{ record.address }}}}",
             credit_limit: "{{{{ record.credit_limit }}}}", updated_at: "{{{{ now('UTC') }}}}"}}}}
      key: "{{{{ result['keys'][0]['id'] }}}}"
    update:
      action: update
      with: {{table: customers, where: {{id: "{{{{ key | int }}}}"}}, values: {{name: "{{{{ record.name }}}}"}}}}
    list: {{action: query, with: {{sql: "SELECT * FROM customers", key: [id]}}, items: rows,
           count: {{action: query, with: {{sql: "SELECT COUNT(*) AS n FROM customers"}}, value: rows.0.n}}}}
"""

TABLE = (
    "CREATE TABLE customers (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, phone TEXT, tax_id TEXT,"
    " address TEXT, credit_limit TEXT, updated_at TEXT NOT NULL)"
)
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = ["伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟"]
CITIES = ["上海市浦东新区", "北京市海淀区", "广州市天河区", "深圳市南山区", "杭州市西湖区", "成都市武侯区"]


def make_project(root: Path, records: int) -> Path:
    project = root / "project"
    for folder in ("flows", "models", "syncs"):
        (project / folder).mkdir(parents=True)
    crm, erp = root / "crm.db", root / "erp.db"
    for path in (crm, erp):
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA journal_mode=WAL")  # as the sample CRM and ERP run their databases
            conn.execute(TABLE)
    with sqlite3.connect(erp) as conn:
        conn.executemany(
            "INSERT INTO customers (name, phone, tax_id, address, credit_limit, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                (
                    SURNAMES[i % len(SURNAMES)] + GIVEN[i % len(GIVEN)] + f"{i}",
                    f"1{3 + i % 7}{i:09d}"[:11],
                    f"91{i % 90 + 10:02d}0000MA{i:07d}X"[:18],
                    f"{CITIES[i % len(CITIES)]}{i % 300}号",
                    f"{(i * 37) % 500000}.00",
                    "2026-01-01T00:00:00+00:00",
                )
                for i in range(records)
            ),
        )
    (project / "connections.yaml").write_text(
        f"crm: {{connector: sql, url: 'sqlite:///{crm}'}}\nerp: {{connector: sql, url: 'sqlite:///{erp}'}}\n",
        encoding="utf-8",
    )
    (project / "models" / "customer.yaml").write_text(MODEL, encoding="utf-8")
    sync = "id: customers\nmodel: customer\nmode: two_way\nmatch: [tax_id]\nownership: {name: crm}\nsides:\n"
    sync += "  crm:\n" + SIDE.format(name="crm") + "  erp:\n" + SIDE.format(name="erp")
    (project / "syncs" / "customers.yaml").write_text(sync, encoding="utf-8")
    return project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=500)
    parser.add_argument("--parallel", type=int, default=32)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sf-sync-load-") as tmp:
        root = Path(tmp)
        project = make_project(root, args.records)
        command = [
            str(VENV_BIN / "seamflow"), "sync", "load", "customers", "--from", "erp", "--project", str(project),
            "--chunk", str(args.chunk), "--parallel", str(args.parallel),
        ]  # fmt: skip
        started = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
        seconds = time.monotonic() - started
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        with sqlite3.connect(root / "crm.db") as conn:
            loaded = conn.execute("SELECT COUNT(*), COUNT(DISTINCT tax_id) FROM customers").fetchone()
    if done.returncode != 0:
        sys.exit(f"sync load failed ({done.returncode}): {done.stderr[-2000:]}")
    result = {
        "when": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python", "benchmarks/sync_load.py", *sys.argv[1:]]),
        "records": args.records,
        "seconds": round(seconds, 1),
        "records_per_s": round(args.records / seconds, 1),
        "peak_rss_mb": round(peak_mb, 1),
        "crm_rows_and_distinct": list(loaded),
        "cli_summary": done.stdout.strip().splitlines()[-1:],
        "cli_errors": done.stderr.strip().splitlines()[-20:],
    }
    print(
        f"{args.records} records in {result['seconds']} s: {result['records_per_s']} records/s,"
        f" peak RSS {result['peak_rss_mb']} MB, CRM rows {loaded[0]} (distinct {loaded[1]})"
    )
    print("\n".join([*result["cli_summary"], *result["cli_errors"]]))
    args.out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=1, ensure_ascii=False)
    (args.out / f"sync-load-{STAMP}.json").write_text(text, encoding="utf-8")
    (args.out / "sync-load-latest.json").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
