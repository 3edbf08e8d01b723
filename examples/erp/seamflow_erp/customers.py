"""Customers: create, change (optimistically, by row_version), upsert by code or tax_id, deactivate, list."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, insert, select, update
from sqlalchemy.engine import Connection

from seamflow_erp import bodies, schema
from seamflow_erp.database import Tx
from seamflow_erp.numbering import customer_code
from seamflow_erp.paging import Page, PageRequest, fetch_page
from seamflow_erp.problems import FieldProblem, Problem

__all__ = [
    "create_customer",
    "deactivate_customer",
    "get_customer",
    "list_customers",
    "update_customer",
    "upsert_customer",
]

cust = schema.customers


def _check_unique(conn: Connection, values: dict[str, Any], customer_id: int | None) -> None:
    for field in ("code", "tax_id"):
        if values.get(field) is None:
            continue
        other = conn.execute(select(cust.c.id).where(cust.c[field] == values[field])).scalar()
        if other is not None and other != customer_id:
            raise Problem(
                409,
                "duplicate_customer",
                f"customer {other} already has {field} {values[field]!r}",
                errors=[FieldProblem(pointer=f"#/{field}", detail="already used by another customer")],
                customer_id=other,
            )


def create_customer(tx: Tx, body: bodies.CustomerIn) -> int:
    """Create a customer; its code is C + 6 digits of its id unless `code` is given."""
    values = body.model_dump(exclude_none=True)
    _check_unique(tx.conn, values, None)
    values.setdefault("code", f"new-{uuid.uuid4().hex[:12]}")
    customer_id = int(
        tx.conn.execute(
            insert(cust).values(**values, created_at=tx.now, updated_at=tx.now, row_version=1).returning(cust.c.id)
        ).scalar_one()
    )
    if body.code is None:
        tx.conn.execute(update(cust).where(cust.c.id == customer_id).values(code=customer_code(customer_id)))
    tx.record_change("customer", customer_id, "created")
    return customer_id


def update_customer(tx: Tx, customer_id: int, patch: bodies.CustomerPatch, expected_version: int | None) -> None:
    """Change the given fields. With `expected_version` (If-Match), refuse (412) if someone changed it since."""
    row = tx.conn.execute(select(cust).where(cust.c.id == customer_id)).first()
    if row is None:
        raise Problem.not_found("customer", customer_id)
    if expected_version is not None and expected_version != row.row_version:
        raise Problem(
            412,
            "row_version_mismatch",
            f"customer {customer_id} is at row_version {row.row_version}, "
            f"not {expected_version}; read it again and retry",
            row_version=row.row_version,
        )
    values = patch.model_dump(exclude_unset=True)
    _check_unique(tx.conn, values, customer_id)
    if all(row._mapping[k] == v for k, v in values.items()):
        return  # nothing changes: keep updated_at, so pollers do not see a no-op
    tx.conn.execute(
        update(cust)
        .where(cust.c.id == customer_id)
        .values(**values, updated_at=tx.now, row_version=cust.c.row_version + 1)
    )
    tx.record_change("customer", customer_id, "updated")


def upsert_customer(tx: Tx, key: str, value: str, body: bodies.CustomerIn) -> tuple[int, bool]:
    """Create or update the customer whose `key` (code or tax_id) is `value`; returns (id, is_created)."""
    if getattr(body, key) not in (None, value):
        raise Problem.invalid(f"#/{key}", f"differs from the {key} in the path ({value!r})")
    body = body.model_copy(update={key: value})
    existing = tx.conn.execute(select(cust.c.id).where(cust.c[key] == value)).scalar()
    if existing is None:
        return create_customer(tx, body), True
    patch = bodies.CustomerPatch.model_validate(body.model_dump(exclude_unset=True, exclude={"code"}))
    update_customer(tx, int(existing), patch, None)
    return int(existing), False


def deactivate_customer(tx: Tx, customer_id: int) -> None:
    """Customers are never deleted (orders refer to them); they become inactive and take no new orders."""
    update_customer(tx, customer_id, bodies.CustomerPatch(active=False), None)


def get_customer(conn: Connection, customer_id: int) -> bodies.Customer:
    row = conn.execute(select(cust).where(cust.c.id == customer_id)).first()
    if row is None:
        raise Problem.not_found("customer", customer_id)
    return bodies.Customer.model_validate(row, from_attributes=True)


def list_customers(
    conn: Connection,
    request: PageRequest,
    *,
    code: str | None = None,
    tax_id: str | None = None,
) -> tuple[list[bodies.Customer], Page]:
    query = select(cust)
    filters: list[ColumnElement[bool]] = []
    if code is not None:
        filters.append(cust.c.code == code)
    if tax_id is not None:
        filters.append(cust.c.tax_id == tax_id)
    page = fetch_page(conn, query.where(*filters), cust.c.updated_at, cust.c.id, request)
    return [bodies.Customer.model_validate(r, from_attributes=True) for r in page.rows], page
