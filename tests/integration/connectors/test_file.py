"""The `file` connector against real files in a temporary root folder (nothing mocked).

Covers CSV in GBK, GB18030 and UTF-8 (with and without a byte order mark), XLSX and JSON
Lines; the root folder's guard; resumable streams; the `files` and `rows` feeds.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import AsyncIterator
from datetime import date, datetime
from decimal import Decimal
from importlib.metadata import entry_points
from pathlib import Path

import openpyxl
import pytest

from seamflow import errors
from seamflow.connectors.base import Batch, Checks, Connection, Polls, Streams
from seamflow.connectors.file import FileConnector
from seamflow.ids import Json
from tests.support.wait import eventually

CUSTOMERS = [
    {"客户名称": "张伟", "手机号": "13812345678", "金额": "1999.00"},
    {"客户名称": "上海浦东发展有限公司", "手机号": "13900001111", "金额": "250000.50"},
    {"客户名称": "李娜", "手机号": "008613712345678", "金额": "0.10"},
]
HEADER = list(CUSTOMERS[0])


@pytest.fixture
async def files(tmp_path: Path) -> AsyncIterator[FileConnector]:
    connector = FileConnector()
    await connector.open(Connection("pos_files", "file", {"root": str(tmp_path)}))
    try:
        yield connector
    finally:
        await connector.close()


def write_csv(path: Path, rows: list[dict[str, str]], encoding: str, delimiter: str = ",") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding=encoding, newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)


def numbered(count: int) -> list[dict[str, str]]:
    return [{"编号": f"{n:05d}", "客户名称": f"客户{n}", "金额": f"{n}.50"} for n in range(1, count + 1)]


def age(path: Path, seconds: float = 60) -> None:
    """Give a file an old modification time (its ctime stays now: feeds here use settle 0s)."""
    past = time.time() - seconds
    os.utime(path, (past, past))


async def read_all(files: FileConnector, params: Json) -> list[Json]:
    result = await files.call("read", params, idempotency_key="k")
    assert isinstance(result, dict)
    assert result["done"] is True
    rows = result["rows"]
    assert isinstance(rows, list)
    return rows


async def test_the_connector_is_found_and_offers_its_protocols(files: FileConnector) -> None:
    (point,) = entry_points(group="seamflow.connectors", name="file")  # other plugins may be mid-work
    assert point.load() is FileConnector
    assert isinstance(files, Polls) and isinstance(files, Streams) and isinstance(files, Checks)
    assert set(FileConnector.feeds) == {"files", "rows"}


# --- encodings ---------------------------------------------------------------------------


async def test_a_gbk_csv_with_chinese_headers_is_read_when_declared(files: FileConnector, tmp_path: Path) -> None:
    write_csv(tmp_path / "exports/客户.csv", CUSTOMERS, "gbk")
    assert "张伟".encode() not in (tmp_path / "exports/客户.csv").read_bytes()  # really GBK bytes
    rows = await read_all(files, {"path": "exports/客户.csv", "encoding": "gbk"})
    assert rows == CUSTOMERS


async def test_gbk_is_detected_and_values_stay_strings(files: FileConnector, tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", CUSTOMERS, "gbk")
    rows = await read_all(files, {"path": "a.csv"})
    assert rows == CUSTOMERS
    assert rows[2] == {"客户名称": "李娜", "手机号": "008613712345678", "金额": "0.10"}  # "0086…", "0.10" kept


async def test_a_gb18030_only_character_is_detected(files: FileConnector, tmp_path: Path) -> None:
    rows = [{"姓名": "王𠀀", "手机号": "13812345678"}]  # U+20000 exists in GB18030, not in GBK
    write_csv(tmp_path / "rare.csv", rows, "gb18030")
    assert await read_all(files, {"path": "rare.csv"}) == rows


async def test_utf8_with_and_without_bom_is_detected(files: FileConnector, tmp_path: Path) -> None:
    write_csv(tmp_path / "bom.csv", CUSTOMERS, "utf-8-sig")
    write_csv(tmp_path / "plain.csv", CUSTOMERS, "utf-8")
    assert (tmp_path / "bom.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert await read_all(files, {"path": "bom.csv"}) == CUSTOMERS  # no "\ufeff客户名称"
    assert await read_all(files, {"path": "plain.csv"}) == CUSTOMERS
    assert await read_all(files, {"path": "bom.csv", "encoding": "utf-8"}) == CUSTOMERS


async def test_a_wrong_declared_encoding_names_the_file_and_line(files: FileConnector, tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", CUSTOMERS, "gbk")
    with pytest.raises(errors.Permanent, match=r"file a\.csv line 1: bytes that are not utf-8 text"):
        await files.call("read", {"path": "a.csv", "encoding": "utf-8"}, idempotency_key="k")


async def test_delimiter_and_header_options(files: FileConnector, tmp_path: Path) -> None:
    (tmp_path / "semi.csv").write_text("张伟;13812345678\n李娜;13712345678\n", encoding="gbk")
    named = await read_all(files, {"path": "semi.csv", "delimiter": ";", "header": False, "columns": ["name", "phone"]})
    assert named == [{"name": "张伟", "phone": "13812345678"}, {"name": "李娜", "phone": "13712345678"}]
    lists = await read_all(files, {"path": "semi.csv", "delimiter": ";", "header": False})
    assert lists == [["张伟", "13812345678"], ["李娜", "13712345678"]]
    renamed = await read_all(files, {"path": "semi.csv", "delimiter": ";", "columns": ["name", "phone"]})
    assert renamed == [{"name": "李娜", "phone": "13712345678"}]  # the first line was the header


async def test_a_malformed_row_is_refused_naming_the_file_and_row(files: FileConnector, tmp_path: Path) -> None:
    (tmp_path / "orders.csv").write_text("单号,客户,金额\nA1,张伟,10.00\nA2,李娜\n", encoding="gbk")
    with pytest.raises(errors.Permanent, match=r"file orders\.csv row 2 \(line 3\): expected 3 columns, found 2"):
        await files.call("read", {"path": "orders.csv"}, idempotency_key="k")


async def test_read_pages_with_offset_and_limit(files: FileConnector, tmp_path: Path) -> None:
    write_csv(tmp_path / "n.csv", numbered(5), "gbk")
    first = await files.call("read", {"path": "n.csv", "limit": 2}, idempotency_key="k")
    assert isinstance(first, dict)
    assert [r["编号"] for r in first["rows"]] == ["00001", "00002"]
    assert (first["next_offset"], first["done"]) == (2, False)
    last = await files.call("read", {"path": "n.csv", "offset": 4, "limit": 2}, idempotency_key="k")
    assert last == {"rows": [numbered(5)[4]], "next_offset": 5, "done": True}


# --- the root folder ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["../secret.csv", "/etc/passwd", "a/../../b.csv", "C:\\x.csv", ".seamflow/writes/x"])
async def test_a_path_outside_the_root_is_refused(files: FileConnector, path: str) -> None:
    with pytest.raises(errors.Permanent, match="expected a path relative to the root folder"):
        await files.call("read", {"path": path}, idempotency_key="k")


async def test_a_symbolic_link_out_of_the_root_is_refused(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("outside")
    write_csv(outside / "salaries.csv", CUSTOMERS, "utf-8")
    root = tmp_path / "root"
    root.mkdir()
    (root / "link.csv").symlink_to(outside / "salaries.csv")
    (root / "dir").symlink_to(outside, target_is_directory=True)
    connector = FileConnector()
    await connector.open(Connection("f", "file", {"root": str(root)}))
    for path in ("link.csv", "dir/salaries.csv"):
        with pytest.raises(errors.Permanent, match="leads outside the root folder through a symbolic link"):
            await connector.call("read", {"path": path}, idempotency_key="k")
    with pytest.raises(errors.Permanent, match="symbolic link"):
        await connector.call("write", {"path": "dir/new.csv", "rows": [{"a": "1"}]}, idempotency_key="w")
    assert not (outside / "new.csv").exists()
    listed = await connector.call("list", {}, idempotency_key="k")
    assert listed == {"files": [], "count": 0, "truncated": False}


async def test_check_proves_the_root_is_readable_and_writable(tmp_path: Path) -> None:
    connector = FileConnector()
    await connector.open(Connection("f", "file", {"root": str(tmp_path)}))
    assert "readable and writable" in await connector.check()
    await connector.open(Connection("f", "file", {"root": str(tmp_path / "missing")}))
    with pytest.raises(errors.Permanent, match="does not exist"):
        await connector.check()
    (tmp_path / "plain").write_text("x")
    await connector.open(Connection("f", "file", {"root": str(tmp_path / "plain")}))
    with pytest.raises(errors.Permanent, match="is not a folder"):
        await connector.check()


async def test_a_bad_config_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidInput, match=r"pos_files\.folder"):
        await FileConnector().open(Connection("pos_files", "file", {"root": str(tmp_path), "folder": "x"}))


# --- write ----------------------------------------------------------------------------------


async def test_a_gbk_export_is_written_atomically_and_once_per_key(files: FileConnector, tmp_path: Path) -> None:
    params: Json = {"path": "out/对账.csv", "encoding": "gbk", "rows": CUSTOMERS, "mode": "append"}
    first = await files.call("write", params, idempotency_key="run_1:export")
    again = await files.call("write", params, idempotency_key="run_1:export")  # a retry
    assert first == again == {"path": "out/对账.csv", "rows": 3, "bytes": first["bytes"], "mode": "append"}
    data = (tmp_path / "out/对账.csv").read_bytes()
    assert data.decode("gbk").splitlines() == ["客户名称,手机号,金额", *(",".join(r.values()) for r in CUSTOMERS)]
    await files.call("write", {**params, "rows": CUSTOMERS[:1]}, idempotency_key="run_2:export")
    assert await read_all(files, {"path": "out/对账.csv"}) == [*CUSTOMERS, CUSTOMERS[0]]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["对账.csv"]  # no temporary file left


async def test_create_refuses_an_existing_file_and_overwrite_replaces_it(files: FileConnector, tmp_path: Path) -> None:
    await files.call("write", {"path": "a.jsonl", "rows": [{"n": 1}]}, idempotency_key="a")
    with pytest.raises(errors.Permanent, match=r"a\.jsonl already exists"):
        await files.call("write", {"path": "a.jsonl", "rows": [{"n": 2}]}, idempotency_key="b")
    await files.call("write", {"path": "a.jsonl", "rows": [{"n": 3}], "mode": "overwrite"}, idempotency_key="c")
    assert await read_all(files, {"path": "a.jsonl"}) == [{"n": 3}]


async def test_a_retry_after_the_rename_but_before_the_record_writes_once(files: FileConnector, tmp_path: Path) -> None:
    params: Json = {"path": "log.jsonl", "rows": [{"n": 1}], "mode": "append"}
    await files.call("write", params, idempotency_key="run_1:log")
    ledger = tmp_path / ".seamflow" / "writes"
    (record,) = ledger.iterdir()
    # As if the process died between the rename and recording `done`: the record still says prepared.
    text = record.read_text().replace('"state":"done"', '"state":"prepared","temp":".log.jsonl.gone.tmp"')
    record.write_text(text)
    await files.call("write", params, idempotency_key="run_1:log")
    assert (tmp_path / "log.jsonl").read_text().splitlines() == ['{"n":1}']


async def test_a_character_gbk_cannot_hold_is_named(files: FileConnector, tmp_path: Path) -> None:
    rows: Json = [{"姓名": "张伟"}, {"姓名": "😀"}]
    with pytest.raises(errors.Permanent, match=r"rows\[1\]: '😀' cannot be written in gbk"):
        await files.call("write", {"path": "x.csv", "encoding": "gbk", "rows": rows}, idempotency_key="k")
    assert not (tmp_path / "x.csv").exists()


async def test_xlsx_roundtrip_keeps_types(files: FileConnector, tmp_path: Path) -> None:
    rows: Json = [
        {"客户名称": "张伟", "手机号": "13812345678", "金额": Decimal("1999.90"), "数量": 3, "公式": "=1+1"},
        {"客户名称": "上海浦东发展有限公司", "手机号": "0086138", "金额": Decimal("0.1"), "数量": None, "公式": ""},
    ]
    await files.call("write", {"path": "r.xlsx", "sheet": "客户", "rows": rows}, idempotency_key="k")
    got = await read_all(files, {"path": "r.xlsx", "sheet": "客户"})
    assert got[0] == {"客户名称": "张伟", "手机号": "13812345678", "金额": Decimal("1999.9"), "数量": 3, "公式": "=1+1"}
    assert got[1]["手机号"] == "0086138" and got[1]["金额"] == Decimal("0.1") and got[1]["数量"] is None
    assert await read_all(files, {"path": "r.xlsx", "sheet": 0}) == got


async def test_xlsx_from_excel_reads_dates_and_money_exactly(files: FileConnector, tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Sheet1"
    book.create_sheet("明细")
    detail = book["明细"]
    detail.append(["单号", "日期", "时间", "金额", None])  # a trailing empty header cell
    detail.append(["A1", date(2026, 11, 25), datetime(2026, 11, 25, 9, 30), 19.9, None])
    detail.append([None, None, None, None, None])  # an empty row is skipped
    detail.append(["A2", date(2026, 11, 26), datetime(2026, 11, 26, 0, 0), 0.1 + 0.2, None])
    book.save(tmp_path / "excel.xlsx")
    rows = await read_all(files, {"path": "excel.xlsx", "sheet": "明细"})
    assert rows == [
        {"单号": "A1", "日期": "2026-11-25", "时间": "2026-11-25T09:30:00", "金额": Decimal("19.9")},
        {
            "单号": "A2",
            "日期": "2026-11-26",
            "时间": "2026-11-26",
            "金额": Decimal("0.3"),
        },  # as Excel keeps it: 15 digits
    ]
    with pytest.raises(errors.Permanent, match=r"has no sheet '汇总'; expected one of 'Sheet1', '明细'"):
        await files.call("read", {"path": "excel.xlsx", "sheet": "汇总"}, idempotency_key="k")


async def test_jsonl_keeps_exact_numbers(files: FileConnector, tmp_path: Path) -> None:
    (tmp_path / "e.jsonl").write_text('{"金额": 19.90, "phone": "0086"}\n\n{"金额": 1}\n', encoding="utf-8")
    assert await read_all(files, {"path": "e.jsonl"}) == [{"金额": Decimal("19.90"), "phone": "0086"}, {"金额": 1}]
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n{"a": \n', encoding="utf-8")
    with pytest.raises(errors.Permanent, match=r"file bad\.jsonl row 2 \(line 2\)"):
        await files.call("read", {"path": "bad.jsonl"}, idempotency_key="k")


# --- list and move ------------------------------------------------------------------------


async def test_list_and_move(files: FileConnector, tmp_path: Path) -> None:
    write_csv(tmp_path / "inbox/b.csv", CUSTOMERS, "gbk")
    write_csv(tmp_path / "inbox/a.csv", CUSTOMERS, "gbk")
    (tmp_path / "inbox/.a.csv.123.tmp").write_text("half")
    listed = await files.call("list", {"folder": "inbox", "glob": "*.csv"}, idempotency_key="k")
    assert isinstance(listed, dict)
    assert [f["path"] for f in listed["files"]] == ["inbox/a.csv", "inbox/b.csv"]
    moved = await files.call("move", {"path": "inbox/a.csv", "to": "done"}, idempotency_key="m")
    retried = await files.call("move", {"path": "inbox/a.csv", "to": "done"}, idempotency_key="m")
    assert moved == retried == {"path": "done/a.csv", "from": "inbox/a.csv"}
    assert (tmp_path / "done/a.csv").exists() and not (tmp_path / "inbox/a.csv").exists()


# --- streams ------------------------------------------------------------------------------


async def collect(files: FileConnector, params: Json, start: Json, chunk_rows: int) -> list[tuple[list[Json], Json]]:
    return [
        (chunk.rows, chunk.position) async for chunk in files.stream("read", params, start=start, chunk_rows=chunk_rows)
    ]


@pytest.mark.parametrize("name", ["n.csv", "n.xlsx", "n.jsonl"])
async def test_a_stream_resumed_from_a_position_gives_exactly_the_remaining_rows(
    files: FileConnector, name: str
) -> None:
    rows = numbered(23)
    await files.call("write", {"path": name, "rows": rows, "encoding": "gbk"}, idempotency_key="k")
    chunks = await collect(files, {"path": name}, None, 5)
    assert [len(r) for r, _ in chunks] == [5, 5, 5, 5, 3]
    assert [row for r, _ in chunks for row in r] == rows
    for index in range(len(chunks)):
        resumed = await collect(files, {"path": name}, chunks[index][1], 4)
        assert [row for r, _ in resumed for row in r] == rows[(index + 1) * 5 :]


async def test_a_stream_refuses_a_position_that_is_not_a_row_start(files: FileConnector, tmp_path: Path) -> None:
    write_csv(tmp_path / "n.csv", numbered(3), "gbk")
    with pytest.raises(errors.Permanent, match=r"start offset 21 is not where a row begins"):
        await collect(files, {"path": "n.csv"}, {"offset": 21, "row": 1, "line": 2}, 5)


# --- the files feed -----------------------------------------------------------------------


async def poll(files: FileConnector, feed: str, params: Json, cursor: Json = None, limit: int = 100) -> Batch:
    return await files.poll(feed, params, cursor, limit=limit)


async def test_files_feed_delivers_each_file_once_and_the_ack_moves_it(files: FileConnector, tmp_path: Path) -> None:
    write_csv(tmp_path / "inbox/0001.csv", CUSTOMERS, "gbk")
    age(tmp_path / "inbox/0001.csv")
    params: Json = {"folder": "inbox", "glob": "*.csv", "settle": "0s", "move_to": "inbox/done"}
    first = await poll(files, "files", params)
    again = await poll(files, "files", params)  # a crash before the ack: the same file, the same key
    assert [i.key for i in first.items] == [i.key for i in again.items]
    (item,) = first.items
    assert isinstance(item.body, dict)
    assert item.body["path"] == "inbox/0001.csv" and item.body["size"] == (tmp_path / "inbox/0001.csv").stat().st_size
    assert item.key.startswith("inbox/0001.csv:") and str(item.body["sha256"]) in item.key
    assert first.ack is not None
    await first.ack()
    assert (tmp_path / "inbox/done/0001.csv").exists()
    later = await poll(files, "files", params)
    assert later.items == [] and later.ack is None


async def test_files_feed_without_move_to_marks_files_done(files: FileConnector, tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", CUSTOMERS, "gbk")
    params: Json = {"glob": "*", "settle": "0s"}
    batch = await poll(files, "files", params)
    assert [i.body["name"] for i in batch.items] == ["a.csv"]
    assert batch.ack is not None
    await batch.ack()
    assert (tmp_path / "a.csv.done").exists()
    assert (await poll(files, "files", params)).items == []
    write_csv(tmp_path / "a.csv", [*CUSTOMERS, CUSTOMERS[0]], "gbk")  # a new version of the file
    assert [i.body["name"] for i in (await poll(files, "files", params)).items] == ["a.csv"]


async def test_files_feed_waits_for_a_file_still_being_written(files: FileConnector, tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    params: Json = {"settle": "1s"}
    with path.open("w", encoding="gbk") as out:
        out.write("客户名称,金额\n")
        out.flush()
        assert (await poll(files, "files", params)).items == []
        out.write("张伟,1.00\n")
        out.flush()
        assert (await poll(files, "files", params)).items == []

    async def taken() -> None:
        batch = await poll(files, "files", params)
        assert [i.body["size"] for i in batch.items] == [path.stat().st_size]

    await eventually(taken, timeout=5)


async def test_files_feed_limit_sets_more(files: FileConnector, tmp_path: Path) -> None:
    for n in range(3):
        write_csv(tmp_path / f"{n}.csv", CUSTOMERS, "gbk")
        age(tmp_path / f"{n}.csv", 60 - n)
    batch = await poll(files, "files", {"settle": "0s", "move_to": "done"}, limit=2)
    assert [i.body["name"] for i in batch.items] == ["0.csv", "1.csv"] and batch.more


# --- the rows feed ------------------------------------------------------------------------


async def test_rows_feed_resumes_mid_file_from_its_cursor(files: FileConnector, tmp_path: Path) -> None:
    write_csv(tmp_path / "pos/0001.csv", numbered(7), "gbk")
    write_csv(tmp_path / "pos/0002.csv", numbered(2), "gbk")
    age(tmp_path / "pos/0001.csv", 120)
    age(tmp_path / "pos/0002.csv", 60)
    params: Json = {"folder": "pos", "glob": "*.csv", "settle": "0s", "move_to": "pos/done"}
    first = await poll(files, "rows", params, limit=3)
    assert [i.body["row_number"] for i in first.items] == [1, 2, 3] and first.more
    assert first.items[0].body["row"] == numbered(1)[0]
    assert first.ack is None  # nothing finished yet: nothing to move
    # A restart: a new connector, the stored cursor.
    again = FileConnector()
    await again.open(Connection("pos_files", "file", {"root": str(tmp_path)}))
    second = await poll(again, "rows", params, first.cursor, limit=6)
    assert [(i.body["path"], i.body["row_number"]) for i in second.items] == [
        *[("pos/0001.csv", n) for n in range(4, 8)],
        ("pos/0002.csv", 1),
        ("pos/0002.csv", 2),
    ]
    keys = [i.key for i in first.items + second.items]
    assert len(set(keys)) == 9 and keys[3].startswith("pos/0001.csv:") and keys[3].endswith(":4")
    assert second.ack is not None
    await second.ack()
    assert sorted(p.name for p in (tmp_path / "pos/done").iterdir()) == ["0001.csv", "0002.csv"]
    third = await poll(again, "rows", params, second.cursor)
    assert third.items == [] and not third.more


async def test_rows_feed_finishes_a_file_whose_ack_was_lost(files: FileConnector, tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", numbered(2), "gbk")
    params: Json = {"glob": "*.csv", "settle": "0s", "move_to": "done"}
    first = await poll(files, "rows", params)
    assert len(first.items) == 2
    # The cursor was stored, then the process died before the ack: the file is still there.
    second = await poll(files, "rows", params, first.cursor)
    assert second.items == [] and second.ack is not None
    await second.ack()
    assert (tmp_path / "done/a.csv").exists() and not (tmp_path / "a.csv").exists()


async def test_rows_feed_delivers_rows_before_a_bad_one_then_reports_it(files: FileConnector, tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("单号,金额\nA1,1.00\nA2,2.00\nA3\n", encoding="gbk")
    params: Json = {"glob": "*.csv", "settle": "0s", "move_to": "done"}
    first = await poll(files, "rows", params)
    assert [i.body["row_number"] for i in first.items] == [1, 2] and first.more
    with pytest.raises(errors.Permanent, match=r"file bad\.csv row 3 \(line 4\): expected 2 columns, found 1"):
        await poll(files, "rows", params, first.cursor)


async def test_rows_feed_reads_xlsx_and_jsonl(files: FileConnector, tmp_path: Path) -> None:
    await files.call("write", {"path": "in/a.xlsx", "rows": numbered(2)}, idempotency_key="a")
    await files.call("write", {"path": "in/b.jsonl", "rows": numbered(1)}, idempotency_key="b")
    age(tmp_path / "in/a.xlsx", 100)
    age(tmp_path / "in/b.jsonl", 50)
    batch = await poll(files, "rows", {"folder": "in", "settle": "0s"})
    assert [i.body["row"] for i in batch.items] == [*numbered(2), *numbered(1)]
    assert batch.ack is not None
    await batch.ack()
    assert (tmp_path / "in/a.xlsx.done").exists() and (tmp_path / "in/b.jsonl.done").exists()
    assert (await poll(files, "rows", {"folder": "in", "settle": "0s"}, batch.cursor)).items == []
