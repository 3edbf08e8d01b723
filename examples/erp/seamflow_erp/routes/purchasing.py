"""Routes for purchase orders: create (idempotent by request_no), read, list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from seamflow_erp import bodies, purchasing
from seamflow_erp.database import Database
from seamflow_erp.routes.deps import db_of

__all__ = ["router"]

router = APIRouter(tags=["purchase orders"])
Db = Annotated[Database, Depends(db_of)]


@router.post(
    "/purchase-orders",
    operation_id="create_purchase_order",
    status_code=201,
    responses={200: {"model": bodies.PurchaseOrder, "description": "A purchase order for this request_no exists"}},
)
def create_purchase_order(body: bodies.PurchaseOrderIn, db: Db, response: Response) -> bodies.PurchaseOrder:
    """Create an open purchase order for an approved request; a repeated request_no returns it (200)."""
    with db.write() as tx:
        order_id, is_created = purchasing.create_purchase_order(tx, body)
    response.status_code = 201 if is_created else 200
    response.headers["Location"] = f"/purchase-orders/{order_id}"
    with db.read() as conn:
        return purchasing.get_purchase_order(conn, order_id)


@router.get("/purchase-orders", operation_id="list_purchase_orders")
def list_purchase_orders(db: Db, request_no: str | None = None) -> list[bodies.PurchaseOrder]:
    """Purchase orders, oldest first; `request_no` finds the one of a request."""
    with db.read() as conn:
        return purchasing.list_purchase_orders(conn, request_no)


@router.get("/purchase-orders/{order_id}", operation_id="get_purchase_order")
def get_purchase_order(order_id: int, db: Db) -> bodies.PurchaseOrder:
    """One purchase order."""
    with db.read() as conn:
        return purchasing.get_purchase_order(conn, order_id)
