"""Contracts (销售合同): lines, amount, the draft → signed → cancelled life, and what the integration writes back.

Signing a contract is where lead-to-cash starts: `contract.signed` tells Seamflow to create
the sales order in the ERP, which writes `erp_order_no`, then payment and shipping back here
with `PATCH /contracts/{id}`.
"""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from seamflow_crm.database import Transaction
from seamflow_crm.idempotency import Answer, Change, ChangeDep
from seamflow_crm.outbox import record_event
from seamflow_crm.problems import Conflict, InvalidInput, problem_responses
from seamflow_crm.records import PageDep, check_version, fetch, update_row
from seamflow_crm.schemas import (
    Contract,
    ContractCreate,
    ContractLine,
    ContractPage,
    ContractStatus,
    ContractUpdate,
    CustomerStatus,
    PaymentStatus,
    to_money,
)

__all__ = ["contract_json", "price_lines", "router"]

router = APIRouter(tags=["contracts"])
_CHINA = ZoneInfo("Asia/Shanghai")
_DRAFT_ONLY = ("customer_id", "opportunity_id", "title", "lines")
_WRITTEN_BACK = ("erp_order_no", "payment_status", "amount_received", "shipping_status", "tracking_no")
_NOT_NULL = {"customer_id", "lines", "payment_status", "amount_received", "shipping_status"}
_SIGNABLE_FROM = {ContractStatus.DRAFT}
_CANCELLABLE_FROM = {ContractStatus.DRAFT, ContractStatus.SIGNED}


def price_lines(lines: list[ContractLine]) -> tuple[list[dict[str, object]], str]:
    """The lines with their amounts (qty × unit_price), and the contract amount (their sum), in CNY."""
    priced, total = [], Decimal("0")
    for line in lines:
        amount = Decimal(line.unit_price) * line.qty
        total += amount
        priced.append({**line.model_dump(mode="json"), "amount": to_money(amount)})
    return priced, to_money(total)


def contract_json(conn: sqlite3.Connection, row: sqlite3.Row) -> dict[str, object]:
    """A contract row as the API shows it, with its customer's main fields."""
    customer = fetch(conn, "customers", row["customer_id"])
    record = {**dict(row), "lines": json.loads(row["lines"]), "customer": dict(customer)}
    return Contract.model_validate(record).model_dump(mode="json")


@router.get("/contracts", response_model=ContractPage, responses=problem_responses(401, 422))
def list_contracts(
    request: Request,
    page: PageDep,
    status: ContractStatus | None = None,
    customer_id: int | None = None,
) -> dict[str, object]:
    """List contracts ordered by (updated_at, id); filter by status, customer or `updated_since`."""
    where, params = "updated_at >= ?", list[object]([page.since()])
    if status is not None:
        where, params = where + " AND status = ?", [*params, status.value]
    if customer_id is not None:
        where, params = where + " AND customer_id = ?", [*params, customer_id]
    with request.app.state.db.read() as conn:
        total = conn.execute(f"SELECT count(*) FROM contracts WHERE {where}", params).fetchone()[0]  # noqa: S608
        rows = conn.execute(
            f"SELECT * FROM contracts WHERE {where} ORDER BY updated_at, id LIMIT ? OFFSET ?",  # noqa: S608
            [*params, page.per_page, page.offset],
        ).fetchall()
        items = [contract_json(conn, row) for row in rows]
    return {"items": items, "page": page.page, "per_page": page.per_page, "total": total}


@router.post("/contracts", status_code=201, response_model=Contract, responses=problem_responses(401, 409, 422))
def create_contract(body: ContractCreate, change: ChangeDep) -> Response:
    """Create a draft contract numbered HT-<year>-<six digits>; its amount is computed from the lines.

    Emits `contract.created`.
    """

    def make(tx: Transaction) -> Answer:
        _check_parties(tx, body.customer_id, body.opportunity_id)
        lines, amount = price_lines(body.lines)
        cursor = tx.conn.execute(
            "INSERT INTO contracts (number, customer_id, opportunity_id, title, lines, amount, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                _next_number(tx),
                body.customer_id,
                body.opportunity_id,
                body.title,
                json.dumps(lines, ensure_ascii=False),
                amount,
                tx.timestamp,
                tx.timestamp,
            ),
        )
        data = contract_json(tx.conn, fetch(tx.conn, "contracts", cursor.lastrowid or 0))
        record_event(tx, "contract.created", data)
        return Answer(201, data, f"/contracts/{data['id']}")

    return change.run(make, request_body=body.model_dump(mode="json"))


@router.get("/contracts/{contract_id}", response_model=Contract, responses=problem_responses(401, 404))
def get_contract(contract_id: int, request: Request) -> JSONResponse:
    """One contract; its `ETag` is its version."""
    with request.app.state.db.read() as conn:
        data = contract_json(conn, fetch(conn, "contracts", contract_id))
    return JSONResponse(data, headers={"ETag": f'"{data["version"]}"'})


@router.patch("/contracts/{contract_id}", response_model=Contract, responses=problem_responses(401, 404, 409, 412, 422))
def update_contract(contract_id: int, body: ContractUpdate, change: ChangeDep) -> Response:
    """Change a contract: a draft's lines and parties, or (once signed) what the ERP and finance report.

    `erp_order_no` is written once: the same value again changes nothing, another value is a 409
    (it would mean a second sales order). `amount_received` sets `payment_status` (unpaid,
    partial, paid) unless it is given. Emits `contract.updated` when anything changed.
    """
    values = body.model_dump(mode="json", exclude_unset=True)
    version = values.pop("version", None)
    for column in sorted(_NOT_NULL & values.keys()):
        if values[column] is None:
            raise InvalidInput.field(column, "may not be null; leave it out to keep the current value")

    def make(tx: Transaction) -> Answer:
        row = fetch(tx.conn, "contracts", contract_id)
        check_version(row["version"], if_match=change.if_match, version=version)
        changed = _changes(tx, row, values, body)
        if not changed:
            return Answer(200, contract_json(tx.conn, row))
        update_row(tx, "contracts", contract_id, changed)
        data = contract_json(tx.conn, fetch(tx.conn, "contracts", contract_id))
        record_event(tx, "contract.updated", data)
        return Answer(200, data)

    return change.run(make, request_body=values | {"version": version})


@router.post("/contracts/{contract_id}/sign", response_model=Contract, responses=problem_responses(401, 404, 409, 412))
def sign_contract(contract_id: int, change: ChangeDep) -> Response:
    """Sign a draft contract (409 in any other status, or if its customer is inactive); emits `contract.signed`."""

    def make(tx: Transaction) -> Answer:
        row = _transition(tx, change, contract_id, ContractStatus.SIGNED, _SIGNABLE_FROM)
        customer = fetch(tx.conn, "customers", row["customer_id"])
        if customer["status"] != CustomerStatus.ACTIVE:
            raise Conflict.field("customer_id", f"customer {customer['id']} is inactive; activate it before signing")
        update_row(tx, "contracts", contract_id, {"status": ContractStatus.SIGNED.value, "signed_at": tx.timestamp})
        data = contract_json(tx.conn, fetch(tx.conn, "contracts", contract_id))
        record_event(tx, "contract.signed", data)
        return Answer(200, data)

    return change.run(make)


@router.post(
    "/contracts/{contract_id}/cancel", response_model=Contract, responses=problem_responses(401, 404, 409, 412)
)
def cancel_contract(contract_id: int, change: ChangeDep) -> Response:
    """Cancel a draft or signed contract (409 if it is already cancelled); emits `contract.cancelled`."""

    def make(tx: Transaction) -> Answer:
        _transition(tx, change, contract_id, ContractStatus.CANCELLED, _CANCELLABLE_FROM)
        values = {"status": ContractStatus.CANCELLED.value, "cancelled_at": tx.timestamp}
        update_row(tx, "contracts", contract_id, values)
        data = contract_json(tx.conn, fetch(tx.conn, "contracts", contract_id))
        record_event(tx, "contract.cancelled", data)
        return Answer(200, data)

    return change.run(make)


def _transition(
    tx: Transaction, change: Change, contract_id: int, to: ContractStatus, allowed_from: set[ContractStatus]
) -> sqlite3.Row:
    row = fetch(tx.conn, "contracts", contract_id)
    check_version(row["version"], if_match=change.if_match, version=None)
    if row["status"] not in allowed_from:
        expected = " or ".join(sorted(allowed_from))
        raise Conflict.field(
            "status", f"contract {row['number']} is {row['status']}; only a contract that is {expected} can be {to}"
        )
    return row


def _changes(tx: Transaction, row: sqlite3.Row, values: dict[str, object], body: ContractUpdate) -> dict[str, object]:
    """The columns this PATCH really changes, after checking they may change in the contract's status."""
    if body.lines is not None:
        lines, amount = price_lines(body.lines)
        values = {**values, "lines": json.dumps(lines, ensure_ascii=False), "amount": amount}
    changed = {column: value for column, value in values.items() if row[column] != value}
    status = row["status"]
    for column in _DRAFT_ONLY:
        if column in changed and status != ContractStatus.DRAFT:
            raise Conflict.field(column, f"contract {row['number']} is {status}; only a draft's {column} can change")
    for column in _WRITTEN_BACK:
        if column in changed and status == ContractStatus.DRAFT:
            raise Conflict.field(column, f"contract {row['number']} is a draft; {column} is set once it is signed")
    if "erp_order_no" in changed and row["erp_order_no"] is not None:
        raise Conflict.field("erp_order_no", f"already {row['erp_order_no']}; a contract has one ERP sales order")
    if "customer_id" in changed or "opportunity_id" in changed:
        customer_id = int(str(changed.get("customer_id", row["customer_id"])))
        opportunity_id = changed.get("opportunity_id", row["opportunity_id"])
        _check_parties(tx, customer_id, int(str(opportunity_id)) if opportunity_id is not None else None)
    if "amount_received" in values:
        _settle_payment(changed, str(values["amount_received"]), row["amount"], body.payment_status, row)
    return changed


def _settle_payment(
    changed: dict[str, object], received: str, amount: str, given: PaymentStatus | None, row: sqlite3.Row
) -> None:
    if Decimal(received) == 0:
        derived = PaymentStatus.UNPAID
    elif Decimal(received) < Decimal(amount):
        derived = PaymentStatus.PARTIAL
    else:
        derived = PaymentStatus.PAID
    if given is not None and given != derived:
        raise InvalidInput.field("payment_status", f"got {given}, but {received} of {amount} received means {derived}")
    if row["payment_status"] != derived:
        changed["payment_status"] = derived.value


def _check_parties(tx: Transaction, customer_id: int, opportunity_id: int | None) -> None:
    customer = tx.conn.execute("SELECT status FROM customers WHERE id = ?", (customer_id,)).fetchone()
    if customer is None:
        raise InvalidInput.field("customer_id", f"customer {customer_id} does not exist")
    if customer["status"] != CustomerStatus.ACTIVE:
        raise Conflict.field("customer_id", f"customer {customer_id} is inactive")
    if opportunity_id is not None:
        opportunity = tx.conn.execute("SELECT customer_id FROM opportunities WHERE id = ?", (opportunity_id,))
        found = opportunity.fetchone()
        if found is None or found["customer_id"] != customer_id:
            raise InvalidInput.field("opportunity_id", f"no opportunity {opportunity_id} of customer {customer_id}")


def _next_number(tx: Transaction) -> str:
    """The next contract number of the year (China time): HT-2026-000123."""
    year = tx.now.astimezone(_CHINA).year
    tx.conn.execute(
        "INSERT INTO contract_numbers (year, last) VALUES (?, 1) ON CONFLICT (year) DO UPDATE SET last = last + 1",
        (year,),
    )
    last = tx.conn.execute("SELECT last FROM contract_numbers WHERE year = ?", (year,)).fetchone()[0]
    return f"HT-{year}-{last:06d}"
