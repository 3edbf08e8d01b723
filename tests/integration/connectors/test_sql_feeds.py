"""The `sql` connector's bulk upsert, `rows` poll feed, `notify` consume feed and query streams,
against real SQLite, PostgreSQL and MariaDB databases (nothing mocked).

Each test makes its own uniquely named table and drops it; the cursor of the `rows` feed goes
through JSON between polls, as the engine stores it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import psycopg
import pytest
import sqlalchemy
from sqlalchemy import Column, DateTime, Integer, MetaData, Numeric, String, Table, insert, update
from sqlalchemy.dialects import mysql

from seamflow import codec, errors
from seamflow.connectors.base import Batch, Chunk, Connection, Item
from seamflow.connectors.sql import SqlConnector
from seamflow.ids import Json
from tests.integration.connectors.test_sql import (
    MARIADB,
    PASSWORD,
    POSTGRES,
    _admin,
    _server_database,
    socket_free_port,
)

T0 = datetime(2026, 5, 6, 7, 0, 0)


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mariadb"])
def database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of an empty database made for this module's tests."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sql_feeds') / 'test.db'}"
    else:
        yield from _server_database(POSTGRES if request.param == "postgresql" else MARIADB, request.param)


@pytest.fixture
def orders(database: str) -> Iterator[Table]:
    """A fresh table with a unique name (`orders_…`), dropped after the test."""
    table = Table(
        f"orders_{uuid.uuid4().hex[:10]}",
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("sku", String(20), unique=True, nullable=False),
        Column("name", String(50)),
        Column("amount", Numeric(12, 2)),
        Column("updated_at", DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")),
    )
    engine = _admin(database)
    table.create(engine)
    try:
        yield table
    finally:
        table.drop(engine)
        engine.dispose()


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[SqlConnector]:
    connector = SqlConnector()
    await connector.open(Connection(name="erp", connector="sql", config={"url": url}, timeout=timedelta(seconds=5)))
    try:
        yield connector
    finally:
        await connector.close()


def write(url: str, table: Table, rows: list[dict[str, object]]) -> None:
    engine = _admin(url)
    with engine.begin() as conn:
        conn.execute(insert(table), rows)
    engine.dispose()


def change(url: str, table: Table, id_: int, **values: object) -> None:
    engine = _admin(url)
    with engine.begin() as conn:
        conn.execute(update(table).where(table.c.id == id_).values(**values))
    engine.dispose()


def order(id_: int, at: datetime, name: str = "n") -> dict[str, object]:
    return {"id": id_, "sku": f"S-{id_}", "name": name, "amount": Decimal("9.90"), "updated_at": at}


async def poll(db: SqlConnector, settings: Json, cursor: Json, limit: int = 100) -> Batch:
    """One poll, with the cursor passed through JSON as the engine stores it."""
    batch = await db.poll("rows", settings, codec.loads(codec.dumps(cursor)), limit=limit)
    batch.cursor = codec.loads(codec.dumps(batch.cursor))
    return batch


async def poll_all(db: SqlConnector, settings: Json, cursor: Json, limit: int) -> tuple[list[Item], Json]:
    """Poll while the feed says there is more; return every item and the last cursor."""
    items: list[Item] = []
    for _ in range(100):
        batch = await poll(db, settings, cursor, limit)
        assert len(batch.items) <= limit
        items += batch.items
        cursor = batch.cursor
        if not batch.more:
            return items, cursor
    raise AssertionError("the feed kept saying more")


def ids(items: list[Item]) -> list[object]:
    return [item.body["id"] for item in items if isinstance(item.body, dict)]


def feed(table: Table, **settings: Json) -> Json:
    return {"table": table.name, "cursor": "updated_at", "key": "id", **settings}


# --- bulk upsert ------------------------------------------------------------------------------


async def test_bulk_upsert_inserts_then_updates_many_rows_in_chunks(database: str, orders: Table) -> None:
    first: list[Json] = [{"id": i, "sku": f"S-{i}", "name": "first", "amount": "1.50"} for i in range(12_000)]
    second: list[Json] = [{"id": i, "sku": f"S-{i}", "name": "second", "amount": "2.50"} for i in range(6_000, 15_000)]
    async with opened(database) as db:
        inserted = await db.call(
            "upsert", {"table": orders.name, "rows": first, "key": ["id"], "chunk_size": 5_000}, idempotency_key="u1"
        )
        updated = await db.call(
            "upsert", {"table": orders.name, "rows": second, "key": ["id"], "chunk_size": 5_000}, idempotency_key="u2"
        )
        again = await db.call(  # a retry with the same key: no second effect
            "upsert", {"table": orders.name, "rows": first, "key": ["id"], "chunk_size": 5_000}, idempotency_key="u2"
        )
    assert inserted == {"count": 12_000} and updated == again == {"count": 9_000}
    engine = _admin(database)
    with engine.connect() as conn:
        counts = conn.execute(sqlalchemy.select(orders.c.name, sqlalchemy.func.count()).group_by(orders.c.name))
        names = {name: count for name, count in counts}
        amount = conn.execute(sqlalchemy.select(orders.c.amount).where(orders.c.id == 14_999)).scalar_one()
    engine.dispose()
    assert names == {"first": 6_000, "second": 9_000}
    assert Decimal(str(amount)) == Decimal("2.50")


async def test_bulk_upsert_with_a_bad_row_writes_nothing(database: str, orders: Table) -> None:
    rows: list[Json] = [{"id": i, "sku": f"S-{i}", "name": "n"} for i in range(3_000)]
    rows.append({"id": 3_000, "sku": None, "name": "no sku"})  # NOT NULL, in the last chunk
    async with opened(database) as db:
        with pytest.raises(errors.Permanent, match=r"sku|NULL|null"):
            await db.call(
                "upsert", {"table": orders.name, "rows": rows, "key": ["id"], "chunk_size": 1_000}, idempotency_key="k"
            )
        result = await db.call("query", {"sql": f"SELECT COUNT(*) AS n FROM {orders.name}"}, idempotency_key="q")
    assert result == {"rows": [{"n": 0}], "count": 1}


# --- the rows feed ----------------------------------------------------------------------------


async def test_rows_feed_returns_rows_in_cursor_order_with_keys_and_types(database: str, orders: Table) -> None:
    write(database, orders, [order(1, T0 + timedelta(minutes=3)), order(2, T0 + timedelta(minutes=1)), order(3, T0)])
    async with opened(database) as db:
        first = await poll(db, feed(orders), None, limit=2)
        rest = await poll(db, feed(orders), first.cursor, limit=2)
    assert ids(first.items) == [3, 2] and first.more
    assert ids(rest.items) == [1] and not rest.more
    item = first.items[0]
    stamp = "2026-05-06 07:00:00.000000" if database.startswith("sqlite") else "2026-05-06T07:00:00"
    assert item.key == f"{orders.name}:3:{stamp}"
    assert item.at == T0.replace(tzinfo=UTC)
    assert isinstance(item.body, dict) and item.body["sku"] == "S-3"
    assert Decimal(str(item.body["amount"])) == Decimal("9.90")
    if not database.startswith("sqlite"):
        assert item.body["amount"] == Decimal("9.90") and item.body["updated_at"] == "2026-05-06T07:00:00"


async def test_ties_on_the_cursor_are_neither_skipped_nor_doubled(database: str, orders: Table) -> None:
    write(database, orders, [order(i, T0) for i in (5, 1, 4, 2, 3)] + [order(6, T0 + timedelta(seconds=1))])
    async with opened(database) as db:
        items, cursor = await poll_all(db, feed(orders), None, limit=2)
        write(database, orders, [order(7, T0 + timedelta(seconds=1))])  # ties with the last row read
        later, _ = await poll_all(db, feed(orders), cursor, limit=2)
    assert ids(items) == [1, 2, 3, 4, 5, 6]
    assert ids(later) == [7]


async def test_continuing_from_a_cursor_returns_exactly_the_new_rows(database: str, orders: Table) -> None:
    write(database, orders, [order(i, T0 + timedelta(seconds=i)) for i in range(1, 6)])
    async with opened(database) as db:
        seen, cursor = await poll_all(db, feed(orders), None, limit=3)
        write(database, orders, [order(6, T0 + timedelta(seconds=6)), order(7, T0 + timedelta(seconds=7))])
        new = await poll(db, feed(orders), cursor)
        nothing = await poll(db, feed(orders), new.cursor)
    assert ids(seen) == [1, 2, 3, 4, 5]
    assert ids(new.items) == [6, 7] and not new.more
    assert nothing.items == [] and not nothing.more and nothing.cursor == new.cursor


async def test_a_row_changed_again_comes_again_with_a_new_key(database: str, orders: Table) -> None:
    write(database, orders, [order(1, T0), order(2, T0 + timedelta(seconds=1))])
    async with opened(database) as db:
        seen, cursor = await poll_all(db, feed(orders), None, limit=10)
        change(database, orders, 1, name="changed", updated_at=T0 + timedelta(minutes=5))
        again = await poll(db, feed(orders), cursor)
    assert ids(again.items) == [1]
    (item,) = again.items
    assert isinstance(item.body, dict) and item.body["name"] == "changed"
    assert item.key != seen[0].key and item.key.startswith(f"{orders.name}:1:")


async def test_start_now_skips_existing_rows(database: str, orders: Table) -> None:
    write(database, orders, [order(1, T0), order(2, T0 + timedelta(seconds=1))])
    async with opened(database) as db:
        started = await poll(db, feed(orders, start="now"), None)
        write(database, orders, [order(3, T0 + timedelta(seconds=2))])
        new = await poll(db, feed(orders, start="now"), started.cursor)
    assert started.items == [] and not started.more
    assert ids(new.items) == [3]


async def test_start_now_with_a_lookback_replays_no_history(database: str, orders: Table) -> None:
    write(database, orders, [order(1, T0), order(2, T0 + timedelta(seconds=1))])
    settings = feed(orders, start="now", lookback="1h")
    async with opened(database) as db:
        started = await poll(db, settings, None)
        write(database, orders, [order(3, T0 + timedelta(seconds=2))])
        new, cursor = await poll_all(db, settings, started.cursor, limit=10)
        write(database, orders, [order(4, T0 + timedelta(milliseconds=1500))])  # late, but after the start
        late, _ = await poll_all(db, settings, cursor, limit=10)
    assert started.items == []
    assert ids(new) == [3]
    assert sorted(set(map(str, ids(late)))) == ["3", "4"]


async def test_start_now_on_an_empty_table_reads_every_row_added_later(database: str, orders: Table) -> None:
    async with opened(database) as db:
        started = await poll(db, feed(orders, start="now"), None)
        write(database, orders, [order(1, T0)])
        new = await poll(db, feed(orders, start="now"), started.cursor)
    assert started.items == [] and ids(new.items) == [1]


async def test_lookback_finds_a_row_committed_late_with_an_earlier_cursor(database: str, orders: Table) -> None:
    write(database, orders, [order(i, T0 + timedelta(seconds=i)) for i in range(1, 5)])
    settings = feed(orders, lookback="1m")
    async with opened(database) as db:
        seen, cursor = await poll_all(db, settings, None, limit=10)
        write(database, orders, [order(9, T0 + timedelta(seconds=2, milliseconds=500))])  # behind the cursor
        late, _ = await poll_all(db, settings, cursor, limit=2)  # the re-read goes page by page
    assert ids(seen)[:4] == [1, 2, 3, 4]
    assert {item.key for item in seen} <= {item.key for item in late}  # re-read: the same keys, duplicates
    new = [item for item in late if item.key not in {s.key for s in seen}]
    assert ids(new) == [9]


async def test_a_query_source_with_a_where_filter_and_columns(database: str, orders: Table) -> None:
    write(database, orders, [order(1, T0, "keep"), order(2, T0, "drop"), order(3, T0 + timedelta(seconds=1), "keep")])
    settings: Json = {
        "query": f"SELECT id, name, updated_at FROM {orders.name} WHERE id < :below",
        "name": "kept_orders",
        "where": "name = :name",
        "params": {"name": "keep", "below": 10},
        "columns": ["name"],
        "cursor": "updated_at",
        "key": ["id"],
    }
    async with opened(database) as db:
        batch = await poll(db, settings, None)
        with pytest.raises(errors.Permanent, match=r"params\.unused is not used"):
            await poll(db, {**settings, "params": {"name": "keep", "below": 10, "unused": 1}}, None)  # type: ignore[dict-item]
    assert ids(batch.items) == [1, 3]
    assert batch.items[0].key.startswith("kept_orders:1:")
    assert isinstance(batch.items[0].body, dict) and set(batch.items[0].body) == {"name", "updated_at", "id"}


async def test_a_numeric_cursor_reads_new_ids(database: str, orders: Table) -> None:
    write(database, orders, [order(i, T0) for i in (1, 2, 3)])
    settings: Json = {"table": orders.name, "cursor": "id", "key": "id"}
    async with opened(database) as db:
        first = await poll(db, settings, None, limit=2)
        write(database, orders, [order(4, T0)])
        rest, _ = await poll_all(db, settings, first.cursor, limit=2)
    assert ids(first.items) == [1, 2] and ids(rest) == [3, 4]
    assert first.items[0].key == f"{orders.name}:1:1" and first.items[0].at is None


async def test_a_timestamp_without_time_zone_is_read_in_the_given_zone(database: str, orders: Table) -> None:
    write(database, orders, [order(1, T0)])
    async with opened(database) as db:
        batch = await poll(db, feed(orders, timezone="Asia/Shanghai"), None)
    assert batch.items[0].at == T0.replace(tzinfo=ZoneInfo("Asia/Shanghai"))


async def test_bad_feed_settings_are_permanent_and_named(database: str, orders: Table) -> None:
    async with opened(database) as db:
        with pytest.raises(errors.Permanent, match="has no column 'changed_at'"):
            await poll(db, feed(orders, cursor="changed_at"), None)
        with pytest.raises(errors.Permanent, match=r"invalid input: with\.start"):
            await poll(db, feed(orders, start="yesterday"), None)
        with pytest.raises(errors.Permanent, match="not a position on 2 column"):
            await poll(db, feed(orders), {"after": [1], "kinds": ["int"]})
        with pytest.raises(errors.Permanent, match="timezone 'Mars/Olympus' is unknown"):
            await poll(db, feed(orders, timezone="Mars/Olympus"), None)
        with pytest.raises(errors.Permanent, match="lookback 60 does not fit the cursor column 'updated_at'"):
            await poll(
                db, feed(orders, lookback=60), {"after": ["2026-05-06T07:00:00", 1], "kinds": ["datetime", "int"]}
            )
        with pytest.raises(errors.Permanent, match="no poll feed 'orders'"):
            await db.poll("orders", feed(orders), None, limit=1)


# --- the notify feed --------------------------------------------------------------------------


async def test_notify_feed_receives_notifications(database: str) -> None:
    if not database.startswith("postgresql"):
        async with opened(database) as db:
            with pytest.raises(errors.Permanent, match="the notify feed needs PostgreSQL"):
                await anext(db.consume("notify", {"channel": "orders"}))
        return
    channel = f"orders_{uuid.uuid4().hex[:8]}"
    async with opened(database) as db:
        batches = db.consume("notify", {"channel": channel, "key_field": "id"})
        assert isinstance(batches, AsyncGenerator)
        try:
            keyed = await until_received(batches, database, channel, '{"id": "SO-1", "amount": 12.5}')
            plain = await until_received(batches, database, channel, "refresh")
        finally:
            await batches.aclose()
    assert keyed.items[0].body == {"id": "SO-1", "amount": Decimal("12.5")}
    assert keyed.items[0].key == f"{channel}:SO-1"
    assert plain.items[0].body == "refresh"
    assert plain.items[0].key.startswith(f"{channel}:") and plain.items[0].key != f"{channel}:refresh"
    assert plain.ack is not None
    await plain.ack()


async def test_notify_feed_that_cannot_connect_is_transient_without_the_password(database: str) -> None:
    if not database.startswith("postgresql"):
        pytest.skip("the notify feed is PostgreSQL only")
    with socket_free_port() as port:
        url = sqlalchemy.make_url(database).set(port=port, password=PASSWORD).render_as_string(hide_password=False)
        async with opened(url) as db:
            with pytest.raises(errors.Transient, match=f"the connection to 127.0.0.1:{port} was refused") as caught:
                await anext(db.consume("notify", {"channel": "orders"}))
    assert PASSWORD not in str(caught.value)


async def until_received(batches: AsyncIterator[Batch], url: str, channel: str, payload: str) -> Batch:
    """Send `payload` until the feed yields it: a NOTIFY sent before LISTEN runs is lost by design."""
    waiting = asyncio.ensure_future(anext(batches))
    address = sqlalchemy.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        async with await psycopg.AsyncConnection.connect(address, autocommit=True) as sender:
            for _ in range(50):
                await sender.execute("SELECT pg_notify(%s, %s)", (channel, payload))
                done, _ = await asyncio.wait({waiting}, timeout=0.1)
                if done:
                    return waiting.result()
    finally:
        if not waiting.done():
            waiting.cancel()
    raise AssertionError("no notification came within 5 s")


# --- streams ----------------------------------------------------------------------------------


async def test_stream_with_a_key_resumes_after_the_last_key(database: str, orders: Table) -> None:
    write(database, orders, [order(i, T0) for i in range(1, 12)])
    params: Json = {"sql": f"SELECT id, sku FROM {orders.name} WHERE id > :low", "params": {"low": 0}, "key": "id"}
    async with opened(database) as db:
        chunks = [chunk async for chunk in db.stream("query", params, start=None, chunk_rows=4)]
        resumed = [chunk async for chunk in db.stream("query", params, start=chunks[0].position, chunk_rows=4)]
    assert [len(c.rows) for c in chunks] == [4, 4, 3]
    assert chunk_ids(resumed) == list(range(5, 12))
    assert chunks[-1].position == {"after": [11], "kinds": ["int"], "rows": 11}


async def test_stream_without_a_key_resumes_by_row_count(database: str, orders: Table) -> None:
    write(database, orders, [order(i, T0) for i in range(1, 12)])
    params: Json = {"sql": f"SELECT id FROM {orders.name} ORDER BY id"}
    async with opened(database) as db:
        chunks = [chunk async for chunk in db.stream("query", params, start=None, chunk_rows=5)]
        resumed = [chunk async for chunk in db.stream("query", params, start={"rows": 5}, chunk_rows=5)]
        with pytest.raises(errors.Permanent, match="only query can be read as a stream"):
            await anext(db.stream("insert", params, start=None, chunk_rows=5))
    assert chunk_ids(chunks) == list(range(1, 12)) and chunks[-1].position == {"rows": 11}
    assert chunk_ids(resumed) == list(range(6, 12))


def chunk_ids(chunks: list[Chunk]) -> list[object]:
    return [row["id"] for chunk in chunks for row in chunk.rows if isinstance(row, dict)]
