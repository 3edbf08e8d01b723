"""Identity resolution for data stewards: a unified member's golden record and records, merge, split.

Every merge and split keeps its reason, lands in the event log and in the audit trail (who, from
where). Batch resolution and `explain` are CLI commands (`seamflow identity`), as they read the
resolution file and the sources.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from seamflow.api.audit import actor_of, origin_of, trail_of
from seamflow.api.dependencies import EngineDep, json_response, require_token

if TYPE_CHECKING:  # numpy, DuckDB and rapidfuzz come with it: imported on the first steward request, not at start
    from seamflow import identity

__all__ = ["router"]

router = APIRouter(dependencies=[Depends(require_token)], tags=["identity"])

_ENTITY = r"^[a-z][a-z0-9_]*$"


class MergeBody(BaseModel):
    """Merge two unified members; the older ID stays."""

    model_config = ConfigDict(extra="forbid")
    unified_ids: list[str] = Field(min_length=2, max_length=2, description="the two unified IDs")
    reason: str = Field(min_length=1, max_length=2000)


class SplitBody(BaseModel):
    """Take records off a unified member into one of their own."""

    model_config = ConfigDict(extra="forbid")
    records: list[str] = Field(min_length=1, max_length=10_000, description="`source:key` of each record to move")
    reason: str = Field(min_length=1, max_length=2000)


def _steward(request: Request, eng: EngineDep, entity: str) -> identity.Steward:
    from seamflow import identity

    return identity.Steward(eng.db, entity, trail_of(eng))


@router.get("/api/v1/identity/{entity}/members/{unified_id}")
async def member(entity: str, unified_id: str, request: Request, eng: EngineDep) -> Response:
    """A unified member: its golden record and its source records."""
    from seamflow import identity

    found, records = await _steward(request, eng, entity).cluster(unified_id)
    return json_response(identity.member_json(found, records))


@router.post("/api/v1/identity/{entity}/merge")
async def merge(entity: str, body: MergeBody, request: Request, eng: EngineDep) -> Response:
    """Merge two unified members (the older ID stays); the reason is kept."""
    first, second = body.unified_ids
    result = await _steward(request, eng, entity).merge(
        first, second, body.reason, actor_of(request), origin_of(request)
    )
    return json_response(result.as_json())


@router.post("/api/v1/identity/{entity}/members/{unified_id}/split")
async def split(entity: str, unified_id: str, body: SplitBody, request: Request, eng: EngineDep) -> Response:
    """Take `records` off the member into a member of their own; the reason is kept."""
    result = await _steward(request, eng, entity).split(
        unified_id, body.records, body.reason, actor_of(request), origin_of(request)
    )
    return json_response(result.as_json())
