"""Purchase orders (采购订单): one per approved purchase request, created idempotently by `request_no`."""

from __future__ import annotations

from sqlalchemy import Connection, insert, select

from seamflow_erp import bodies
from seamflow_erp.database import Tx
from seamflow_erp.numbering import next_document_no
from seamflow_erp.problems import Problem
from seamflow_erp.schema import purchase_orders as po

__all__ = ["create_purchase_order", "get_purchase_order", "list_purchase_orders"]


def create_purchase_order(tx: Tx, body: bodies.PurchaseOrderIn) -> tuple[int, bool]:
    """Create an open purchase order; (id, is_created). A known request_no returns that order.

    Raises:
        Problem: 409 if request_no names an order with another amount or supplier.
    """
    existing = tx.conn.execute(select(po).where(po.c.request_no == body.request_no)).first()
    if existing is not None:
        if existing.amount != body.amount or existing.supplier != body.supplier:
            raise Problem(
                409,
                "request_no_conflict",
                f"purchase order {existing.po_no} already has request_no {body.request_no!r} "
                "with a different amount or supplier",
                purchase_order_id=existing.id,
            )
        return int(existing.id), False
    po_no = next_document_no(tx.conn, po, po.c.po_no, "PO", tx.now)
    values = body.model_dump() | {"po_no": po_no, "created_at": tx.now}
    new_id = tx.conn.execute(insert(po).values(**values).returning(po.c.id)).scalar_one()
    return int(new_id), True


def get_purchase_order(conn: Connection, order_id: int) -> bodies.PurchaseOrder:
    """The purchase order `order_id`.

    Raises:
        Problem: 404 when there is none.
    """
    row = conn.execute(select(po).where(po.c.id == order_id)).first()
    if row is None:
        raise Problem(404, "not_found", f"no purchase order {order_id}")
    return bodies.PurchaseOrder.model_validate(row._asdict())


def list_purchase_orders(conn: Connection, request_no: str | None) -> list[bodies.PurchaseOrder]:
    """Every purchase order, oldest first, or the one of `request_no`."""
    query = select(po).order_by(po.c.id)
    if request_no is not None:
        query = query.where(po.c.request_no == request_no)
    return [bodies.PurchaseOrder.model_validate(r._asdict()) for r in conn.execute(query)]
