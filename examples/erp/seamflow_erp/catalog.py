"""The product catalogue (sku, name, unit, list price in CNY) and the `changes` changelog reader."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from seamflow_erp import bodies, schema
from seamflow_erp.database import Tx
from seamflow_erp.paging import Page, PageRequest, fetch_page
from seamflow_erp.problems import Problem

__all__ = ["get_product", "list_changes", "list_products", "put_product"]

prod, changes = schema.products, schema.changes


def put_product(tx: Tx, sku: str, name: str, unit: str, price: Decimal) -> None:
    """Create or update a product (used by the seed; the API only reads products)."""
    row = tx.conn.execute(select(prod).where(prod.c.sku == sku)).first()
    if row is None:
        tx.conn.execute(insert(prod).values(sku=sku, name=name, unit=unit, price=price, updated_at=tx.now))
        tx.record_change("product", sku, "created")
    elif (row.name, row.unit, row.price) != (name, unit, price):
        tx.conn.execute(
            update(prod).where(prod.c.sku == sku).values(name=name, unit=unit, price=price, updated_at=tx.now)
        )
        tx.record_change("product", sku, "updated")


def get_product(conn: Connection, sku: str) -> bodies.Product:
    row = conn.execute(select(prod).where(prod.c.sku == sku)).first()
    if row is None:
        raise Problem.not_found("product", sku)
    return bodies.Product.model_validate(row, from_attributes=True)


def list_products(conn: Connection, request: PageRequest) -> tuple[list[bodies.Product], Page]:
    page = fetch_page(conn, select(prod), prod.c.updated_at, prod.c.sku, request)
    return [bodies.Product.model_validate(r, from_attributes=True) for r in page.rows], page


def list_changes(conn: Connection, after_id: int, limit: int) -> bodies.ChangePage:
    """Changes with id > after_id, oldest first. Ids grow in commit order, so following them misses nothing."""
    rows = conn.execute(select(changes).where(changes.c.id > after_id).order_by(changes.c.id).limit(limit + 1)).all()
    items = [bodies.Change.model_validate(r, from_attributes=True) for r in rows[:limit]]
    return bodies.ChangePage(items=items, next_after_id=items[-1].id if items else after_id, has_more=len(rows) > limit)
