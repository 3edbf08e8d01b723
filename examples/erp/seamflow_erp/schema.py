"""The ERP's tables, created at start: customers, products, sales orders and their lines, invoices,
payments, and the `changes` changelog written in the same transaction as every change.

README.md describes each column for integrators who read or write the database directly.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    true,
)
from sqlalchemy.engine import Engine

from seamflow_erp.columns import Exact, UtcDateTime

__all__ = [
    "ORDER_STATUSES",
    "PAYMENT_METHODS",
    "changes",
    "create_schema",
    "customers",
    "invoices",
    "metadata",
    "payments",
    "products",
    "purchase_orders",
    "sales_order_lines",
    "sales_orders",
]

ORDER_STATUSES = ("pending_review", "approved", "shipped", "cancelled")
PAYMENT_METHODS = ("bank_transfer", "alipay", "wechat_pay")

metadata = MetaData()

# SQLite only makes an INTEGER PRIMARY KEY the rowid alias (autoincrementing); PostgreSQL gets BIGINT.
_Id = BigInteger().with_variant(Integer(), "sqlite")


customers = Table(
    "customers",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("code", String(16), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("phone", String(20)),
    Column("email", String(254)),
    Column("tax_id", String(18), unique=True),
    Column("address", String(500)),
    Column("credit_limit", Exact(14, 2)),
    Column("active", Boolean, nullable=False, server_default=true()),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("row_version", Integer, nullable=False, server_default="1"),
    Index("ix_customers_updated_at_id", "updated_at", "id"),
)

products = Table(
    "products",
    metadata,
    Column("sku", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("unit", String(8), nullable=False),
    Column("price", Exact(12, 2), nullable=False),
    Column("active", Boolean, nullable=False, server_default=true()),
    Column("updated_at", UtcDateTime, nullable=False),
    CheckConstraint("price >= 0", name="ck_products_price"),
    Index("ix_products_updated_at_sku", "updated_at", "sku"),
)

sales_orders = Table(
    "sales_orders",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("order_no", String(20), nullable=False, unique=True),
    Column("customer_id", _Id, ForeignKey("customers.id"), nullable=False, index=True),
    Column("external_ref", String(64), unique=True),
    Column("status", String(16), nullable=False),
    Column("total", Exact(14, 2), nullable=False),
    Column("currency", String(3), nullable=False, server_default="CNY"),
    Column("note", Text),
    Column("carrier", String(64)),
    Column("tracking_no", String(64)),
    Column("cancel_reason", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("approved_at", UtcDateTime),
    Column("shipped_at", UtcDateTime),
    Column("cancelled_at", UtcDateTime),
    Column("updated_at", UtcDateTime, nullable=False),
    CheckConstraint("status IN ('pending_review', 'approved', 'shipped', 'cancelled')", name="ck_sales_orders_status"),
    CheckConstraint("currency = 'CNY'", name="ck_sales_orders_currency"),
    Index("ix_sales_orders_updated_at_id", "updated_at", "id"),
    Index("ix_sales_orders_status", "status"),
)

sales_order_lines = Table(
    "sales_order_lines",
    metadata,
    Column("order_id", _Id, ForeignKey("sales_orders.id"), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("sku", String(32), ForeignKey("products.sku"), nullable=False),
    Column("qty", Integer, nullable=False),
    Column("unit_price", Exact(12, 2), nullable=False),
    Column("amount", Exact(14, 2), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    CheckConstraint("qty > 0", name="ck_sales_order_lines_qty"),
    Index("ix_sales_order_lines_updated_at", "updated_at"),
)

invoices = Table(
    "invoices",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("invoice_no", String(20), nullable=False, unique=True),
    Column("order_id", _Id, ForeignKey("sales_orders.id"), nullable=False, index=True),
    Column("amount", Exact(14, 2), nullable=False),
    Column("issued_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    CheckConstraint("amount > 0", name="ck_invoices_amount"),
    Index("ix_invoices_updated_at_id", "updated_at", "id"),
)

payments = Table(
    "payments",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("order_id", _Id, ForeignKey("sales_orders.id"), nullable=False, index=True),
    Column("invoice_id", _Id, ForeignKey("invoices.id")),
    Column("amount", Exact(14, 2), nullable=False),
    Column("method", String(16), nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("reference", String(64)),
    Column("idempotency_key", String(255), unique=True),
    Column("request_hash", String(64)),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    CheckConstraint("amount > 0", name="ck_payments_amount"),
    CheckConstraint("method IN ('bank_transfer', 'alipay', 'wechat_pay')", name="ck_payments_method"),
    Index("ix_payments_updated_at_id", "updated_at", "id"),
)

purchase_orders = Table(
    "purchase_orders",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("po_no", String(32), nullable=False, unique=True),
    Column("request_no", String(64), nullable=False, unique=True),  # the approved purchase request: one PO each
    Column("supplier", String(200), nullable=False),
    Column("item", String(500), nullable=False),
    Column("amount", Exact(14, 2), nullable=False),
    Column("currency", String(3), nullable=False, server_default="CNY"),
    Column("buyer", String(64), nullable=False),
    Column("approved_by", String(500), nullable=False, server_default=""),
    Column("status", String(16), nullable=False, server_default="open"),
    Column("created_at", UtcDateTime, nullable=False),
    CheckConstraint("amount > 0", name="ck_purchase_orders_amount"),
)

changes = Table(
    "changes",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("entity", String(32), nullable=False),
    Column("entity_id", String(64), nullable=False),
    Column("op", String(16), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_changes_entity", "entity", "entity_id"),
    Index("ix_changes_updated_at", "updated_at"),
    # AUTOINCREMENT: SQLite never reuses an id, so a poller's after_id stays meaningful.
    sqlite_autoincrement=True,
)


def create_schema(engine: Engine) -> None:
    """Create every table and index that does not exist yet (safe to call on each start)."""
    metadata.create_all(engine)
