"""Opportunities (商机): sales chances with a stage, before they become contracts."""

from __future__ import annotations

import sqlite3

from fastapi import APIRouter, Request, Response

from seamflow_crm.database import Transaction
from seamflow_crm.idempotency import Answer, ChangeDep
from seamflow_crm.outbox import record_event
from seamflow_crm.problems import InvalidInput, problem_responses
from seamflow_crm.records import PageDep, check_version, fetch, update_row
from seamflow_crm.schemas import Opportunity, OpportunityCreate, OpportunityPage, OpportunityStage, OpportunityUpdate

__all__ = ["router"]

router = APIRouter(tags=["opportunities"])
_NOT_NULL = {"title", "stage", "amount"}


def opportunity_json(row: sqlite3.Row) -> dict[str, object]:
    """An opportunity row as the API shows it."""
    return Opportunity.model_validate(dict(row)).model_dump(mode="json")


@router.get("/opportunities", response_model=OpportunityPage, responses=problem_responses(401, 422))
def list_opportunities(
    request: Request,
    page: PageDep,
    stage: OpportunityStage | None = None,
    customer_id: int | None = None,
) -> dict[str, object]:
    """List opportunities ordered by (updated_at, id); filter by stage, customer or `updated_since`."""
    where, params = "updated_at >= ?", list[object]([page.since()])
    if stage is not None:
        where, params = where + " AND stage = ?", [*params, stage.value]
    if customer_id is not None:
        where, params = where + " AND customer_id = ?", [*params, customer_id]
    with request.app.state.db.read() as conn:
        total = conn.execute(f"SELECT count(*) FROM opportunities WHERE {where}", params).fetchone()[0]  # noqa: S608
        rows = conn.execute(
            f"SELECT * FROM opportunities WHERE {where} ORDER BY updated_at, id LIMIT ? OFFSET ?",  # noqa: S608
            [*params, page.per_page, page.offset],
        ).fetchall()
    items = [opportunity_json(row) for row in rows]
    return {"items": items, "page": page.page, "per_page": page.per_page, "total": total}


@router.post("/opportunities", status_code=201, response_model=Opportunity, responses=problem_responses(401, 422))
def create_opportunity(body: OpportunityCreate, change: ChangeDep) -> Response:
    """Create an opportunity for a customer; emits `opportunity.created`."""

    def make(tx: Transaction) -> Answer:
        if tx.conn.execute("SELECT 1 FROM customers WHERE id = ?", (body.customer_id,)).fetchone() is None:
            raise InvalidInput.field("customer_id", f"customer {body.customer_id} does not exist")
        values = body.model_dump(mode="json")
        cursor = tx.conn.execute(
            "INSERT INTO opportunities (customer_id, title, stage, amount, expected_close_date, owner, created_at,"
            " updated_at) VALUES (:customer_id, :title, :stage, :amount, :expected_close_date, :owner, :now, :now)",
            {**values, "now": tx.timestamp},
        )
        data = opportunity_json(fetch(tx.conn, "opportunities", cursor.lastrowid or 0))
        record_event(tx, "opportunity.created", data)
        return Answer(201, data, f"/opportunities/{data['id']}")

    return change.run(make, request_body=body.model_dump(mode="json"))


@router.get("/opportunities/{opportunity_id}", response_model=Opportunity, responses=problem_responses(401, 404))
def get_opportunity(opportunity_id: int, request: Request) -> dict[str, object]:
    """One opportunity."""
    with request.app.state.db.read() as conn:
        return opportunity_json(fetch(conn, "opportunities", opportunity_id))


@router.patch(
    "/opportunities/{opportunity_id}", response_model=Opportunity, responses=problem_responses(401, 404, 412, 422)
)
def update_opportunity(opportunity_id: int, body: OpportunityUpdate, change: ChangeDep) -> Response:
    """Change an opportunity (e.g. move it to another stage); emits `opportunity.updated`."""
    values = body.model_dump(mode="json", exclude_unset=True)
    version = values.pop("version", None)
    for column in sorted(_NOT_NULL & values.keys()):
        if values[column] is None:
            raise InvalidInput.field(column, "may not be null; leave it out to keep the current value")

    def make(tx: Transaction) -> Answer:
        row = fetch(tx.conn, "opportunities", opportunity_id)
        check_version(row["version"], if_match=change.if_match, version=version)
        changed = {column: value for column, value in values.items() if row[column] != value}
        if not changed:
            return Answer(200, opportunity_json(row))
        update_row(tx, "opportunities", opportunity_id, changed)
        data = opportunity_json(fetch(tx.conn, "opportunities", opportunity_id))
        record_event(tx, "opportunity.updated", data)
        return Answer(200, data)

    return change.run(make, request_body=values | {"version": version})
