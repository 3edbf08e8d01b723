"""Record sync between two real databases (a CRM and an ERP, SQLite files) through `seamflow serve`.

Ownership: name, phone and email belong to the CRM, credit limit to the ERP; the address may
change on both sides (latest change wins). Every write to either table is counted by a trigger,
so a ping-pong would show as an unbounded count.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.support.server import Server, make_project
from tests.support.wait import eventually

MODEL = """
id: customer
fields:
  name: {type: text, required: true}
  phone: {type: phone_cn}
  email: {type: email}
  tax_id: {type: uscc}
  address: {type: text}
  credit_limit: {type: money}
"""

SYNC = """
id: customers
model: customer
mode: two_way
match: [tax_id]
ownership: {name: crm, phone: crm, email: crm, credit_limit: erp}
conflicts: latest
sides:
  crm:
    connection: crm
    key: id
    updated: updated_at
    fields: {name: name, phone: mobile, email: email, tax_id: tax_no, address: address, credit_limit: credit}
    changes: {poll: {feed: rows, with: {table: customers, cursor: updated_at, key: id}, every: 200ms}}
    create:
      action: insert
      with: {table: customers, row: {name: "{{ record.name }}", mobile: "{{ record.mobile }}",
             email: "{{ record.email }}", tax_no: "{{ record.tax_no }}", address: "{{ record.address }}",
             credit: "{{ record.credit }}", updated_at: "{{ now('UTC') }}"}}
      key: "{{ result['keys'][0]['id'] }}"
    update:
      action: update
      with: {table: customers, where: {id: "{{ key | int }}"},
             values: {name: "{{ record.name }}", mobile: "{{ record.mobile }}", email: "{{ record.email }}",
                      tax_no: "{{ record.tax_no }}", address: "{{ record.address }}", credit: "{{ record.credit }}",
                      updated_at: "{{ now('UTC') }}"}}
    list: {action: query, with: {sql: "SELECT * FROM customers"}, items: rows}
  erp:
    connection: erp
    key: id
    updated: updated_at
    fields: {name: name, phone: phone, email: email, tax_id: tax_id, address: address, credit_limit: credit_limit}
    changes: {poll: {feed: rows, with: {table: customers, cursor: updated_at, key: id}, every: 200ms}}
    create:
      action: insert
      with: {table: customers, row: {name: "{{ record.name }}", phone: "{{ record.phone }}",
             email: "{{ record.email }}", tax_id: "{{ record.tax_id }}", address: "{{ record.address }}",
             credit_limit: "{{ record.credit_limit }}", updated_at: "{{ now('UTC') }}"}}
      key: "{{ result['keys'][0]['id'] }}"
    update:
      action: update
      with: {table: customers, where: {id: "{{ key | int }}"},
             values: {name: "{{ record.name }}", phone: "{{ record.phone }}", email: "{{ record.email }}",
                      tax_id: "{{ record.tax_id }}", address: "{{ record.address }}",
                      credit_limit: "{{ record.credit_limit }}", updated_at: "{{ now('UTC') }}"}}
    list: {action: query, with: {sql: "SELECT * FROM customers"}, items: rows}
"""

CRM_TABLE = """
CREATE TABLE customers (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, mobile TEXT, email TEXT, tax_no TEXT,
                        address TEXT, credit TEXT, updated_at TEXT NOT NULL);
"""
ERP_TABLE = """
CREATE TABLE customers (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, phone TEXT, email TEXT, tax_id TEXT,
                        address TEXT, credit_limit TEXT, updated_at TEXT NOT NULL);
"""
AUDIT = """
CREATE TABLE audit (n INTEGER PRIMARY KEY AUTOINCREMENT, op TEXT);
CREATE TRIGGER audit_insert AFTER INSERT ON customers BEGIN INSERT INTO audit (op) VALUES ('insert'); END;
CREATE TRIGGER audit_update AFTER UPDATE ON customers BEGIN INSERT INTO audit (op) VALUES ('update'); END;
"""

PEOPLE = [
    (
        "上海浦东发展有限公司",
        "13812345678",
        "finance@pudong.example.cn",
        "91310000MA1FL1234X",
        "上海市浦东新区世纪大道100号",
        "50000",
    ),
    (
        "北京中关村科技有限公司",
        "13987654321",
        "ap@zgc.example.cn",
        "91110108MA01ABCD2K",
        "北京市海淀区中关村大街1号",
        "120000.5",
    ),
    (
        "Acme Trading (Shenzhen) Co.",
        "+86 150-1234-5678",
        "billing@acme.example.com",
        "91440300MA5GXY098P",
        "深圳市南山区科技园",
        "0",
    ),
]


def _db(path: Path, schema: str) -> None:
    with sqlite3.connect(path) as conn:
        conn.executescript(schema + AUDIT)


def _q(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, params).fetchall()


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat()


def _project(project_dir: Path) -> tuple[Path, Path]:
    crm, erp = project_dir.parent / "crm.db", project_dir.parent / "erp.db"
    project_dir.parent.mkdir(parents=True, exist_ok=True)
    _db(crm, CRM_TABLE)
    _db(erp, ERP_TABLE)
    connections = f"crm: {{connector: sql, url: 'sqlite:///{crm}'}}\nerp: {{connector: sql, url: 'sqlite:///{erp}'}}\n"
    make_project(project_dir, {}, connections)
    (project_dir / "models").mkdir()
    (project_dir / "models" / "customer.yaml").write_text(MODEL, encoding="utf-8")
    (project_dir / "syncs").mkdir()
    (project_dir / "syncs" / "customers.yaml").write_text(SYNC, encoding="utf-8")
    for name, phone, email, tax, address, credit in PEOPLE:
        _q(
            crm,
            "INSERT INTO customers (name, mobile, email, tax_no, address, credit, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (name, phone, email, tax, address, credit, _now()),
        )
    return crm, erp


def _erp_names(erp: Path) -> dict[str, tuple[object, ...]]:
    return {r[0]: r[1:] for r in _q(erp, "SELECT tax_id, name, phone, email, address, credit_limit FROM customers")}


async def _quiet(crm: Path, erp: Path, seconds: float = 1.5) -> int:
    """Wait until neither table is written for `seconds`; return the writes counted so far."""
    last = -1
    while True:
        count = _q(crm, "SELECT COUNT(*) FROM audit")[0][0] + _q(erp, "SELECT COUNT(*) FROM audit")[0][0]
        if count == last:
            return int(count)  # type: ignore[call-overload]
        last = count
        await asyncio.sleep(seconds)


async def test_two_way_sync_follows_ownership_and_does_not_bounce(project_dir: Path) -> None:
    crm, erp = _project(project_dir)
    server = Server(project_dir)
    await server.start()
    try:

        async def created() -> None:
            rows = _erp_names(erp)
            assert len(rows) == 3, rows
            assert rows["91310000MA1FL1234X"] == (
                "上海浦东发展有限公司",
                "13812345678",
                "finance@pudong.example.cn",
                "上海市浦东新区世纪大道100号",
                "50000.00",
            )
            assert rows["91440300MA5GXY098P"][1] == "15012345678", "the phone was normalized"

        await eventually(created, timeout=30)
        baseline = await _quiet(crm, erp)
        assert baseline <= 3 + 3 + 3, "3 inserts in the CRM, 3 creates in the ERP, at most one write-back each"

        # the CRM owns the name: a CRM edit reaches the ERP
        _q(
            crm,
            "UPDATE customers SET name = ?, updated_at = ? WHERE tax_no = ?",
            ("浦发集团", _now(), "91310000MA1FL1234X"),
        )
        # the ERP owns the credit limit: an ERP edit reaches the CRM
        _q(
            erp,
            "UPDATE customers SET credit_limit = ?, updated_at = ? WHERE tax_id = ?",
            ("80000", _now(), "91110108MA01ABCD2K"),
        )
        # an ERP edit of a CRM-owned field loses and is written back
        _q(
            erp,
            "UPDATE customers SET phone = ?, updated_at = ? WHERE tax_id = ?",
            ("13700000000", _now(), "91440300MA5GXY098P"),
        )

        async def converged() -> None:
            assert _erp_names(erp)["91310000MA1FL1234X"][0] == "浦发集团"
            assert _q(crm, "SELECT credit FROM customers WHERE tax_no = '91110108MA01ABCD2K'") == [("80000.00",)]
            assert _erp_names(erp)["91440300MA5GXY098P"][1] == "15012345678", "the owner's phone won"

        await eventually(converged, timeout=30)
        after_edits = await _quiet(crm, erp)
        assert after_edits - baseline <= 3 * 2 + 3, (
            f"3 edits: each at most one write and one echo-free write-back: {after_edits - baseline}"
        )

        # both sides edit the unowned address of one customer, repeatedly and concurrently
        for i in range(6):
            _q(
                crm,
                "UPDATE customers SET address = ?, updated_at = ? WHERE tax_no = ?",
                (f"CRM 地址 {i}", _now(), "91110108MA01ABCD2K"),
            )
            _q(
                erp,
                "UPDATE customers SET address = ?, updated_at = ? WHERE tax_id = ?",
                (f"ERP 地址 {i}", _now(), "91110108MA01ABCD2K"),
            )
            await asyncio.sleep(0.1)
        storm = await _quiet(crm, erp, seconds=2.0)
        crm_address = _q(crm, "SELECT address FROM customers WHERE tax_no = '91110108MA01ABCD2K'")[0][0]
        erp_address = _q(erp, "SELECT address FROM customers WHERE tax_id = '91110108MA01ABCD2K'")[0][0]
        assert crm_address == erp_address, "both sides converge"
        edits = {f"{who} 地址 {i}" for who in ("CRM", "ERP") for i in range(6)}
        assert crm_address in edits, "to one of the edits (a write can overwrite an edit made after the read)"
        assert storm - after_edits <= 12 + 12 + 4, (
            f"12 edits, at most one write each plus a few write-backs: {storm - after_edits}"
        )
        await asyncio.sleep(2)
        assert await _quiet(crm, erp) == storm, "nothing keeps bouncing"
    finally:
        server.kill()


def _seamflow(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seamflow", *args, "--project", str(project)],
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_sync_check_finds_changes_made_behind_seamflows_back_and_repair_fixes_them(project_dir: Path) -> None:
    crm, erp = _project(project_dir)
    server = Server(project_dir)
    await server.start()
    try:
        await eventually(lambda: _assert_len(_erp_names(erp), 3), timeout=30)
        await _quiet(crm, erp)
    finally:
        await server.stop()
    ok = _seamflow(project_dir, "sync", "check", "customers")
    assert ok.returncode == 0 and "in sync" in ok.stdout, ok.stdout + ok.stderr
    # direct edits that no poll sees (the change time is left alone)
    _q(erp, "UPDATE customers SET phone = '13600000000' WHERE tax_id = '91310000MA1FL1234X'")
    _q(crm, "UPDATE customers SET credit = '1.00' WHERE tax_no = '91110108MA01ABCD2K'")
    found = _seamflow(project_dir, "sync", "check", "customers", "--json")
    assert found.returncode == 1, found.stdout + found.stderr
    assert "13600000000" in found.stdout and '"field":"phone"' in found.stdout.replace(" ", "")
    assert '"field":"credit_limit"' in found.stdout.replace(" ", "")
    repaired = _seamflow(project_dir, "sync", "check", "customers", "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert _erp_names(erp)["91310000MA1FL1234X"][1] == "13812345678", "the CRM owns the phone"
    assert _q(crm, "SELECT credit FROM customers WHERE tax_no = '91110108MA01ABCD2K'") == [("120000.50",)], (
        "the ERP owns credit"
    )
    again = _seamflow(project_dir, "sync", "check", "customers")
    assert again.returncode == 0 and "in sync" in again.stdout, again.stdout + again.stderr


async def _assert_len(rows: dict[str, object], n: int) -> None:
    assert len(rows) == n, rows


async def test_killing_seamflow_mid_sync_converges_without_duplicates(project_dir: Path) -> None:
    crm, erp = _project(project_dir)
    for i in range(150):
        _q(
            crm,
            "INSERT INTO customers (name, mobile, email, tax_no, address, credit, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (f"客户{i:03d}", f"139{i:08d}", f"c{i}@example.cn", f"9131000{i:03d}MA1FL12X", "杭州", f"{i}00", _now()),
        )
    server = Server(project_dir)
    await server.start()
    try:
        await eventually(lambda: _assert_more(erp, 20), timeout=30, interval=0.02)
        server.kill()
        await server.start()
        await eventually(lambda: _assert_len(_erp_names(erp), 153), timeout=60, interval=0.5)
        await _quiet(crm, erp)
    finally:
        server.kill()
    assert _q(erp, "SELECT COUNT(*), COUNT(DISTINCT tax_id) FROM customers") == [(153, 153)], "no record created twice"
    assert _q(crm, "SELECT COUNT(*) FROM customers") == [(153,)], "nothing echoed back as a new CRM record"


async def _assert_more(erp: Path, n: int) -> None:
    assert _q(erp, "SELECT COUNT(*) FROM customers")[0][0] >= n  # type: ignore[operator]


async def test_a_conflict_the_policy_cannot_settle_is_queued_and_resolved_through_the_api(project_dir: Path) -> None:
    crm, erp = _project(project_dir)
    spec = project_dir / "syncs" / "customers.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace("conflicts: latest", "conflicts: queue"), encoding="utf-8")
    server = Server(project_dir)
    await server.start()
    try:
        await eventually(lambda: _assert_len(_erp_names(erp), 3), timeout=45)
        await _quiet(crm, erp)
        tax = "91310000MA1FL1234X"
        await server.stop()  # both systems change the address while Seamflow is away: a real conflict
        _q(
            crm,
            "UPDATE customers SET address = ?, updated_at = ? WHERE tax_no = ?",
            ("上海市黄浦区南京东路1号", _now(), tax),
        )
        _q(
            erp,
            "UPDATE customers SET address = ?, updated_at = ? WHERE tax_id = ?",
            ("上海市静安区南京西路2号", _now(), tax),
        )
        await server.start()
        async with server.client() as client:

            async def queued() -> list[dict[str, object]]:
                answer = await client.get("/api/v1/syncs/customers/conflicts")
                assert answer.status_code == 200, answer.text
                items = answer.json()
                assert len(items) == 1, items
                return list(items)

            [conflict] = await eventually(queued, timeout=45)
            assert conflict["field"] == "address"
            assert set(conflict["candidates"].values()) == {"上海市黄浦区南京东路1号", "上海市静安区南京西路2号"}
            status = (await client.get("/api/v1/syncs")).json()
            assert status[0]["sync"] == "customers" and status[0]["open_conflicts"] == 1
            assert status[0]["linked"] == {"crm": 3, "erp": 3}
            assert status[0]["per_side"]["crm"]["feed_health"] == "ok"
            resolved = await client.post(
                f"/api/v1/syncs/conflicts/{conflict['id']}/resolve", json={"value": "上海市静安区南京西路2号"}
            )
            assert resolved.status_code == 200, resolved.text
            again = await client.post(f"/api/v1/syncs/conflicts/{conflict['id']}/resolve", json={"value": "x"})
            assert again.status_code == 409, again.text

        async def settled() -> None:
            assert _q(crm, "SELECT address FROM customers WHERE tax_no = ?", (tax,)) == [("上海市静安区南京西路2号",)]
            await _assert_erp_address(erp, tax, "上海市静安区南京西路2号")

        await eventually(settled, timeout=45)
    finally:
        server.kill()


async def _assert_erp_address(erp: Path, tax: str, address: str) -> None:
    assert _q(erp, "SELECT address FROM customers WHERE tax_id = ?", (tax,)) == [(address,)]


def _ignore_ctrl_c() -> None:
    """Start a child as a shell without job control starts a background job: with SIGINT ignored.

    A command that promises Ctrl-C handling must install its handler itself; started like this,
    one that relies on Python's default handler exits 0 instead of 130.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)


async def test_an_initial_load_stops_on_ctrl_c_and_continues_where_it_stopped(project_dir: Path) -> None:
    crm, erp = _project(project_dir)
    _q(crm, "DELETE FROM customers")
    spec = project_dir / "syncs" / "customers.yaml"
    erp_list = (
        '    list: {action: query, with: {sql: "SELECT * FROM customers", key: [id]}, items: rows,\n'
        '           count: {action: query, with: {sql: "SELECT COUNT(*) AS n FROM customers"}, value: rows.0.n}}\n'
    )
    text = spec.read_text(encoding="utf-8")
    head, tail = text.split("  erp:\n")
    tail = tail.replace('    list: {action: query, with: {sql: "SELECT * FROM customers"}, items: rows}\n', erp_list)
    spec.write_text(head + "  erp:\n" + tail, encoding="utf-8")
    with sqlite3.connect(erp) as conn:
        conn.executemany(
            "INSERT INTO customers (name, phone, email, tax_id, address, credit_limit, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (f"历史客户{i:04d}", f"135{i:08d}", None, f"9132000{i:04d}MA1FL1X", "南京", f"{i}.50", _now())
                for i in range(1500)
            ],
        )
    command = [sys.executable, "-m", "seamflow", "sync", "load", "customers", "--from", "erp", "--chunk", "100"]
    first = await asyncio.create_subprocess_exec(
        *command,
        "--project",
        str(project_dir),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=_ignore_ctrl_c,  # the same start whether the suite runs in a terminal or in the background
    )
    await eventually(lambda: _assert_more(crm, 200), timeout=60, interval=0.05)
    first.send_signal(2)  # Ctrl-C
    _, err = await first.communicate()
    loaded_before = _q(crm, "SELECT COUNT(*) FROM customers")[0][0]
    assert first.returncode == 130, err.decode()
    assert "run the same command to continue" in err.decode()
    assert loaded_before < 1500, "it stopped part-way"
    second = _seamflow(project_dir, "sync", "load", "customers", "--from", "erp", "--chunk", "100")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "loaded" in second.stdout
    progress = [line for line in second.stdout.splitlines() if line.startswith("loading customers from erp: ")]
    assert progress, "plain progress lines when stdout is not a terminal"
    assert re.fullmatch(r"loading customers from erp: 1,500/1,500 records \(100%\), [\d,]+ records/s", progress[-1])
    assert _q(crm, "SELECT COUNT(*), COUNT(DISTINCT tax_no) FROM customers") == [(1500, 1500)], "each record once"
    again = _seamflow(project_dir, "sync", "load", "customers", "--from", "erp")
    assert again.returncode == 0 and "had finished (1500 records)" in again.stdout, "a finished load does nothing"


def test_a_bad_sync_is_reported_with_file_line_and_column(project_dir: Path) -> None:
    _project(project_dir)
    spec = project_dir / "syncs" / "customers.yaml"
    spec.write_text(
        spec.read_text(encoding="utf-8").replace("ownership: {name: crm,", "ownership: {nmae: crm,", 1),
        encoding="utf-8",
    )
    done = _seamflow(project_dir, "flow", "validate")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "syncs/customers.yaml:6:13 ownership.nmae: 'nmae' is not a field of model customer;" in done.stderr
    assert "expected address, credit_limit, email, name, phone, tax_id" in done.stderr
    spec.write_text(spec.read_text(encoding="utf-8").replace("nmae", "name"), encoding="utf-8")
    ok = _seamflow(project_dir, "flow", "validate")
    assert ok.returncode == 0 and "1 sync(s) valid" in ok.stdout, ok.stderr


async def test_a_record_deleted_in_the_crm_is_deleted_in_the_erp_and_stays_deleted(project_dir: Path) -> None:
    crm, erp = _project(project_dir)
    _q(crm, "ALTER TABLE customers ADD COLUMN is_deleted INTEGER NOT NULL DEFAULT 0")
    spec = project_dir / "syncs" / "customers.yaml"
    text = spec.read_text(encoding="utf-8").replace("conflicts: latest", "conflicts: latest\ndeletes: propagate")
    head, tail = text.split("  erp:\n")
    head = head.replace("    updated: updated_at\n", "    updated: updated_at\n    deleted: is_deleted\n", 1)
    tail = tail.replace(
        "    list: {action: query",
        '    delete: {action: delete, with: {table: customers, where: {id: "{{ key | int }}"}}}\n'
        "    list: {action: query",
    )
    spec.write_text(head + "  erp:\n" + tail, encoding="utf-8")
    server = Server(project_dir)
    await server.start()
    try:
        await eventually(lambda: _assert_len(_erp_names(erp), 3), timeout=45)
        await _quiet(crm, erp)
        tax = "91110108MA01ABCD2K"
        _q(crm, "UPDATE customers SET is_deleted = 1, updated_at = ? WHERE tax_no = ?", (_now(), tax))
        await eventually(lambda: _assert_len(_erp_names(erp), 2), timeout=45)
        assert tax not in _erp_names(erp)
        # a later edit of the deleted record (or a compare) must not bring it back
        _q(
            crm,
            "UPDATE customers SET name = ?, updated_at = ? WHERE tax_no = ?",
            ("北京中关村科技（已注销）", _now(), tax),
        )
        await asyncio.sleep(2)
        await _quiet(crm, erp)
        assert tax not in _erp_names(erp), "the tombstone keeps it deleted"
    finally:
        await server.stop()
    listed = _seamflow(project_dir, "sync", "list", "--json")
    status = json.loads(listed.stdout)[0]
    assert (status["records"], status["deleted"]) == (3, 1), listed.stdout + listed.stderr
    table = _seamflow(project_dir, "sync", "list").stdout.splitlines()
    assert table[0].split() == ["SYNC", "MODE", "RECORDS", "DELETED", "LINKED", "OPEN", "CONFLICTS"]
