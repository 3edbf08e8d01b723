"""`/api/v1/events`: the event log in order — every state change and business event."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from seamflow.api.dependencies import EngineDep, json_response, require_token

__all__ = ["router"]

router = APIRouter(dependencies=[Depends(require_token)])


@router.get("/api/v1/events", tags=["events"])
async def event_log(
    eng: EngineDep,
    after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    run: str | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> Response:
    """The event log in order: every state change and business event."""
    rows = await eng.db.list_event_log(after_seq=after, limit=limit, run_id=run)
    return json_response(
        [
            {
                "seq": r.seq,
                "at": r.at.isoformat(),
                "kind": r.kind,
                "flow": r.flow_id,
                "run_id": r.run_id,
                "step": r.path,
                "activity": r.activity,
                "objects": r.objects,
                "attributes": r.attributes,
            }
            for r in rows
        ]
    )
