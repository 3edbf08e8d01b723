"""The `sql` connector against real SQLite, PostgreSQL and MariaDB databases (nothing mocked).

Each server gets a uniquely named database for this test run, dropped afterwards; a server
that cannot be reached skips its tests with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy
from sqlalchemy import Column, DateTime, Integer, MetaData, Numeric, String, Table

from seamflow import errors
from seamflow.connectors.base import Connection
from seamflow.connectors.sql import SqlConnector
from seamflow.ids import Json

PASSWORD = "pw-Pl4nted-9c1e7b"

POSTGRES = os.environ.get("SEAMFLOW_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
MARIADB = os.environ.get("SEAMFLOW_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/")

SCHEMA = MetaData()
ORDERS = Table(
    "orders",
    SCHEMA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sku", String(20), unique=True, nullable=False),
    Column("name", String(50), nullable=False),
    Column("amount", Numeric(12, 2)),
    Column("placed_at", DateTime),
)

PROCEDURES = {
    "postgresql": """CREATE PROCEDURE add_order(p_sku VARCHAR, p_name VARCHAR) LANGUAGE SQL
                     AS $$ INSERT INTO orders (sku, name) VALUES (p_sku, p_name) $$""",
    "mysql": """CREATE PROCEDURE add_order(IN p_sku VARCHAR(20), IN p_name VARCHAR(50))
                BEGIN INSERT INTO orders (sku, name) VALUES (p_sku, p_name); SELECT COUNT(*) AS n FROM orders; END""",
}


def _admin(url: str) -> sqlalchemy.Engine:
    return sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.NullPool)


def _server_database(admin_url: str, backend: str) -> Iterator[str]:
    name = f"sf_sql_{uuid.uuid4().hex[:12]}"
    admin = _admin(admin_url)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except sqlalchemy.exc.OperationalError as exc:
        admin.dispose()
        pytest.skip(f"{backend} at {sqlalchemy.make_url(admin_url).host} is not reachable: {type(exc.orig).__name__}")
    try:
        yield sqlalchemy.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE {name}" + (" WITH (FORCE)" if backend == "postgresql" else ""))
        admin.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mariadb"])
def database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of an empty database made for this test run."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sql') / 'test.db'}"
    else:
        yield from _server_database(POSTGRES if request.param == "postgresql" else MARIADB, request.param)


@pytest.fixture
def url(database: str) -> str:
    """The database's URL, with a fresh `orders` table and no idempotency records."""
    engine = _admin(database)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS seamflow_idempotency")
        SCHEMA.drop_all(conn)
        SCHEMA.create_all(conn)
        if conn.dialect.name in PROCEDURES:
            conn.exec_driver_sql("DROP PROCEDURE IF EXISTS add_order")
            conn.exec_driver_sql(PROCEDURES[conn.dialect.name])
    engine.dispose()
    return database


@asynccontextmanager
async def opened(url: str, **config: Json) -> AsyncIterator[SqlConnector]:
    connector = SqlConnector()
    connection = Connection(name="db", connector="sql", config={"url": url, **config}, timeout=timedelta(seconds=5))
    await connector.open(connection)
    try:
        yield connector
    finally:
        await connector.close()


def rows_of(url: str, sql: str = "SELECT sku, name, amount FROM orders ORDER BY sku") -> list[tuple[object, ...]]:
    engine = _admin(url)
    with engine.connect() as conn:
        rows = [tuple(row) for row in conn.exec_driver_sql(sql)]
    engine.dispose()
    return rows


def backend(url: str) -> str:
    return sqlalchemy.make_url(url).get_backend_name()


def result_rows(result: Json) -> list[Json]:
    assert isinstance(result, dict)
    rows = result["rows"]
    assert isinstance(rows, list)
    return rows


# --- query ------------------------------------------------------------------------------------


async def test_query_returns_rows_with_exact_decimals_and_iso_datetimes(url: str) -> None:
    async with opened(url) as db:
        row: Json = {"sku": "A-1", "name": "Anna", "amount": Decimal("12.34"), "placed_at": "2024-05-06T07:08:09"}
        await db.call("insert", {"table": "orders", "row": row}, idempotency_key="k-insert")
        result = await db.call(
            "query",
            {"sql": "SELECT sku, amount, placed_at FROM orders WHERE sku = :sku", "params": {"sku": "A-1"}},
            idempotency_key="k-query",
        )
    assert isinstance(result, dict) and result["count"] == 1
    (found,) = result_rows(result)
    assert isinstance(found, dict)
    assert found["sku"] == "A-1"
    if backend(url) == "sqlite":  # SQLite has no exact decimals and stores datetimes as text
        assert Decimal(str(found["amount"])) == Decimal("12.34")
        assert str(found["placed_at"]).startswith("2024-05-06 07:08:09")
    else:
        assert found["amount"] == Decimal("12.34") and isinstance(found["amount"], Decimal)
        assert found["placed_at"] == "2024-05-06T07:08:09"


async def test_query_binds_values_so_sql_in_a_value_is_only_data(url: str) -> None:
    async with opened(url) as db:
        await db.call("insert", {"table": "orders", "row": {"sku": "A-1", "name": "x"}}, idempotency_key="k1")
        hostile = "A-1' OR '1'='1"
        result = await db.call(
            "query", {"sql": "SELECT * FROM orders WHERE sku = :sku", "params": {"sku": hostile}}, idempotency_key="k2"
        )
    assert result == {"rows": [], "count": 0}


async def test_query_with_a_missing_or_unused_param_is_permanent(url: str) -> None:
    async with opened(url) as db:
        with pytest.raises(errors.Permanent, match=r"no value for :sku.*params\.other is not used"):
            await db.call(
                "query",
                {"sql": "SELECT * FROM orders WHERE sku = :sku", "params": {"other": 1}},
                idempotency_key="k",
            )


async def test_query_over_max_rows_is_permanent_not_cut(url: str) -> None:
    async with opened(url) as db:
        rows: list[Json] = [{"sku": f"S-{i}", "name": "n"} for i in range(3)]
        await db.call("bulk_insert", {"table": "orders", "rows": rows}, idempotency_key="k1")
        with pytest.raises(errors.Permanent, match="more than max_rows=2"):
            await db.call("query", {"sql": "SELECT * FROM orders", "max_rows": 2}, idempotency_key="k2")


async def test_query_does_not_write(url: str) -> None:
    async with opened(url) as db:
        await db.call("query", {"sql": "INSERT INTO orders (sku, name) VALUES ('Q', 'q')"}, idempotency_key="k")
    assert rows_of(url) == []


# --- writes -----------------------------------------------------------------------------------


async def test_insert_one_row_or_several_returns_their_keys(url: str) -> None:
    async with opened(url) as db:
        one = await db.call("insert", {"table": "orders", "row": {"sku": "A", "name": "a"}}, idempotency_key="k1")
        rows: list[Json] = [{"sku": "B", "name": "b"}, {"sku": "C", "name": "c"}]
        two = await db.call("insert", {"table": "orders", "rows": rows}, idempotency_key="k2")
    assert one == {"count": 1, "keys": [{"id": 1}]}
    assert two == {"count": 2, "keys": [{"id": 2}, {"id": 3}]}
    assert [r[0] for r in rows_of(url)] == ["A", "B", "C"]


async def test_upsert_twice_updates_the_row(url: str) -> None:
    async with opened(url) as db:
        first: Json = {"sku": "A", "name": "first", "amount": Decimal("1.50")}
        await db.call("upsert", {"table": "orders", "row": first, "key": ["sku"]}, idempotency_key="k1")
        second: list[Json] = [
            {"sku": "A", "name": "second", "amount": Decimal("2.50")},
            {"sku": "B", "name": "b", "amount": 1},
        ]
        result = await db.call("upsert", {"table": "orders", "rows": second, "key": ["sku"]}, idempotency_key="k2")
    assert result == {"count": 2}
    assert [(sku, name, Decimal(str(amount))) for sku, name, amount in rows_of(url)] == [
        ("A", "second", Decimal("2.50")),
        ("B", "b", Decimal("1")),
    ]


async def test_update_and_delete_touch_only_matching_rows(url: str) -> None:
    async with opened(url) as db:
        rows: list[Json] = [{"sku": s, "name": "old"} for s in ("A", "B", "C")]
        await db.call("insert", {"table": "orders", "rows": rows}, idempotency_key="k1")
        updated = await db.call(
            "update", {"table": "orders", "values": {"name": "new"}, "where": {"sku": "B"}}, idempotency_key="k2"
        )
        deleted = await db.call("delete", {"table": "orders", "where": {"sku": "C"}}, idempotency_key="k3")
    assert updated == {"count": 1} and deleted == {"count": 1}
    assert [(sku, name) for sku, name, _ in rows_of(url)] == [("A", "old"), ("B", "new")]


async def test_bulk_insert_sends_chunks_in_one_transaction(url: str) -> None:
    rows: list[Json] = [{"sku": f"S-{i:05}", "name": "n", "amount": Decimal(i) / 100} for i in range(2_500)]
    more: list[Json] = [{"sku": f"T-{i:05}", "name": "n"} for i in range(2_500)]
    more.append({"sku": "S-00000", "name": "n"})
    async with opened(url) as db:
        result = await db.call(
            "bulk_insert", {"table": "orders", "rows": rows, "chunk_size": 1000}, idempotency_key="k"
        )
        with pytest.raises(errors.Permanent, match=r"S-00000|sku"):  # the duplicate in the last chunk undoes all
            await db.call("bulk_insert", {"table": "orders", "rows": more, "chunk_size": 1000}, idempotency_key="k2")
    assert result == {"count": 2_500}
    assert rows_of(url, "SELECT COUNT(*) FROM orders") == [(2_500,)]


async def test_call_runs_a_stored_procedure_or_says_sqlite_has_none(url: str) -> None:
    async with opened(url) as db:
        inputs: Json = {"procedure": "add_order", "args": ["P-1", "by procedure"]}
        if backend(url) == "sqlite":
            with pytest.raises(errors.Permanent, match="stored procedures are not supported by SQLite"):
                await db.call("call", inputs, idempotency_key="k")
            return
        await db.call("call", inputs, idempotency_key="k")
        again = await db.call("call", inputs, idempotency_key="k")
    assert isinstance(again, dict)
    assert [(sku, name) for sku, name, _ in rows_of(url)] == [("P-1", "by procedure")]


# --- idempotency ------------------------------------------------------------------------------


async def test_retry_with_the_same_key_yields_one_effect(url: str) -> None:
    async with opened(url) as db:
        inputs: Json = {"table": "orders", "row": {"sku": "A", "name": "a"}}
        first = await db.call("insert", inputs, idempotency_key="run_1/step_1")
        retried = await db.call("insert", inputs, idempotency_key="run_1/step_1")
        update: Json = {"table": "orders", "values": {"name": "b"}, "where": {"sku": "A"}}
        await db.call("update", update, idempotency_key="run_1/step_2")
        other = await db.call("insert", {"table": "orders", "row": {"sku": "B", "name": "b"}}, idempotency_key="k2")
    assert retried == first
    assert other == {"count": 1, "keys": [{"id": 2}]}
    assert rows_of(url, "SELECT COUNT(*) FROM orders") == [(2,)]


async def test_concurrent_attempts_with_the_same_key_yield_one_effect(url: str) -> None:
    async with opened(url) as db:
        inputs: Json = {"table": "orders", "rows": [{"sku": f"S-{i}", "name": "n"} for i in range(50)]}
        results = await asyncio.gather(*(db.call("bulk_insert", inputs, idempotency_key="same") for _ in range(4)))
    assert results == [{"count": 50}] * 4
    assert rows_of(url, "SELECT COUNT(*) FROM orders") == [(50,)]


async def test_a_failed_write_records_no_key(url: str) -> None:
    async with opened(url) as db:
        await db.call("insert", {"table": "orders", "row": {"sku": "A", "name": "a"}}, idempotency_key="k1")
        with pytest.raises(errors.Permanent):
            await db.call("insert", {"table": "orders", "row": {"sku": "A", "name": "dup"}}, idempotency_key="k2")
        fixed = await db.call("insert", {"table": "orders", "row": {"sku": "B", "name": "b"}}, idempotency_key="k2")
    assert isinstance(fixed, dict) and fixed["count"] == 1
    key = "`key`" if backend(url) == "mysql" else '"key"'
    assert rows_of(url, f"SELECT {key} FROM seamflow_idempotency ORDER BY {key}") == [("k1",), ("k2",)]
    assert [(sku, name) for sku, name, _ in rows_of(url)] == [("A", "a"), ("B", "b")]


# --- failures ---------------------------------------------------------------------------------


async def test_a_constraint_violation_is_permanent(url: str) -> None:
    async with opened(url) as db:
        with pytest.raises(errors.Permanent, match=r"db\.insert: .*(null|NULL|name)") as caught:
            await db.call("insert", {"table": "orders", "row": {"sku": "A"}}, idempotency_key="k")
    assert caught.value.where == "db.insert"


async def test_an_unknown_table_is_permanent_and_named(url: str) -> None:
    async with opened(url) as db:
        with pytest.raises(errors.Permanent, match="table 'no_such_orders' does not exist"):
            await db.call("insert", {"table": "no_such_orders", "row": {"sku": "A"}}, idempotency_key="k")
        with pytest.raises(errors.Permanent, match="no_such_orders"):
            await db.call("query", {"sql": "SELECT * FROM no_such_orders"}, idempotency_key="k")


async def test_an_unknown_column_is_permanent_and_named(url: str) -> None:
    async with opened(url) as db:
        with pytest.raises(errors.Permanent, match="table 'orders' has no column 'colour'"):
            await db.call(
                "update", {"table": "orders", "values": {"colour": "red"}, "where": {"id": 1}}, idempotency_key="k"
            )


@pytest.mark.parametrize(
    "inputs",
    [
        {"table": "orders; DROP TABLE orders", "row": {"sku": "A"}},
        {"table": "orders", "row": {"sku) VALUES (1); --": "A"}},
        {"table": "orders", "row": {"sku": "A"}, "rows": [{"sku": "B"}]},
        {"table": "orders", "row": {"sku": "A"}, "unknown": 1},
    ],
)
async def test_bad_inputs_are_permanent_before_any_sql(url: str, inputs: Json) -> None:
    async with opened(url) as db:
        with pytest.raises(errors.Permanent, match=r"db\.insert: invalid input: with\."):
            await db.call("insert", inputs, idempotency_key="k")
    assert rows_of(url) == []


async def test_a_statement_over_the_timeout_is_transient(database: str) -> None:
    sleep = {"postgresql": "SELECT pg_sleep(3)", "mysql": "SELECT SLEEP(3)"}.get(backend(database))
    if sleep is None:
        pytest.skip("SQLite has no server-side statement timeout")
    async with opened(database, statement_timeout=1) as db:
        with pytest.raises(errors.Transient, match=r"statement timeout|max_statement_time exceeded"):
            await db.call("query", {"sql": sleep}, idempotency_key="k")


# --- unreachable servers and secrets -----------------------------------------------------------


@pytest.mark.parametrize("driver", ["postgresql+psycopg", "mysql+pymysql"])
async def test_an_unreachable_server_is_transient_and_hides_the_password(
    driver: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy")  # SQLAlchemy logs from WARNING unless told
    with socket_free_port() as port:
        async with opened(f"{driver}://app:{PASSWORD}@127.0.0.1:{port}/shop") as db:
            with pytest.raises(errors.Transient) as caught:
                await db.call("insert", {"table": "orders", "row": {"sku": "A"}}, idempotency_key="k")
    assert PASSWORD not in str(caught.value) and PASSWORD not in repr(caught.value)
    assert caught.value.__cause__ is None or PASSWORD not in str(caught.value.__cause__)
    assert PASSWORD not in caplog.text


async def test_the_password_appears_in_no_error_or_log(url: str, caplog: pytest.LogCaptureFixture) -> None:
    if backend(url) == "sqlite":
        pytest.skip("a SQLite URL carries no password")
    messages = []
    with with_password(url) as secret_url:
        caplog.set_level(logging.DEBUG)
        caplog.set_level(logging.DEBUG, logger="sqlalchemy")  # SQLAlchemy logs from WARNING unless told
        async with opened(secret_url) as db:
            await db.call("insert", {"table": "orders", "row": {"sku": "A", "name": "a"}}, idempotency_key="k1")
            attempts: list[tuple[str, Json]] = [
                ("query", {"sql": "SELEC nonsense"}),
                ("insert", {"table": "nope", "row": {"a": 1}}),
                ("insert", {"table": "orders", "row": {"sku": "A", "name": "dup"}}),
            ]
            for action, inputs in attempts:
                with pytest.raises(errors.ConnectorError) as caught:
                    await db.call(action, inputs, idempotency_key=f"k-{action}")
                messages.append(str(caught.value))
        logged = caplog.text  # before the test's own DROP USER is logged
    assert len(messages) == 3 and all(PASSWORD not in m for m in messages), messages
    assert "INSERT INTO orders" in logged  # the statements were logged, values hidden
    assert PASSWORD not in logged


async def test_an_invalid_url_is_invalid_input_without_the_url() -> None:
    connector = SqlConnector()
    for url in [f"oracle://app:{PASSWORD}@db/x", f"not a url {PASSWORD}"]:
        with pytest.raises(errors.InvalidInput) as caught:
            await connector.open(Connection(name="db", connector="sql", config={"url": url}))
        assert "db" in str(caught.value) and PASSWORD not in str(caught.value)


@contextlib.contextmanager
def with_password(url: str) -> Iterator[str]:
    """The URL with PASSWORD as the password: PostgreSQL trusts any; on MariaDB a user with it is made."""
    parsed = sqlalchemy.make_url(url)
    if parsed.get_backend_name() != "mysql":
        yield parsed.set(password=PASSWORD).render_as_string(hide_password=False)
        return
    user = f"sf_{uuid.uuid4().hex[:8]}"
    hosts = ["%%", "localhost"]
    admin = _admin(url)
    with admin.connect() as conn:
        for host in hosts:
            conn.exec_driver_sql(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{PASSWORD}'")
            conn.exec_driver_sql(f"GRANT ALL ON {parsed.database}.* TO '{user}'@'{host}'")
    try:
        yield parsed.set(username=user, password=PASSWORD).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            for host in hosts:
                conn.exec_driver_sql(f"DROP USER '{user}'@'{host}'")
        admin.dispose()


@contextlib.contextmanager
def socket_free_port() -> Iterator[int]:
    """A port on 127.0.0.1 where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    yield port
