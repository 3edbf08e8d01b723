"""Sales orders: created pending_review (idempotently by external_ref), then approved → shipped, or cancelled.

```
pending_review ──approve──▶ approved ──ship──▶ shipped
      └───────cancel────────────┴──cancel──▶ cancelled        (a shipped order cannot be cancelled: 409)
```
Repeating the transition an order already made (approve an approved order, ship again with the
same tracking number, cancel a cancelled order) changes nothing and succeeds, so a retry is safe.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.engine import Connection

from seamflow_erp import bodies, schema
from seamflow_erp.database import Tx
from seamflow_erp.money import from_cents, to_cents
from seamflow_erp.numbering import next_document_no
from seamflow_erp.paging import Page, PageRequest, fetch_page
from seamflow_erp.problems import Problem

__all__ = [
    "approve_order",
    "cancel_order",
    "create_order",
    "get_order",
    "list_orders",
    "ship_order",
]

so, lines, cust = schema.sales_orders, schema.sales_order_lines, schema.customers


def _resolve_customer(conn: Connection, body: bodies.OrderIn) -> int:
    if (body.customer_id is None) == (body.customer_code is None):
        raise Problem.invalid("#/customer_id", "give exactly one of customer_id and customer_code")
    where = cust.c.id == body.customer_id if body.customer_id is not None else cust.c.code == body.customer_code
    pointer = "#/customer_id" if body.customer_id is not None else "#/customer_code"
    row = conn.execute(select(cust.c.id, cust.c.active).where(where)).first()
    if row is None:
        raise Problem.invalid(pointer, "no such customer")
    if not row.active:
        raise Problem(409, "customer_inactive", f"customer {row.id} is inactive; reactivate it before ordering")
    return int(row.id)


def _priced_lines(conn: Connection, body: bodies.OrderIn) -> list[dict[str, Any]]:
    skus = {line.sku for line in body.lines}
    prices = {r.sku: r for r in conn.execute(select(schema.products).where(schema.products.c.sku.in_(skus)))}
    priced = []
    for i, line in enumerate(body.lines):
        product = prices.get(line.sku)
        if product is None or not product.active:
            raise Problem.invalid(f"#/lines/{i}/sku", f"no active product with sku {line.sku!r}")
        unit_price = line.unit_price if line.unit_price is not None else product.price
        amount_cents = line.qty * to_cents(unit_price)
        priced.append(
            {"line_no": i + 1, "sku": line.sku, "qty": line.qty, "unit_price": unit_price, "amount_cents": amount_cents}
        )
    return priced


def _same_order(conn: Connection, existing: Row[Any], customer_id: int, body: bodies.OrderIn) -> list[str]:
    """What differs between a repeated create and the order it already made (empty: the same order)."""
    differs = []
    if existing.customer_id != customer_id:
        differs.append("customer")
    stored = conn.execute(select(lines).where(lines.c.order_id == existing.id).order_by(lines.c.line_no)).all()
    if [(r.sku, r.qty) for r in stored] != [(li.sku, li.qty) for li in body.lines]:
        differs.append("lines")
    elif any(
        li.unit_price is not None and li.unit_price != r.unit_price for r, li in zip(stored, body.lines, strict=True)
    ):
        differs.append("unit_price")
    return differs


def create_order(tx: Tx, body: bodies.OrderIn) -> tuple[int, bool]:
    """Create a pending_review order; returns (order id, is_created). A known external_ref returns that order.

    Raises:
        Problem: 422 for an unknown customer or sku; 409 if external_ref names an order with other content.
    """
    customer_id = _resolve_customer(tx.conn, body)
    if body.external_ref is not None:
        existing = tx.conn.execute(select(so).where(so.c.external_ref == body.external_ref)).first()
        if existing is not None:
            differs = _same_order(tx.conn, existing, customer_id, body)
            if differs:
                raise Problem(
                    409,
                    "external_ref_conflict",
                    f"order {existing.order_no} already has external_ref {body.external_ref!r} "
                    f"with a different {', '.join(differs)}",
                    order_id=existing.id,
                )
            return int(existing.id), False
    priced = _priced_lines(tx.conn, body)
    total = from_cents(sum(line["amount_cents"] for line in priced))
    for line in priced:
        line["amount"] = from_cents(line.pop("amount_cents"))
    order_no = next_document_no(tx.conn, so, so.c.order_no, "SO", tx.now)
    order_id = tx.conn.execute(
        insert(so)
        .values(
            order_no=order_no,
            customer_id=customer_id,
            external_ref=body.external_ref,
            status="pending_review",
            total=total,
            currency=body.currency,
            note=body.note,
            created_at=tx.now,
            updated_at=tx.now,
        )
        .returning(so.c.id)
    ).scalar_one()
    tx.conn.execute(insert(lines), [{**line, "order_id": order_id, "updated_at": tx.now} for line in priced])
    tx.record_change("sales_order", order_id, "created")
    return int(order_id), True


def _locked_order(tx: Tx, order_id: int) -> Row[Any]:
    row = tx.conn.execute(select(so).where(so.c.id == order_id)).first()
    if row is None:
        raise Problem.not_found("sales order", order_id)
    return row


def _refuse(row: Row[Any], action: str, why: str = "") -> Problem:
    return Problem(
        409,
        "invalid_transition",
        f"sales order {row.order_no} is {row.status}; cannot {action} it{why}",
        current_status=row.status,
    )


def _move(tx: Tx, order_id: int, op: str, values: dict[str, Any]) -> None:
    tx.conn.execute(update(so).where(so.c.id == order_id).values(**values, updated_at=tx.now))
    tx.record_change("sales_order", order_id, op)


def _unpaid_exposure(conn: Connection, customer_id: int) -> Decimal:
    """What the customer owes on approved and shipped orders (their credit in use)."""
    open_orders = conn.execute(
        select(so.c.id, so.c.total).where(so.c.customer_id == customer_id, so.c.status.in_(("approved", "shipped")))
    ).all()
    paid = _sums(conn, schema.payments, [r.id for r in open_orders])
    return from_cents(sum(max(0, to_cents(r.total) - to_cents(paid[r.id])) for r in open_orders))


def approve_order(tx: Tx, order_id: int) -> None:
    """pending_review → approved, if the customer's credit limit allows. Approving an approved order is a no-op."""
    row = _locked_order(tx, order_id)
    if row.status == "approved":
        return
    if row.status != "pending_review":
        raise _refuse(row, "approve")
    limit = tx.conn.execute(select(cust.c.credit_limit).where(cust.c.id == row.customer_id)).scalar_one()
    if limit is not None:
        exposure = _unpaid_exposure(tx.conn, row.customer_id) + row.total
        if exposure > limit:
            raise Problem(
                409,
                "credit_limit_exceeded",
                f"approving {row.order_no} would put the customer's unpaid orders at {exposure} CNY, "
                f"over the credit limit of {limit} CNY",
            )
    _move(tx, order_id, "approved", {"status": "approved", "approved_at": tx.now})


def ship_order(tx: Tx, order_id: int, carrier: str, tracking_no: str) -> None:
    """approved → shipped with carrier and tracking number. Shipping again with the same ones is a no-op."""
    row = _locked_order(tx, order_id)
    if row.status == "shipped" and (row.carrier, row.tracking_no) == (carrier, tracking_no):
        return
    if row.status != "approved":
        raise _refuse(
            row,
            "ship",
            " (only approved orders ship)"
            if row.status != "shipped"
            else f" again with another tracking number (it went with {row.carrier} {row.tracking_no})",
        )
    _move(
        tx,
        order_id,
        "shipped",
        {"status": "shipped", "shipped_at": tx.now, "carrier": carrier, "tracking_no": tracking_no},
    )


def cancel_order(tx: Tx, order_id: int, reason: str | None) -> None:
    """pending_review or approved → cancelled. A shipped order cannot be cancelled (409)."""
    row = _locked_order(tx, order_id)
    if row.status == "cancelled":
        return
    if row.status == "shipped":
        raise _refuse(row, "cancel", "; goods have left the warehouse, record a return instead")
    _move(tx, order_id, "cancelled", {"status": "cancelled", "cancelled_at": tx.now, "cancel_reason": reason})


def _sums(conn: Connection, table: Any, order_ids: Sequence[int]) -> dict[int, Decimal]:
    """Sum of `amount` per order, added up in cents in Python (SQLite would sum floats)."""
    cents: dict[int, int] = defaultdict(int)
    if order_ids:
        for r in conn.execute(select(table.c.order_id, table.c.amount).where(table.c.order_id.in_(order_ids))):
            cents[r.order_id] += to_cents(r.amount)
    return {oid: from_cents(cents[oid]) for oid in order_ids}


def _render(conn: Connection, rows: Sequence[Row[Any]]) -> list[bodies.SalesOrder]:
    ids = [r.id for r in rows]
    by_order: dict[int, list[bodies.OrderLine]] = defaultdict(list)
    if ids:
        for line in conn.execute(select(lines).where(lines.c.order_id.in_(ids)).order_by(lines.c.line_no)):
            by_order[line.order_id].append(bodies.OrderLine.model_validate(line, from_attributes=True))
    invoiced, paid = _sums(conn, schema.invoices, ids), _sums(conn, schema.payments, ids)
    rendered = []
    for r in rows:
        status: bodies.PaymentStatus = (
            "unpaid" if paid[r.id] == 0 else "paid" if paid[r.id] >= r.total else "partially_paid"
        )
        rendered.append(
            bodies.SalesOrder(
                **r._mapping,
                lines=by_order[r.id],
                invoiced_total=invoiced[r.id],
                paid_total=paid[r.id],
                payment_status=status,
            )
        )
    return rendered


_ORDER_COLUMNS = select(so, cust.c.code.label("customer_code")).join(cust, cust.c.id == so.c.customer_id)


def get_order(conn: Connection, order_id: int) -> bodies.SalesOrder:
    """The order with its lines, invoiced and paid totals. Raises Problem (404) if it does not exist."""
    row = conn.execute(_ORDER_COLUMNS.where(so.c.id == order_id)).first()
    if row is None:
        raise Problem.not_found("sales order", order_id)
    return _render(conn, [row])[0]


def list_orders(
    conn: Connection,
    request: PageRequest,
    *,
    status: str | None = None,
    external_ref: str | None = None,
    customer_id: int | None = None,
) -> tuple[list[bodies.SalesOrder], Page]:
    """One page of orders ordered by (updated_at, id), filtered by status, external_ref and customer."""
    query = _ORDER_COLUMNS
    if status is not None:
        query = query.where(so.c.status == status)
    if external_ref is not None:
        query = query.where(so.c.external_ref == external_ref)
    if customer_id is not None:
        query = query.where(so.c.customer_id == customer_id)
    page = fetch_page(conn, query, so.c.updated_at, so.c.id, request)
    return _render(conn, page.rows), page
