"""The object-centric event log (OCEL 2.0 concepts): events, objects, their types, the
event-to-object and object-to-object relations, and attributes.

An event of the store's log becomes one `Event` here; its `objects` JSON names the business
objects it touched. Each entry of that JSON maps an object type to one object or a list of
them, and an object is either its id (`"SO-1"`) or a mapping with `id` and optionally
`qualifier`, `attributes` (the object's attributes at that moment) and `related` (object type
-> id: object-to-object relations, qualified by the type).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from seamflow import errors
from seamflow.ids import Json

__all__ = ["Event", "EventObject", "ObjectLink", "parse_objects"]


@dataclass(frozen=True, slots=True)
class EventObject:
    """An event-to-object relation: the object (type and id) an event touched, and how (the qualifier)."""

    type: str
    id: str
    qualifier: str = ""
    attributes: Mapping[str, str] = field(default_factory=dict)
    """The object's attributes as this event saw them (a later event's values win)."""


@dataclass(frozen=True, slots=True)
class ObjectLink:
    """An object-to-object relation: `source` relates to `target`, e.g. order SO-1 → customer C-9."""

    source_type: str
    source_id: str
    target_type: str
    target_id: str
    qualifier: str


@dataclass(frozen=True, slots=True)
class Event:
    """One event of the object-centric log: an activity at a time, touching objects.

    `seq` is the ingest sequence number of the store's log: events at the same timestamp are
    ordered by it, the way pm4py orders rows of the same timestamp by their position.
    """

    seq: int
    activity: str
    at_ms: int
    objects: tuple[EventObject, ...] = ()
    links: tuple[ObjectLink, ...] = ()
    resource: str | None = None
    """Who did it (an approver's login, an event attribute `resource` or `who`)."""
    attributes: Mapping[str, Json] = field(default_factory=dict)
    system: str | None = None
    """Where it happened: the event attribute `system` (e.g. `ERP`), else the connection of the step's action."""
    is_manual: bool = False
    """A person typed it (the event attribute `entry: manual`): its objects' attributes were entered by hand."""

    @property
    def at(self) -> datetime:
        """The event's time, in UTC."""
        return datetime.fromtimestamp(self.at_ms / 1000, UTC)


def parse_objects(value: Json, where: str) -> tuple[tuple[EventObject, ...], tuple[ObjectLink, ...]]:
    """The objects and object-to-object links named by an event's `objects` JSON.

    Args:
        value: `{type: id | [id, ...] | {id, qualifier?, attributes?, related?}}`, or None.
        where: where the value comes from, for the error message (e.g. `event_log seq 42`).

    Returns:
        The event-to-object relations and the object-to-object links, in the order given.

    Raises:
        errors.InvalidInput: the value is not of that shape (`insight.objects_invalid`).
    """
    if value is None:
        return (), ()
    if not isinstance(value, dict):
        raise _invalid(where, value, "a mapping of object type to id")
    objects: list[EventObject] = []
    links: list[ObjectLink] = []
    for otype, given in value.items():
        for item in given if isinstance(given, list) else [given]:
            obj = _one_object(str(otype), item, f"{where}: objects.{otype}")
            objects.append(obj)
            if isinstance(item, dict) and isinstance(related := item.get("related"), dict):
                links.extend(
                    ObjectLink(obj.type, obj.id, str(t), _text(i), str(t))
                    for t, ids in related.items()
                    for i in (ids if isinstance(ids, list) else [ids])
                )
    return tuple(objects), tuple(links)


def _one_object(otype: str, item: Json, where: str) -> EventObject:
    if isinstance(item, str | int) and not isinstance(item, bool):
        return EventObject(otype, str(item))
    if isinstance(item, dict) and isinstance(item.get("id"), str | int):
        attributes = item.get("attributes") or {}
        if not isinstance(attributes, dict):
            raise _invalid(where + ".attributes", attributes, "a mapping of attribute name to value")
        return EventObject(
            otype,
            _text(item["id"]),
            str(item.get("qualifier") or ""),
            {str(k): _text(v) for k, v in attributes.items() if v is not None},
        )
    raise _invalid(where, item, "an object id (text) or a mapping with an id")


def _text(value: Json) -> str:
    # Case ids and attribute values are text, as pm4py makes them: 7 and "7" are the same case.
    return value if isinstance(value, str) else str(value)


def _invalid(where: str, value: object, expected: str) -> errors.InvalidInput:
    return errors.InvalidInput(
        f"{where}: got {errors.redact(value)}; expected {expected}", code="insight.objects_invalid"
    )
