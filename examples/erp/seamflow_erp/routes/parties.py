"""Routes for customers and products."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Response

from seamflow_erp import bodies, catalog, customers
from seamflow_erp.database import Database
from seamflow_erp.identifiers import is_unified_credit_code
from seamflow_erp.paging import PageRequest
from seamflow_erp.problems import FieldProblem, Problem
from seamflow_erp.routes.deps import db_of, page_request

__all__ = ["router"]

router = APIRouter()
Db = Annotated[Database, Depends(db_of)]
Paging = Annotated[PageRequest, Depends(page_request)]


def _customer_response(db: Database, customer_id: int, response: Response, status: int) -> bodies.Customer:
    with db.read() as conn:
        customer = customers.get_customer(conn, customer_id)
    response.status_code = status
    response.headers["ETag"] = f'"{customer.row_version}"'
    response.headers["Location"] = f"/customers/{customer_id}"
    return customer


def _if_match(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip().removeprefix("W/").strip('"'))
    except ValueError:
        raise Problem(
            422,
            "invalid_input",
            'If-Match: expected the customer\'s ETag, like "3"',
            errors=[FieldProblem(header="If-Match", detail='expected an ETag like "3"')],
        ) from None


@router.post("/customers", operation_id="create_customer", status_code=201, tags=["customers"])
def create_customer(body: bodies.CustomerIn, db: Db, response: Response) -> bodies.Customer:
    with db.write() as tx:
        customer_id = customers.create_customer(tx, body)
    return _customer_response(db, customer_id, response, 201)


@router.get("/customers", operation_id="list_customers", tags=["customers"])
def list_customers(db: Db, paging: Paging, code: str | None = None, tax_id: str | None = None) -> bodies.CustomerPage:
    with db.read() as conn:
        items, page = customers.list_customers(conn, paging, code=code, tax_id=tax_id)
    return bodies.CustomerPage(items=items, next_cursor=page.next_cursor, has_more=page.has_more)


@router.get("/customers/{customer_id}", operation_id="get_customer", tags=["customers"])
def get_customer(customer_id: int, db: Db, response: Response) -> bodies.Customer:
    return _customer_response(db, customer_id, response, 200)


@router.patch("/customers/{customer_id}", operation_id="update_customer", tags=["customers"])
def update_customer(
    customer_id: int,
    body: bodies.CustomerPatch,
    db: Db,
    response: Response,
    if_match: Annotated[str | None, Header(description="ETag from a GET: refuse (412) if changed since")] = None,
) -> bodies.Customer:
    with db.write() as tx:
        customers.update_customer(tx, customer_id, body, _if_match(if_match))
    return _customer_response(db, customer_id, response, 200)


@router.delete("/customers/{customer_id}", operation_id="deactivate_customer", tags=["customers"])
def deactivate_customer(customer_id: int, db: Db, response: Response) -> bodies.Customer:
    """Customers are not deleted (orders refer to them): they become inactive."""
    with db.write() as tx:
        customers.deactivate_customer(tx, customer_id)
    return _customer_response(db, customer_id, response, 200)


@router.put(
    "/customers/by-code/{code}",
    operation_id="upsert_customer_by_code",
    tags=["customers"],
    responses={201: {"description": "Created"}},
)
def upsert_customer_by_code(
    code: Annotated[str, Path(pattern=r"^[A-Z0-9][A-Z0-9-]{0,15}$")],
    body: bodies.CustomerIn,
    db: Db,
    response: Response,
) -> bodies.Customer:
    """Create the customer with this code, or update it: 201 when created, 200 when updated."""
    with db.write() as tx:
        customer_id, is_created = customers.upsert_customer(tx, "code", code, body)
    return _customer_response(db, customer_id, response, 201 if is_created else 200)


@router.put(
    "/customers/by-tax-id/{tax_id}",
    operation_id="upsert_customer_by_tax_id",
    tags=["customers"],
    responses={201: {"description": "Created"}},
)
def upsert_customer_by_tax_id(tax_id: str, body: bodies.CustomerIn, db: Db, response: Response) -> bodies.Customer:
    """Create the customer with this unified social credit code, or update it: 201 when created, 200 when updated."""
    if not is_unified_credit_code(tax_id):
        raise Problem(
            422,
            "invalid_input",
            "tax_id: expected an 18-character unified social credit code",
            errors=[FieldProblem(parameter="tax_id", detail="not a valid unified social credit code")],
        )
    with db.write() as tx:
        customer_id, is_created = customers.upsert_customer(tx, "tax_id", tax_id, body)
    return _customer_response(db, customer_id, response, 201 if is_created else 200)


@router.get("/products", operation_id="list_products", tags=["products"])
def list_products(db: Db, paging: Paging) -> bodies.ProductPage:
    with db.read() as conn:
        items, page = catalog.list_products(conn, paging)
    return bodies.ProductPage(items=items, next_cursor=page.next_cursor, has_more=page.has_more)


@router.get("/products/{sku}", operation_id="get_product", tags=["products"])
def get_product(sku: str, db: Db) -> bodies.Product:
    with db.read() as conn:
        return catalog.get_product(conn, sku)
