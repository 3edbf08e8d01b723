"""Routes for sales orders: create (idempotent by external_ref), read, list, approve, ship, cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from seamflow_erp import bodies, orders
from seamflow_erp.database import Database
from seamflow_erp.paging import PageRequest
from seamflow_erp.routes.deps import db_of, page_request

__all__ = ["router"]

router = APIRouter(tags=["sales orders"])
Db = Annotated[Database, Depends(db_of)]
Paging = Annotated[PageRequest, Depends(page_request)]


def _order(db: Database, order_id: int) -> bodies.SalesOrder:
    with db.read() as conn:
        return orders.get_order(conn, order_id)


@router.post(
    "/sales-orders",
    operation_id="create_sales_order",
    status_code=201,
    responses={200: {"model": bodies.SalesOrder, "description": "An order with this external_ref exists"}},
)
def create_sales_order(body: bodies.OrderIn, db: Db, response: Response) -> bodies.SalesOrder:
    """Create a pending_review order. A repeated external_ref returns the existing order (200), so retries are safe."""
    with db.write() as tx:
        order_id, is_created = orders.create_order(tx, body)
    response.status_code = 201 if is_created else 200
    response.headers["Location"] = f"/sales-orders/{order_id}"
    return _order(db, order_id)


@router.get("/sales-orders", operation_id="list_sales_orders")
def list_sales_orders(
    db: Db,
    paging: Paging,
    status: bodies.OrderStatus | None = None,
    external_ref: str | None = None,
    customer_id: int | None = None,
) -> bodies.SalesOrderPage:
    """Orders ordered by (updated_at, id); follow `next_cursor` to page or to poll for changes."""
    with db.read() as conn:
        items, page = orders.list_orders(
            conn, paging, status=status, external_ref=external_ref, customer_id=customer_id
        )
    return bodies.SalesOrderPage(items=items, next_cursor=page.next_cursor, has_more=page.has_more)


@router.get("/sales-orders/{order_id}", operation_id="get_sales_order")
def get_sales_order(order_id: int, db: Db) -> bodies.SalesOrder:
    return _order(db, order_id)


@router.post("/sales-orders/{order_id}/approve", operation_id="approve_sales_order")
def approve_sales_order(order_id: int, db: Db) -> bodies.SalesOrder:
    """pending_review → approved (409 from any other status, or over the customer's credit limit)."""
    with db.write() as tx:
        orders.approve_order(tx, order_id)
    return _order(db, order_id)


@router.post("/sales-orders/{order_id}/ship", operation_id="ship_sales_order")
def ship_sales_order(order_id: int, body: bodies.ShipRequest, db: Db) -> bodies.SalesOrder:
    """approved → shipped, with carrier and tracking number."""
    with db.write() as tx:
        orders.ship_order(tx, order_id, body.carrier, body.tracking_no)
    return _order(db, order_id)


@router.post("/sales-orders/{order_id}/cancel", operation_id="cancel_sales_order")
def cancel_sales_order(order_id: int, db: Db, body: bodies.CancelRequest | None = None) -> bodies.SalesOrder:
    """pending_review or approved → cancelled; 409 once shipped."""
    with db.write() as tx:
        orders.cancel_order(tx, order_id, body.reason if body else None)
    return _order(db, order_id)
