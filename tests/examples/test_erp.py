"""The example ERP (examples/erp) as its users see it: a real server on 127.0.0.1, its REST API and its
database read directly with SQL, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

ERP_ROOT = Path(__file__).resolve().parents[2] / "examples" / "erp"
if str(ERP_ROOT) not in sys.path:
    sys.path.insert(0, str(ERP_ROOT))

import uvicorn  # noqa: E402
from seamflow_erp import Database, OperatorOptions, create_app, seed  # noqa: E402
from seamflow_erp.identifiers import credit_code_check_char  # noqa: E402

PG_ADMIN_URL = os.environ.get("SEAMFLOW_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TOKEN = "erp-test-token-7f3c9a"
T = TypeVar("T")

pytestmark = pytest.mark.timeout(60)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _postgres_unavailable() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except Exception as exc:  # any failure means: skip the PostgreSQL variant, saying why
        return f"PostgreSQL at {PG_ADMIN_URL} is not reachable: {exc}"


@dataclass
class Erp:
    """A running ERP: an HTTP client with the token, and direct SQL on its database."""

    client: httpx.Client
    backend: str
    db_arg: str

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement on the ERP's database (`?` placeholders on both backends)."""
        if self.backend == "postgres":
            import psycopg

            with psycopg.connect(self.db_arg, autocommit=True) as conn:
                cur = conn.execute(statement.replace("?", "%s"), params)
                return list(cur.fetchall()) if cur.description else []
        conn = sqlite3.connect(self.db_arg, timeout=30)
        try:
            with conn:
                return list(conn.execute(statement, params).fetchall())
        finally:
            conn.close()


@contextmanager
def _fresh_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """A new, empty database for one test: a SQLite file, or a PostgreSQL database dropped afterwards."""
    if backend == "sqlite":
        yield str(tmp_path / "erp.db")
        return
    reason = _postgres_unavailable()
    if reason:
        pytest.skip(reason)
    import psycopg

    name = f"erp_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class _ThreadServer:
    """uvicorn serving one app on a free 127.0.0.1 port in a background thread."""

    def __init__(self, app: Any) -> None:
        self.port = _free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", ws="none", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"erp-{self.port}", daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the ERP server did not start")
            time.sleep(0.01)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@contextmanager
def _run_erp(backend: str, tmp_path: Path, operator: OperatorOptions | None = None) -> Iterator[Erp]:
    with _fresh_database(backend, tmp_path) as db_arg:
        database = Database(db_arg)
        try:
            seed(database)
            with (
                _ThreadServer(create_app(database, TOKEN, operator)) as url,
                httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as client,
            ):
                yield Erp(client, backend, db_arg)
        finally:
            database.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def erp(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Erp]:
    with _run_erp(request.param, tmp_path) as running:
        yield running


def _eventually(check: Callable[[], T], timeout_s: float = 10) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)


def _customer_id(erp: Erp, code: str = "C100005") -> int:
    return int(erp.client.get("/customers", params={"code": code}).json()["items"][0]["id"])


def _new_order(
    erp: Erp, ref: str | None = None, lines: list[dict[str, Any]] | None = None, code: str = "C100006"
) -> httpx.Response:
    body: dict[str, Any] = {"customer_code": code, "lines": lines or [{"sku": "PAPER-A4-70", "qty": 2}]}
    if ref is not None:
        body["external_ref"] = ref
    return erp.client.post("/sales-orders", json=body)


# --- sales orders -----------------------------------------------------------------------------------


def test_order_total_is_the_exact_decimal_sum_of_its_lines(erp: Erp) -> None:
    lines = [
        {"sku": "PAPER-A4-70", "qty": 3},  # list price 129.90
        {"sku": "PEN-GEL-05", "qty": 7, "unit_price": "0.10"},
        {"sku": "TONER-CF276A", "qty": 1, "unit_price": "0.20"},
        {"sku": "PRN-LJ-M404", "qty": 999, "unit_price": "33333.33"},
    ]
    created = _new_order(erp, "CT-2026-0001", lines)
    assert created.status_code == 201, created.text
    order = created.json()
    expected_lines = ["389.70", "0.70", "0.20", "33299996.67"]
    assert [line["amount"] for line in order["lines"]] == expected_lines
    assert order["total"] == str(sum(Decimal(a) for a in expected_lines)) == "33300387.27"
    assert order["status"] == "pending_review" and order["currency"] == "CNY"
    assert order["order_no"].startswith("SO-") and len(order["order_no"]) == len("SO-20261125-0001")
    stored = erp.sql("SELECT total FROM sales_orders WHERE id = ?", (order["id"],))[0][0]
    assert Decimal(str(stored)).quantize(Decimal("0.01")) == Decimal("33300387.27")


def test_repeated_create_with_the_same_external_ref_returns_the_existing_order(erp: Erp) -> None:
    first = _new_order(erp, "CT-2026-0042")
    again = _new_order(erp, "CT-2026-0042")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["order_no"] == first.json()["order_no"]
    assert erp.sql("SELECT count(*) FROM sales_orders WHERE external_ref = ?", ("CT-2026-0042",)) == [(1,)]
    changed = _new_order(erp, "CT-2026-0042", [{"sku": "PAPER-A4-70", "qty": 3}])
    assert changed.status_code == 409
    assert changed.json()["code"] == "external_ref_conflict" and "lines" in changed.json()["detail"]
    listed = erp.client.get("/sales-orders", params={"external_ref": "CT-2026-0042"}).json()["items"]
    assert [o["id"] for o in listed] == [first.json()["id"]]


def test_order_moves_pending_review_to_approved_to_shipped_and_cannot_be_cancelled_after(erp: Erp) -> None:
    order_id = _new_order(erp, "CT-SM-1").json()["id"]
    ship = {"carrier": "顺丰速运", "tracking_no": "SF1234567890"}
    early = erp.client.post(f"/sales-orders/{order_id}/ship", json=ship)
    assert early.status_code == 409 and early.json()["current_status"] == "pending_review"
    assert erp.client.post(f"/sales-orders/{order_id}/approve").json()["status"] == "approved"
    assert erp.client.post(f"/sales-orders/{order_id}/approve").status_code == 200  # a retry changes nothing
    shipped = erp.client.post(f"/sales-orders/{order_id}/ship", json=ship)
    assert shipped.status_code == 200, shipped.text
    assert (shipped.json()["status"], shipped.json()["tracking_no"]) == ("shipped", "SF1234567890")
    assert erp.client.post(f"/sales-orders/{order_id}/ship", json=ship).status_code == 200
    reshipped = erp.client.post(f"/sales-orders/{order_id}/ship", json={**ship, "tracking_no": "JD9"})
    assert reshipped.status_code == 409
    cancel = erp.client.post(f"/sales-orders/{order_id}/cancel", json={"reason": "客户取消"})
    assert cancel.status_code == 409
    problem = cancel.json()
    assert cancel.headers["content-type"].startswith("application/problem+json")
    assert (problem["code"], problem["status"], problem["current_status"]) == ("invalid_transition", 409, "shipped")
    assert erp.sql("SELECT status FROM sales_orders WHERE id = ?", (order_id,)) == [("shipped",)]


def test_cancelled_order_cannot_be_approved_or_paid(erp: Erp) -> None:
    order_id = _new_order(erp, "CT-SM-2").json()["id"]
    cancelled = erp.client.post(f"/sales-orders/{order_id}/cancel", json={"reason": "预算调整"})
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["cancel_reason"] == "预算调整"
    assert erp.client.post(f"/sales-orders/{order_id}/cancel").status_code == 200
    assert erp.client.post(f"/sales-orders/{order_id}/approve").status_code == 409
    paid = erp.client.post("/payments", json={"order_id": order_id, "amount": "1.00", "method": "alipay"})
    assert (paid.status_code, paid.json()["code"]) == (409, "order_cancelled")


def test_approval_over_the_credit_limit_is_refused(erp: Erp) -> None:
    # 杭州云帆 (C100004) has a 50,000 CNY limit and a paid seed order, so this 2 × 23,990 order is over.
    small = _new_order(erp, "CT-CL-1", [{"sku": "PRN-LJ-M404", "qty": 10}], code="C100004").json()
    assert erp.client.post(f"/sales-orders/{small['id']}/approve").status_code == 200
    big = _new_order(erp, "CT-CL-2", [{"sku": "PRN-LJ-M404", "qty": 20}], code="C100004").json()
    refused = erp.client.post(f"/sales-orders/{big['id']}/approve")
    assert (refused.status_code, refused.json()["code"]) == (409, "credit_limit_exceeded")
    assert erp.client.get(f"/sales-orders/{big['id']}").json()["status"] == "pending_review"


# --- invoices and payments ---------------------------------------------------------------------------


def test_payment_with_the_same_idempotency_key_is_recorded_once(erp: Erp) -> None:
    order = _new_order(erp, "CT-PAY-1", [{"sku": "CHAIR-ERG-01", "qty": 2}]).json()  # 1,798.00
    erp.client.post(f"/sales-orders/{order['id']}/approve")
    invoice = erp.client.post(f"/sales-orders/{order['id']}/invoices")
    assert invoice.status_code == 201 and invoice.json()["amount"] == "1798.00"
    body = {"invoice_id": invoice.json()["id"], "amount": "1000.00", "method": "wechat_pay", "reference": "WX-778"}
    key = {"Idempotency-Key": "crm-payment-778"}
    first = erp.client.post("/payments", json=body, headers=key)
    replay = erp.client.post("/payments", json=body, headers=key)
    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay.json() == first.json() and replay.headers["Idempotent-Replayed"] == "true"
    assert first.json()["order_id"] == order["id"]
    reused = erp.client.post("/payments", json={**body, "amount": "2.00"}, headers=key)
    assert (reused.status_code, reused.json()["code"]) == (422, "idempotency_key_reused")
    assert erp.sql("SELECT count(*) FROM payments WHERE order_id = ?", (order["id"],)) == [(1,)]
    state = erp.client.get(f"/sales-orders/{order['id']}").json()
    assert (state["paid_total"], state["payment_status"]) == ("1000.00", "partially_paid")
    over = erp.client.post("/payments", json={**body, "amount": "798.01"})
    assert (over.status_code, over.json()["code"]) == (409, "overpayment")
    rest = erp.client.post("/payments", json={"order_id": order["id"], "amount": "798.00", "method": "bank_transfer"})
    assert rest.status_code == 201
    assert erp.client.get(f"/sales-orders/{order['id']}").json()["payment_status"] == "paid"


# --- polling: changes feed and updated_since ---------------------------------------------------------


def test_changes_feed_lists_every_change_once_in_order(erp: Erp) -> None:
    start = erp.client.get("/changes", params={"after_id": 0, "limit": 1000}).json()["next_after_id"]
    order_id = _new_order(erp, "CT-FEED-1").json()["id"]
    erp.client.post(f"/sales-orders/{order_id}/approve")
    erp.client.post("/payments", json={"order_id": order_id, "amount": "259.80", "method": "alipay"})
    erp.client.post(f"/sales-orders/{order_id}/ship", json={"carrier": "京东物流", "tracking_no": "JD0001"})
    erp.client.patch(f"/customers/{_customer_id(erp, 'C100006')}", json={"phone": "13912345678"})
    seen: list[dict[str, Any]] = []
    after = start
    while True:  # follow the feed two at a time, as a poller would
        page = erp.client.get("/changes", params={"after_id": after, "limit": 2}).json()
        seen += page["items"]
        after = page["next_after_id"]
        if not page["has_more"]:
            break
    assert [c["id"] for c in seen] == sorted({c["id"] for c in seen})
    assert [(c["entity"], c["op"]) for c in seen] == [
        ("sales_order", "created"),
        ("sales_order", "approved"),
        ("payment", "created"),
        ("sales_order", "paid"),
        ("sales_order", "shipped"),
        ("customer", "updated"),
    ]
    assert erp.client.get("/changes", params={"after_id": after}).json() == {
        "items": [],
        "next_after_id": after,
        "has_more": False,
    }
    assert erp.sql("SELECT max(id) FROM changes") == [(after,)]


def test_updated_since_pages_are_stable_when_many_rows_share_a_timestamp(erp: Erp) -> None:
    ids = [_new_order(erp, f"CT-PAGE-{i}").json()["id"] for i in range(7)]
    stamp = "2030-01-01 00:00:00.000000" if erp.backend == "sqlite" else "2030-01-01 00:00:00+00"
    # Rows written in one bulk import share one timestamp; paging must still return each once.
    erp.sql("UPDATE sales_orders SET updated_at = ? WHERE external_ref LIKE ?", (stamp, "CT-PAGE-%"))
    params: dict[str, Any] = {"updated_since": "2030-01-01T00:00:00Z", "limit": 3}
    pages = []
    while True:
        page = erp.client.get("/sales-orders", params=params).json()
        pages.append([o["id"] for o in page["items"]])
        params["cursor"] = page["next_cursor"]
        if not page["has_more"]:
            break
    assert pages == [ids[0:3], ids[3:6], ids[6:7]]
    # A poller keeps its cursor: a row updated later shows up once, after everything it has seen.
    erp.client.post(f"/sales-orders/{ids[2]}/cancel")
    erp.sql(
        "UPDATE sales_orders SET updated_at = ? WHERE id = ?",
        ("2030-01-01 00:00:01.000000" if erp.backend == "sqlite" else "2030-01-01 00:00:01+00", ids[2]),
    )
    later = erp.client.get("/sales-orders", params=params).json()
    assert [o["id"] for o in later["items"]] == [ids[2]] and later["items"][0]["status"] == "cancelled"
    bad = erp.client.get("/sales-orders", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["parameter"] == "cursor"


# --- customers ---------------------------------------------------------------------------------------


def test_customer_upsert_by_code_and_by_tax_id_creates_then_updates(erp: Erp) -> None:
    body = {"name": "广州南沙恒通贸易有限公司", "phone": "13622223333", "credit_limit": "120000.00"}
    created = erp.client.put("/customers/by-code/CRM-88", json=body)
    again = erp.client.put("/customers/by-code/CRM-88", json={**body, "phone": "020-38881234"})
    assert (created.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == created.json()["id"] and again.json()["row_version"] == 2
    assert again.headers["ETag"] == '"2"'
    stale = erp.client.patch(
        f"/customers/{created.json()['id']}", json={"email": "a@b.cn"}, headers={"If-Match": '"1"'}
    )
    assert (stale.status_code, stale.json()["code"]) == (412, "row_version_mismatch")
    tax_id = "91440101MA5CXYW10" + credit_code_check_char("91440101MA5CXYW10")
    by_tax = erp.client.put(f"/customers/by-tax-id/{tax_id}", json={"name": "Pearl River Imports Ltd."})
    assert by_tax.status_code == 201 and by_tax.json()["code"].startswith("C0")
    assert (
        erp.client.put(f"/customers/by-tax-id/{tax_id}", json={"name": "Pearl River Imports Ltd."}).status_code == 200
    )
    assert erp.sql("SELECT count(*) FROM customers WHERE tax_id = ?", (tax_id,)) == [(1,)]


def test_bad_input_is_a_problem_naming_the_field(erp: Erp) -> None:
    phone = erp.client.post("/customers", json={"name": "测试", "phone": "12345"})
    assert phone.status_code == 422 and phone.headers["content-type"].startswith("application/problem+json")
    assert phone.json()["errors"][0]["pointer"] == "#/phone" and "mainland" in phone.json()["errors"][0]["detail"]
    sku = _new_order(erp, None, [{"sku": "PAPER-A4-70", "qty": 1}, {"sku": "NOPE", "qty": 1}])
    assert sku.status_code == 422 and sku.json()["errors"][0]["pointer"] == "#/lines/1/sku"
    money = erp.client.post("/payments", json={"order_id": 1, "amount": "1.001", "method": "alipay"})
    assert money.status_code == 422 and money.json()["errors"][0]["pointer"] == "#/amount"
    method = erp.client.post("/payments", json={"order_id": 1, "amount": "1.00", "method": "cash"})
    assert method.json()["errors"][0]["pointer"] == "#/method"
    assert erp.client.get("/sales-orders/999999").json()["code"] == "not_found"
    anonymous = httpx.get(f"{erp.client.base_url}/sales-orders")
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"] == "Bearer"
    assert erp.client.get("/healthz").json() == {"status": "ok"}


def test_every_route_has_a_snake_case_operation_id(erp: Erp) -> None:
    spec = erp.client.get("/openapi.json").json()
    operations = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert all(op.replace("_", "").isalpha() and op.islower() for op in operations)
    assert {
        "create_sales_order",
        "approve_sales_order",
        "ship_sales_order",
        "cancel_sales_order",
        "record_payment",
        "list_changes",
        "upsert_customer_by_code",
        "upsert_customer_by_tax_id",
        "list_products",
    } <= operations
    assert sum(len(path) for path in spec["paths"].values()) == len(operations)


# --- the database, read directly ---------------------------------------------------------------------


def test_schema_is_readable_directly_with_sql(erp: Erp) -> None:
    rows = erp.sql(
        "SELECT o.order_no, c.code, c.name, o.status, o.total, sum(l.amount) FROM sales_orders o "
        "JOIN customers c ON c.id = o.customer_id JOIN sales_order_lines l ON l.order_id = o.id "
        "WHERE o.external_ref = ? GROUP BY o.order_no, c.code, c.name, o.status, o.total",
        ("SEED-CT-0003",),
    )
    ((order_no, code, name, status, total, line_sum),) = rows
    assert (code, name, status) == ("C100005", "Acme Trading (Shanghai) Co., Ltd.", "approved")
    assert Decimal(str(total)) == Decimal(str(line_sum)) == Decimal("7059")  # 50 × 129.90 + 30 × 18.80
    paid = erp.sql(
        "SELECT p.method, p.amount FROM payments p JOIN sales_orders o ON o.id = p.order_id WHERE o.order_no = ?",
        (order_no,),
    )
    assert [(m, Decimal(str(a))) for m, a in paid] == [("bank_transfer", Decimal("7059"))]
    products = dict(erp.sql("SELECT sku, name FROM products"))
    assert products["CHAIR-ERG-01"] == "人体工学办公椅" and "A4 复印纸" in products["PAPER-A4-70"]
    ops = erp.sql(
        "SELECT entity, op FROM changes WHERE entity = 'sales_order' AND entity_id = "
        "(SELECT CAST(id AS VARCHAR(20)) FROM sales_orders WHERE external_ref = 'SEED-CT-0004') ORDER BY id"
    )
    assert [op for _, op in ops] == ["created", "approved", "paid", "shipped"]
    for table in ("customers", "products", "sales_orders", "sales_order_lines", "invoices", "payments", "changes"):
        assert erp.sql(f"SELECT count(*) FROM {table} WHERE updated_at IS NULL") == [(0,)]


# --- running it --------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_operator_approves_collects_and_ships_pending_orders(backend: str, tmp_path: Path) -> None:
    quick = OperatorOptions(
        min_delay=timedelta(0), max_delay=timedelta(milliseconds=50), poll_interval=timedelta(milliseconds=50), seed=7
    )
    with _run_erp(backend, tmp_path, quick) as erp:
        order_id = _new_order(erp, "CT-OP-1").json()["id"]

        def shipped() -> dict[str, Any]:
            order = erp.client.get(f"/sales-orders/{order_id}").json()
            assert order["status"] == "shipped", order["status"]
            return order

        order = _eventually(shipped)
        assert order["payment_status"] == "paid" and order["invoiced_total"] == order["total"]
        assert order["carrier"] and order["tracking_no"]


def test_cli_seeds_and_serves_on_the_given_port(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "ERP_API_TOKEN": TOKEN, "PYTHONPATH": str(ERP_ROOT)}
    command = [
        sys.executable,
        "-m",
        "seamflow_erp",
        "--seed",
        "--port",
        str(port),
        "--db",
        str(tmp_path / "erp.db"),
        "--log-level",
        "warning",
    ]
    with (tmp_path / "erp.log").open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"})

        def products() -> list[dict[str, Any]]:
            try:
                response = client.get("/products")
            except httpx.TransportError as exc:
                raise AssertionError(f"not up yet: {exc}") from exc
            assert response.status_code == 200
            return list(response.json()["items"])

        names = {p["name"] for p in _eventually(products, timeout_s=20)}
        assert "人体工学办公椅" in names and any("激光打印机" in n for n in names)
        client.close()
        missing_token = subprocess.run(command[:-2], env={**env, "ERP_API_TOKEN": ""}, capture_output=True, timeout=30)
        assert missing_token.returncode == 2 and b"ERP_API_TOKEN" in missing_token.stderr
    finally:
        process.terminate()
        process.wait(timeout=10)
