"""Customers (客户): the companies the sales team sells to, and their contact persons."""

from __future__ import annotations

import sqlite3
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from seamflow_crm.database import Transaction
from seamflow_crm.idempotency import Answer, ChangeDep
from seamflow_crm.outbox import record_event
from seamflow_crm.problems import Conflict, InvalidInput, problem_responses
from seamflow_crm.records import PageDep, check_version, fetch, update_row
from seamflow_crm.schemas import (
    Contact,
    ContactCreate,
    ContactList,
    ContactUpdate,
    Customer,
    CustomerCreate,
    CustomerPage,
    CustomerStatus,
    CustomerUpdate,
)

__all__ = ["customer_json", "router"]

router = APIRouter(tags=["customers"])
_REQUIRED = {"name", "credit_limit", "status", "is_primary"}  # PATCH may not set these to null


def customer_json(row: sqlite3.Row) -> dict[str, object]:
    """A customer row as the API shows it."""
    return Customer.model_validate(dict(row)).model_dump(mode="json")


def contact_json(row: sqlite3.Row) -> dict[str, object]:
    """A contact row as the API shows it."""
    return Contact.model_validate(dict(row)).model_dump(mode="json")


@router.get("/customers", response_model=CustomerPage)
def list_customers(
    request: Request,
    page: PageDep,
    status: CustomerStatus | None = None,
    q: str | None = None,
) -> dict[str, object]:
    """List customers ordered by (updated_at, id); filter by status, a name/phone search or `updated_since`."""
    where, params = "updated_at >= ?", list[object]([page.since()])
    if status is not None:
        where, params = where + " AND status = ?", [*params, status.value]
    if q:
        where, params = where + " AND (name LIKE ? OR phone LIKE ?)", [*params, f"%{q}%", f"%{q}%"]
    with request.app.state.db.read() as conn:
        total = conn.execute(f"SELECT count(*) FROM customers WHERE {where}", params).fetchone()[0]  # noqa: S608
        rows = conn.execute(
            f"SELECT * FROM customers WHERE {where} ORDER BY updated_at, id LIMIT ? OFFSET ?",  # noqa: S608
            [*params, page.per_page, page.offset],
        ).fetchall()
    items = [customer_json(row) for row in rows]
    return {"items": items, "page": page.page, "per_page": page.per_page, "total": total}


_EXISTING = {200: {"model": Customer, "description": "A customer had this tax id already (if_tax_id_exists=return)"}}


@router.post(
    "/customers",
    status_code=201,
    response_model=Customer,
    responses={**_EXISTING, **problem_responses(401, 409, 422)},
)
def create_customer(
    body: CustomerCreate,
    change: ChangeDep,
    if_tax_id_exists: Annotated[
        Literal["refuse", "return"],
        Query(
            description="A customer already has this tax id: `refuse` (409) or `return` it unchanged (200), for"
            " integrations that link records by tax id and may create a customer the CRM already has"
        ),
    ] = "refuse",
) -> Response:
    """Create a customer; emits `customer.created`."""

    def make(tx: Transaction) -> Answer:
        values = body.model_dump(mode="json")
        if if_tax_id_exists == "return" and values.get("tax_id") is not None:
            row = tx.conn.execute("SELECT * FROM customers WHERE tax_id = ?", (values["tax_id"],)).fetchone()
            if row is not None:
                return Answer(200, customer_json(row))
        _check_unique_tax_id(tx, values.get("tax_id"), None)
        cursor = tx.conn.execute(
            "INSERT INTO customers (name, phone, email, tax_id, address, credit_limit, status, created_at, updated_at)"
            " VALUES (:name, :phone, :email, :tax_id, :address, :credit_limit, :status, :now, :now)",
            {**values, "now": tx.timestamp},
        )
        data = customer_json(fetch(tx.conn, "customers", cursor.lastrowid or 0))
        record_event(tx, "customer.created", data)
        return Answer(201, data, f"/customers/{data['id']}")

    return change.run(make, request_body=body.model_dump(mode="json"))


@router.get("/customers/{customer_id}", response_model=Customer, responses=problem_responses(401, 404))
def get_customer(customer_id: int, request: Request) -> JSONResponse:
    """One customer; its `ETag` is its version, for `If-Match` on PATCH."""
    with request.app.state.db.read() as conn:
        data = customer_json(fetch(conn, "customers", customer_id))
    return JSONResponse(data, headers={"ETag": f'"{data["version"]}"'})


@router.patch("/customers/{customer_id}", response_model=Customer, responses=problem_responses(401, 404, 409, 412, 422))
def update_customer(customer_id: int, body: CustomerUpdate, change: ChangeDep) -> Response:
    """Change a customer's fields; emits `customer.updated`. Send `If-Match` (or `version`) to avoid lost updates."""
    values = body.model_dump(mode="json", exclude_unset=True)
    version = values.pop("version", None)
    _refuse_nulls(values)

    def make(tx: Transaction) -> Answer:
        row = fetch(tx.conn, "customers", customer_id)
        check_version(row["version"], if_match=change.if_match, version=version)
        _check_unique_tax_id(tx, values.get("tax_id"), customer_id)
        changed = {column: value for column, value in values.items() if row[column] != value}
        if not changed:
            return Answer(200, customer_json(row))
        update_row(tx, "customers", customer_id, changed)
        data = customer_json(fetch(tx.conn, "customers", customer_id))
        is_deactivated = changed.get("status") == CustomerStatus.INACTIVE
        record_event(tx, "customer.deactivated" if is_deactivated else "customer.updated", data)
        return Answer(200, data)

    return change.run(make, request_body=body.model_dump(mode="json", exclude_unset=True))


@router.post("/customers/{customer_id}/deactivate", response_model=Customer, responses=problem_responses(401, 404, 412))
def deactivate_customer(customer_id: int, change: ChangeDep) -> Response:
    """Mark a customer inactive (no new contracts can be signed with it); emits `customer.deactivated`."""

    def make(tx: Transaction) -> Answer:
        row = fetch(tx.conn, "customers", customer_id)
        check_version(row["version"], if_match=change.if_match, version=None)
        if row["status"] == CustomerStatus.INACTIVE:
            return Answer(200, customer_json(row))
        update_row(tx, "customers", customer_id, {"status": CustomerStatus.INACTIVE.value})
        data = customer_json(fetch(tx.conn, "customers", customer_id))
        record_event(tx, "customer.deactivated", data)
        return Answer(200, data)

    return change.run(make)


@router.delete(
    "/customers/{customer_id}", status_code=204, response_class=Response, responses=problem_responses(401, 404, 409)
)
def delete_customer(customer_id: int, change: ChangeDep) -> Response:
    """Delete a customer that has no contracts or opportunities (else 409: deactivate it); emits `customer.deleted`."""

    def make(tx: Transaction) -> Answer:
        data = customer_json(fetch(tx.conn, "customers", customer_id))
        for table in ("contracts", "opportunities"):
            used = tx.conn.execute(f"SELECT count(*) FROM {table} WHERE customer_id = ?", (customer_id,))  # noqa: S608
            if used.fetchone()[0]:
                raise Conflict(f"customer {customer_id} has {table}; deactivate it instead of deleting it")
        tx.conn.execute("DELETE FROM customers WHERE id = ?", (customer_id,))
        record_event(tx, "customer.deleted", data)
        return Answer(204, None)

    return change.run(make)


@router.get("/customers/{customer_id}/contacts", response_model=ContactList, responses=problem_responses(401, 404))
def list_contacts(customer_id: int, request: Request) -> dict[str, object]:
    """The contact persons of a customer, primary contact first."""
    with request.app.state.db.read() as conn:
        fetch(conn, "customers", customer_id)
        rows = conn.execute(
            "SELECT * FROM contacts WHERE customer_id = ? ORDER BY is_primary DESC, id", (customer_id,)
        ).fetchall()
    return {"items": [contact_json(row) for row in rows]}


@router.post(
    "/customers/{customer_id}/contacts",
    status_code=201,
    response_model=Contact,
    responses=problem_responses(401, 404, 422),
)
def create_contact(customer_id: int, body: ContactCreate, change: ChangeDep) -> Response:
    """Add a contact person to a customer; emits `contact.created`."""

    def make(tx: Transaction) -> Answer:
        fetch(tx.conn, "customers", customer_id)
        if body.is_primary:
            _demote_primary(tx, customer_id)
        cursor = tx.conn.execute(
            "INSERT INTO contacts (customer_id, name, title, phone, email, is_primary, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (customer_id, body.name, body.title, body.phone, body.email, body.is_primary, tx.timestamp, tx.timestamp),
        )
        data = contact_json(fetch(tx.conn, "contacts", cursor.lastrowid or 0))
        record_event(tx, "contact.created", data)
        return Answer(201, data, f"/contacts/{data['id']}")

    return change.run(make, request_body=body.model_dump(mode="json"))


@router.get("/contacts/{contact_id}", response_model=Contact, responses=problem_responses(401, 404))
def get_contact(contact_id: int, request: Request) -> dict[str, object]:
    """One contact person."""
    with request.app.state.db.read() as conn:
        return contact_json(fetch(conn, "contacts", contact_id))


@router.patch("/contacts/{contact_id}", response_model=Contact, responses=problem_responses(401, 404, 412, 422))
def update_contact(contact_id: int, body: ContactUpdate, change: ChangeDep) -> Response:
    """Change a contact person; emits `contact.updated`."""
    values = body.model_dump(mode="json", exclude_unset=True)
    version = values.pop("version", None)
    _refuse_nulls(values)

    def make(tx: Transaction) -> Answer:
        row = fetch(tx.conn, "contacts", contact_id)
        check_version(row["version"], if_match=change.if_match, version=version)
        if values.get("is_primary"):
            _demote_primary(tx, row["customer_id"])
        update_row(tx, "contacts", contact_id, values)
        data = contact_json(fetch(tx.conn, "contacts", contact_id))
        record_event(tx, "contact.updated", data)
        return Answer(200, data)

    return change.run(make, request_body=body.model_dump(mode="json", exclude_unset=True))


@router.delete(
    "/contacts/{contact_id}", status_code=204, response_class=Response, responses=problem_responses(401, 404)
)
def delete_contact(contact_id: int, change: ChangeDep) -> Response:
    """Remove a contact person; emits `contact.deleted`."""

    def make(tx: Transaction) -> Answer:
        data = contact_json(fetch(tx.conn, "contacts", contact_id))
        tx.conn.execute("DELETE FROM contacts WHERE id = ?", (contact_id,))
        record_event(tx, "contact.deleted", data)
        return Answer(204, None)

    return change.run(make)


def _refuse_nulls(values: dict[str, object]) -> None:
    for column in sorted(_REQUIRED & values.keys()):
        if values[column] is None:
            raise InvalidInput.field(column, "may not be null; leave it out to keep the current value")


def _check_unique_tax_id(tx: Transaction, tax_id: object, customer_id: int | None) -> None:
    if tax_id is None:
        return
    other = tx.conn.execute("SELECT id FROM customers WHERE tax_id = ? AND id IS NOT ?", (tax_id, customer_id))
    row = other.fetchone()
    if row is not None:
        raise Conflict.field("tax_id", f"already the tax id of customer {row['id']}")


def _demote_primary(tx: Transaction, customer_id: int) -> None:
    """A customer has one primary contact: the previous one stops being it (and says so in an event)."""
    rows = tx.conn.execute("SELECT id FROM contacts WHERE customer_id = ? AND is_primary = 1", (customer_id,))
    for (contact_id,) in rows.fetchall():
        update_row(tx, "contacts", contact_id, {"is_primary": False})
        record_event(tx, "contact.updated", contact_json(fetch(tx.conn, "contacts", contact_id)))
