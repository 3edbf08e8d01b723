"""The SQL target on PostgreSQL: a batch is COPYed into a staging table and upserted by one
statement; written again it changes nothing, and a key repeated in a batch is one row."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from seamflow.quality.targets import SqlWriter
from tests.support import db


def _target(tmp_path: Path) -> tuple[db.Database, str]:
    target = db.new_database("postgres", tmp_path)
    assert target.url is not None
    target.query("CREATE TABLE members (member_no TEXT PRIMARY KEY, name TEXT, points TEXT)")
    return target, target.url.replace("postgresql://", "postgresql+psycopg://")


def test_a_batch_written_twice_is_loaded_once_and_a_repeated_key_keeps_its_last_row(tmp_path: Path) -> None:
    target, url = _target(tmp_path)
    writer = SqlWriter(url, "members", ["member_no", "name", "points"], ["member_no"], create=False)
    rows = [("M001", "张伟", Decimal("1288.50")), ("M002", "王芳", None), ("M001", "张伟（改）", Decimal("12.00"))]

    async def write_twice() -> None:
        await writer.write(rows, ["M001", "M002", "M001"])
        await writer.write(rows, ["M001", "M002", "M001"])
        await writer.close()

    asyncio.run(write_twice())
    loaded = target.query("SELECT member_no, name, points FROM members ORDER BY member_no")
    assert loaded == [("M001", "张伟（改）", "12.00"), ("M002", "王芳", None)]


def test_a_key_only_target_keeps_the_first_row_of_a_repeated_key(tmp_path: Path) -> None:
    target = db.new_database("postgres", tmp_path)
    assert target.url is not None
    target.query("CREATE TABLE codes (code TEXT PRIMARY KEY)")
    url = target.url.replace("postgresql://", "postgresql+psycopg://")
    writer = SqlWriter(url, "codes", ["code"], ["code"], create=False)

    async def write() -> None:
        await writer.write([("91110000600037341L",), ("91110000600037341L",)], ["a", "a"])
        await writer.close()

    asyncio.run(write())
    assert target.query("SELECT code FROM codes") == [("91110000600037341L",)]
