"""Promotion: a candidate version goes live only after the flow's owner approved it in their inbox.

A promotion request is a run of the built-in flow `seamflow-promotion`, whose one step is an
`approval` assigned to the flow's `owner:` — the approvals of the directory and inbox, nothing
beside them. Applying the promotion reads that run: unless it completed with the decision
`approved`, promotion is refused; otherwise the candidate's kept source becomes the flow's file.
"""

from __future__ import annotations

from seamflow import errors, store
from seamflow.ids import Json

__all__ = ["PROMOTION_FLOW_ID", "PROMOTION_FLOW_SOURCE", "approved_promotion", "check_requester", "promotion_json"]

PROMOTION_FLOW_ID = "seamflow-promotion"
PROMOTION_FLOW_SOURCE = """id: seamflow-promotion
name: Promotion of a flow version (上线审批)
description: the flow's owner approves a candidate version before it goes live
trigger: {manual: {}}
on_error: fail
steps:
  - id: owner_approval
    approval:
      requester: "{{ event.body.requested_by }}"
      subject: "上线 {{ event.body.flow_id }} → {{ event.body.candidate_version }}"
      levels:
        - name: flow owner
          assignees: [{expression: "{{ event.body.owner }}"}]
"""
"""The built-in flow each promotion request runs (a manual trigger, one approval by the owner)."""


def check_requester(flow_id: str, owner: str, requested_by: str) -> None:
    """Refuse a promotion the flow's owner asks for themselves: they could not approve it (four eyes).

    The approval step leaves the requester out of its assignees (self-approval is refused), so
    the owner's own request would fail with nobody to decide it; it is refused up front instead.

    Raises:
        errors.Conflict: `promotion.self_request` — another person asks, the owner approves.
    """
    if requested_by == owner:
        raise errors.Conflict(
            f"{owner!r} owns flow {flow_id!r} and may not approve a promotion they asked for;"
            " expected another builder to request it, for the owner to approve",
            code="promotion.self_request",
        )


def approved_promotion(summary: store.RunSummary, state: store.RunState, flow_id: str) -> dict[str, Json]:
    """The request of an approved promotion run of `flow_id`: `{flow_id, candidate_version, owner, …}`.

    Raises:
        errors.NotFound: the run is not a promotion of `flow_id`.
        errors.Conflict: `promotion.not_approved` — the owner has not approved (yet), or rejected it.
    """
    envelope = state.event_body if isinstance(state.event_body, dict) else {}
    request = envelope.get("body")
    if summary.flow_id != PROMOTION_FLOW_ID or not isinstance(request, dict) or request.get("flow_id") != flow_id:
        raise errors.NotFound(f"{summary.run_id} is not a promotion of flow {flow_id!r}", code="promotion.not_found")
    decision = _decision(state)
    if summary.status is not store.RunStatus.COMPLETED or decision != "approved":
        owner = request.get("owner")
        said = f"decided {decision}" if decision else f"not decided yet (run {summary.status.value})"
        raise errors.Conflict(
            f"promotion of {flow_id} to {request.get('candidate_version')} refused: its owner {owner!r} has {said};"
            " expected the owner's approval in their inbox",
            code="promotion.not_approved",
        )
    return request


def promotion_json(summary: store.RunSummary, state: store.RunState) -> dict[str, Json] | None:
    """A promotion request as `GET …/promotions` lists it (`decision`: null while pending); None if not one."""
    envelope = state.event_body if isinstance(state.event_body, dict) else {}
    request = envelope.get("body")
    if summary.flow_id != PROMOTION_FLOW_ID or not isinstance(request, dict):
        return None
    return {
        "promotion_id": summary.run_id,
        **request,
        "status": summary.status.value,
        "decision": _decision(state),
        "requested_at": summary.created.isoformat(),
    }


def _decision(state: store.RunState) -> str | None:
    for entry in reversed(state.journal):
        if entry.path == "owner_approval" and entry.status is store.StepStatus.COMPLETED:
            output = entry.output
            if isinstance(output, dict) and output.get("signal") == "approval":
                output = output.get("payload")
            return str(output.get("decision")) if isinstance(output, dict) else None
    return None
