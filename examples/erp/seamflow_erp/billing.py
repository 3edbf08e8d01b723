"""Invoices issued for sales orders, and payments received for them (idempotent by Idempotency-Key)."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from seamflow_erp import bodies, schema
from seamflow_erp.database import Tx
from seamflow_erp.money import from_cents, to_cents
from seamflow_erp.numbering import next_document_no
from seamflow_erp.paging import Page, PageRequest, fetch_page
from seamflow_erp.problems import Problem

__all__ = ["get_invoice", "get_payment", "issue_invoice", "list_invoices", "list_payments", "record_payment"]

so, inv, pay = schema.sales_orders, schema.invoices, schema.payments


def _total(conn: Connection, table: object, order_id: int) -> Decimal:
    amounts = conn.execute(select(table.c.amount).where(table.c.order_id == order_id)).scalars()  # type: ignore[attr-defined]
    return from_cents(sum(to_cents(a) for a in amounts))


def issue_invoice(tx: Tx, order_id: int, amount: Decimal | None) -> int:
    """Invoice (part of) an approved or shipped order; by default everything not yet invoiced.

    Raises:
        Problem: 404 unknown order; 409 if the order is not approved/shipped or the amount exceeds what is left.
    """
    order = tx.conn.execute(select(so).where(so.c.id == order_id)).first()
    if order is None:
        raise Problem.not_found("sales order", order_id)
    if order.status not in ("approved", "shipped"):
        raise Problem(
            409,
            "invalid_transition",
            f"sales order {order.order_no} is {order.status}; only approved or shipped orders are invoiced",
            current_status=order.status,
        )
    left = order.total - _total(tx.conn, inv, order_id)
    amount = left if amount is None else amount
    if amount <= 0 or amount > left:
        raise Problem(
            409,
            "over_invoiced",
            f"sales order {order.order_no} has {left} CNY left to invoice; cannot invoice {amount} CNY",
        )
    invoice_no = next_document_no(tx.conn, inv, inv.c.invoice_no, "INV", tx.now)
    invoice_id = tx.conn.execute(
        insert(inv)
        .values(
            invoice_no=invoice_no,
            order_id=order_id,
            amount=amount,
            issued_at=tx.now,
            updated_at=tx.now,
        )
        .returning(inv.c.id)
    ).scalar_one()
    tx.record_change("invoice", invoice_id, "created")
    return int(invoice_id)


def _fingerprint(body: bodies.PaymentIn) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _payment_order(conn: Connection, body: bodies.PaymentIn) -> int:
    if body.invoice_id is None:
        if body.order_id is None:
            raise Problem.invalid("#/order_id", "give order_id or invoice_id")
        return body.order_id
    invoice_order = conn.execute(select(inv.c.order_id).where(inv.c.id == body.invoice_id)).scalar()
    if invoice_order is None:
        raise Problem.invalid("#/invoice_id", f"no invoice with id {body.invoice_id}")
    if body.order_id is not None and body.order_id != invoice_order:
        raise Problem.invalid("#/order_id", f"invoice {body.invoice_id} belongs to order {invoice_order}")
    return int(invoice_order)


def record_payment(tx: Tx, body: bodies.PaymentIn, idempotency_key: str | None) -> tuple[int, bool]:
    """Record a received payment; returns (payment id, is_created).

    The same Idempotency-Key with the same body returns the first payment; with another body it is
    refused (422), since the key names one payment. A payment over what is still owed is refused (409).
    """
    fingerprint = _fingerprint(body)
    if idempotency_key is not None:
        seen = tx.conn.execute(
            select(pay.c.id, pay.c.request_hash).where(pay.c.idempotency_key == idempotency_key)
        ).first()
        if seen is not None:
            if seen.request_hash != fingerprint:
                raise Problem(
                    422,
                    "idempotency_key_reused",
                    f"Idempotency-Key was already used for payment {seen.id} with a different body",
                    payment_id=seen.id,
                )
            return int(seen.id), False
    order_id = _payment_order(tx.conn, body)
    order = tx.conn.execute(select(so).where(so.c.id == order_id)).first()
    if order is None:
        raise Problem.invalid("#/order_id", f"no sales order with id {order_id}")
    if order.status == "cancelled":
        raise Problem(409, "order_cancelled", f"sales order {order.order_no} is cancelled; it takes no payments")
    owed = order.total - _total(tx.conn, pay, order_id)
    if body.amount > owed:
        raise Problem(
            409,
            "overpayment",
            f"sales order {order.order_no} has {owed} CNY outstanding; a payment of {body.amount} CNY would overpay it",
        )
    payment_id = tx.conn.execute(
        insert(pay)
        .values(
            order_id=order_id,
            invoice_id=body.invoice_id,
            amount=body.amount,
            method=body.method,
            received_at=body.received_at or tx.now,
            reference=body.reference,
            idempotency_key=idempotency_key,
            request_hash=fingerprint,
            created_at=tx.now,
            updated_at=tx.now,
        )
        .returning(pay.c.id)
    ).scalar_one()
    tx.record_change("payment", payment_id, "created")
    # The order's payment status changed too: bump it so order pollers see it.
    tx.conn.execute(update(so).where(so.c.id == order_id).values(updated_at=tx.now))
    tx.record_change("sales_order", order_id, "paid" if body.amount == owed else "partially_paid")
    return int(payment_id), True


def get_invoice(conn: Connection, invoice_id: int) -> bodies.Invoice:
    row = conn.execute(select(inv).where(inv.c.id == invoice_id)).first()
    if row is None:
        raise Problem.not_found("invoice", invoice_id)
    return bodies.Invoice.model_validate(row, from_attributes=True)


def get_payment(conn: Connection, payment_id: int) -> bodies.Payment:
    row = conn.execute(select(pay).where(pay.c.id == payment_id)).first()
    if row is None:
        raise Problem.not_found("payment", payment_id)
    return bodies.Payment.model_validate(row, from_attributes=True)


def list_invoices(conn: Connection, request: PageRequest, order_id: int | None) -> tuple[list[bodies.Invoice], Page]:
    query = select(inv) if order_id is None else select(inv).where(inv.c.order_id == order_id)
    page = fetch_page(conn, query, inv.c.updated_at, inv.c.id, request)
    return [bodies.Invoice.model_validate(r, from_attributes=True) for r in page.rows], page


def list_payments(conn: Connection, request: PageRequest, order_id: int | None) -> tuple[list[bodies.Payment], Page]:
    query = select(pay) if order_id is None else select(pay).where(pay.c.order_id == order_id)
    page = fetch_page(conn, query, pay.c.updated_at, pay.c.id, request)
    return [bodies.Payment.model_validate(r, from_attributes=True) for r in page.rows], page
