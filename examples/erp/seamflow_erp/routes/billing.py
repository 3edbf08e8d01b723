"""Routes for invoices, payments (Idempotency-Key honoured) and the `changes` feed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response

from seamflow_erp import billing, bodies, catalog
from seamflow_erp.database import Database
from seamflow_erp.paging import PageRequest
from seamflow_erp.routes.deps import db_of, page_request

__all__ = ["router"]

router = APIRouter()
Db = Annotated[Database, Depends(db_of)]
Paging = Annotated[PageRequest, Depends(page_request)]


@router.post("/sales-orders/{order_id}/invoices", operation_id="issue_invoice", status_code=201, tags=["invoices"])
def issue_invoice(order_id: int, db: Db, response: Response, body: bodies.InvoiceIn | None = None) -> bodies.Invoice:
    """Invoice an approved or shipped order; by default the whole amount not yet invoiced."""
    with db.write() as tx:
        invoice_id = billing.issue_invoice(tx, order_id, body.amount if body else None)
    response.headers["Location"] = f"/invoices/{invoice_id}"
    with db.read() as conn:
        return billing.get_invoice(conn, invoice_id)


@router.get("/invoices", operation_id="list_invoices", tags=["invoices"])
def list_invoices(db: Db, paging: Paging, order_id: int | None = None) -> bodies.InvoicePage:
    with db.read() as conn:
        items, page = billing.list_invoices(conn, paging, order_id)
    return bodies.InvoicePage(items=items, next_cursor=page.next_cursor, has_more=page.has_more)


@router.get("/invoices/{invoice_id}", operation_id="get_invoice", tags=["invoices"])
def get_invoice(invoice_id: int, db: Db) -> bodies.Invoice:
    with db.read() as conn:
        return billing.get_invoice(conn, invoice_id)


@router.post(
    "/payments",
    operation_id="record_payment",
    status_code=201,
    tags=["payments"],
    responses={200: {"model": bodies.Payment, "description": "Replay: this Idempotency-Key was seen"}},
)
def record_payment(
    body: bodies.PaymentIn,
    db: Db,
    response: Response,
    idempotency_key: Annotated[
        str | None, Header(max_length=255, description="the same key records one payment")
    ] = None,
) -> bodies.Payment:
    """Record a received payment for an order or invoice. A repeated Idempotency-Key returns the first payment."""
    with db.write() as tx:
        payment_id, is_created = billing.record_payment(tx, body, idempotency_key)
    response.status_code = 201 if is_created else 200
    response.headers["Location"] = f"/payments/{payment_id}"
    if not is_created:
        response.headers["Idempotent-Replayed"] = "true"
    with db.read() as conn:
        return billing.get_payment(conn, payment_id)


@router.get("/payments", operation_id="list_payments", tags=["payments"])
def list_payments(db: Db, paging: Paging, order_id: int | None = None) -> bodies.PaymentPage:
    with db.read() as conn:
        items, page = billing.list_payments(conn, paging, order_id)
    return bodies.PaymentPage(items=items, next_cursor=page.next_cursor, has_more=page.has_more)


@router.get("/payments/{payment_id}", operation_id="get_payment", tags=["payments"])
def get_payment(payment_id: int, db: Db) -> bodies.Payment:
    with db.read() as conn:
        return billing.get_payment(conn, payment_id)


@router.get("/changes", operation_id="list_changes", tags=["changes"])
def list_changes(
    db: Db, after_id: Annotated[int, Query(ge=0)] = 0, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> bodies.ChangePage:
    """The changelog after `after_id`, oldest first: follow `next_after_id` to see every change exactly once."""
    with db.read() as conn:
        return catalog.list_changes(conn, after_id, limit)
