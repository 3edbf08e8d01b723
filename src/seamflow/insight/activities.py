"""Engine, approval and business rows of the store's event log, as activities of the object-centric log.

A business event (an `emit` step) keeps its own activity and objects. The engine's rows get
an activity in words and their run as an object of type `run`; an approval's rows also carry
the approval and its task (e.g. `task.created` → "Approval requested", `task.decided` →
"Approved by <level>" or "Rejected by <level>").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from seamflow import flows, store
from seamflow.ids import Json
from seamflow.insight.model import Event, EventObject, parse_objects

__all__ = ["ENGINE_ACTIVITIES", "LevelNames", "StepSystems", "step_systems", "to_event"]

ENGINE_ACTIVITIES: dict[str, str] = {
    "run.queued": "Run started",
    "run.completed": "Run completed",
    "run.failed": "Run failed",
    "run.dead_letter": "Run dead-lettered",
    "run.cancelled": "Run cancelled",
    "run.replayed": "Run replayed",
    "task.created": "Approval requested",
    "task.reminded": "Approval reminder sent",
    "task.escalated": "Approval escalated",
    "approval.withdrawn": "Approval withdrawn",
    "approval.completed": "Approval completed",
    "feedback.created": "Feedback given",
    "feedback.closed": "Feedback closed",
}
"""The activity of each engine/approval row kind; step rows become "<step> completed" / "<step> failed"."""

_DECISIONS = {"approve": "Approved", "approved": "Approved", "reject": "Rejected", "rejected": "Rejected"}


LevelNames = dict[tuple[str, str], str]
"""(approval id, level) -> the level's name, as `task.created` rows give it."""

StepSystems = Mapping[tuple[str, str], str]
"""(flow id, step path without loop indices, e.g. `notify.post`) -> the connection its action calls."""

_LOOP_INDEX = re.compile(r"\[\d+\]")


def step_systems(compiled: Iterable[flows.CompiledFlow]) -> dict[tuple[str, str], str]:
    """The system of each action step of the flows: the connection it calls (`erp` for `erp.create_sales_order`)."""
    found: dict[tuple[str, str], str] = {}

    def walk(flow_id: str, steps: Iterable[flows.CompiledStep], prefix: str) -> None:
        for step in steps:
            action = getattr(step.spec, "action", None)
            if isinstance(action, str) and "." in action:
                found[(flow_id, prefix + step.id)] = action.split(".", 1)[0]
            walk(flow_id, (*step.children, *step.otherwise), f"{prefix}{step.id}.")

    for flow in compiled:
        walk(flow.id, flow.steps, "")
    return found


def to_event(
    entry: store.LogEntry, levels: LevelNames | None = None, systems: StepSystems | None = None
) -> Event | None:
    """The object-centric event for a row of the store's event log, or None for a row without an activity.

    Args:
        entry: the row.
        levels: level names of the approvals seen so far, kept by the caller across rows: a
            `task.created` row names its level, a `task.decided` row only numbers it, so a
            decision reads "Approved by 财务经理" rather than "Approved by level 2".
        systems: the connection of each action step (`step_systems`): a step row's system.

    Raises:
        errors.InvalidInput: a business row's `objects` is not of the documented shape.
    """
    attributes = entry.attributes if isinstance(entry.attributes, dict) else {}
    if levels is not None and entry.kind in ("task.created", "task.decided"):
        attributes = _named_level(entry, attributes, levels)
    activity = _activity(entry, attributes)
    if activity is None:
        return None
    objects, links = parse_objects(entry.objects, f"event_log seq {entry.seq}")
    if entry.kind != "business" and entry.run_id is not None:
        objects = (*objects, EventObject("run", entry.run_id))
    if entry.kind.startswith("run.") and entry.flow_id is not None:
        objects = (*objects, EventObject("flow", entry.flow_id))  # runs per flow: the work a flow saves
    who = attributes.get("resource", attributes.get("who"))
    system = attributes.get("system")
    if system is None and systems and entry.flow_id and entry.path and entry.kind.startswith("step."):
        system = systems.get((entry.flow_id, _LOOP_INDEX.sub("", entry.path)))
    return Event(
        seq=entry.seq,
        activity=activity,
        at_ms=round(entry.at.timestamp() * 1000),
        objects=objects,
        links=links,
        resource=None if who is None else str(who),
        attributes=attributes,
        system=None if system is None else str(system),
        is_manual=attributes.get("entry") == "manual",
    )


def _named_level(entry: store.LogEntry, attributes: dict[str, Json], levels: LevelNames) -> dict[str, Json]:
    approval = entry.objects.get("approval") if isinstance(entry.objects, dict) else None
    if not isinstance(approval, str) or "level" not in attributes:
        return attributes
    key = (approval, str(attributes["level"]))
    if entry.kind == "task.created" and isinstance(name := attributes.get("level_name"), str):
        levels[key] = name
    elif entry.kind == "task.decided" and not attributes.get("level_name") and key in levels:
        return {**attributes, "level_name": levels[key]}
    return attributes


def _activity(entry: store.LogEntry, attributes: Mapping[str, Json]) -> str | None:
    if entry.kind == "business":
        return entry.activity
    if entry.kind == "task.decided":
        decision = str(attributes.get("decision", ""))
        level = attributes.get("level_name") or (f"level {attributes['level']}" if "level" in attributes else None)
        verb = _DECISIONS.get(decision, decision.capitalize() or "Decided")
        return f"{verb} by {level}" if level else verb
    if entry.kind.startswith("step.") and entry.path:
        return f"{entry.path} {entry.kind.removeprefix('step.')}"
    return ENGINE_ACTIVITIES.get(entry.kind)
