"""Checking a flow's steps and templates: unique step ids, compiled templates, step references.

Part of flow validation (`flows.validate`). Works on the raw data, so problems are found even
where the shape is wrong. A template may refer only to steps that run before it (`steps.<id>`);
a reference to a later or unknown step is a problem that says where the step is, or which exist.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from seamflow import errors
from seamflow.errors import Problem
from seamflow.flows import load, spec
from seamflow.flows.expressions import Template
from seamflow.flows.validate_refs import ConnectionInfo, ReferenceChecks, listed
from seamflow.ids import Json

__all__ = ["FlowChecker", "dig"]

_TEMPLATES: dict[str | None, list[tuple[str, ...]]] = {
    "action": [("with",), ("output",)],
    "transform": [("transform",)],
    "if": [("if",)],
    "foreach": [("foreach",)],
    "call": [("input",)],
    "respond": [("respond", "body"), ("respond", "headers")],
    "wait": [("wait", "until"), ("wait", "key")],
    "approval": [("approval", "requester"), ("approval", "subject")],
    "emit": [("emit", "activity"), ("emit", "time"), ("emit", "objects"), ("emit", "attributes")],
}
"""Where each kind of step holds templates, besides `idempotency_key`."""
_CHILDREN = {"if": ("then", "else"), "foreach": ("steps",)}


def dig(data: object, path: tuple[str, ...]) -> object:
    """The value at `path`, or None where the data has no such value."""
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _children(step: dict[str, Json], here: load.JsonPath) -> Iterator[tuple[list[Json], load.JsonPath]]:
    for key in _CHILDREN.get(spec.step_kind(step) or "", ()):
        nested = step.get(key)
        if isinstance(nested, list):
            yield nested, (*here, key)


def _own_id(step: dict[str, Json]) -> set[str]:
    step_id = step.get("id")
    return {step_id} if isinstance(step_id, str) else set()


_NOTIFY_CONNECTORS = ("email", "dingtalk", "wecom", "feishu", "dingtalk_app", "wecom_app", "feishu_app")
"""What an approval's `notify.connection` may be (engine/notices.py sends through these)."""


class FlowChecker(ReferenceChecks):
    """The checks of one flow that need more than its shape: steps, templates and references."""

    def __init__(
        self,
        source_map: load.SourceMap,
        connections: Mapping[str, ConnectionInfo],
        flow_ids: set[str],
    ) -> None:
        super().__init__(source_map, connections, flow_ids)
        self.defined: dict[str, load.JsonPath] = {}
        self.is_sync = False

    def check(self, flow: dict[str, Json]) -> list[Problem]:
        """Every problem of `flow` beyond its shape, in the order found."""
        steps = flow.get("steps")
        steps = steps if isinstance(steps, list) else []
        self.collect_ids(steps, ("steps",))
        trigger = flow.get("trigger")
        self.is_sync = dig(trigger, ("webhook", "mode")) == "sync"
        for path in [
            ("trigger", "webhook", "dedupe_key"),
            ("trigger", "webhook", "signature", "secret"),
            *(("trigger", "oa", name) for name in ("token", "aes_key", "receiver_id", "dedupe_key")),
        ]:
            self.templates(dig(flow, path), path, frozenset(), frozenset())
        self.templates(flow.get("when"), ("when",), frozenset(), frozenset())
        for mode in ("poll", "consume"):
            feed = dig(trigger, (mode,))
            if isinstance(feed, dict):
                self.check_feed(feed, ("trigger", mode), mode)
        self.check_steps(steps, ("steps",), frozenset(), frozenset())
        return self.problems

    def collect_ids(self, steps: list[Json], path: load.JsonPath) -> None:
        """Record where each step id is first defined; a second definition is a problem."""
        for index, step in enumerate(steps):
            here = (*path, index)
            if not isinstance(step, dict):
                continue
            step_id = step.get("id")
            if isinstance(step_id, str) and step_id in self.defined:
                first = self.source_map.locate((*self.defined[step_id], "id"))
                at = f"line {first.line}:{first.column}, {first.path}"
                problem = f"duplicate step id {step_id!r} (first at {at})"
                self.add((*here, "id"), problem, "step ids used once in a flow")
            elif isinstance(step_id, str):
                self.defined[step_id] = here
            for nested, nested_path in _children(step, here):
                self.collect_ids(nested, nested_path)

    def ids_within(self, step: Json) -> set[str]:
        """The id of a step and of every step nested in it."""
        if not isinstance(step, dict):
            return set()
        found = _own_id(step)
        for nested, _ in _children(step, ()):
            for child in nested:
                found |= self.ids_within(child)
        return found

    def check_steps(
        self, steps: list[Json], path: load.JsonPath, visible: frozenset[str], names: frozenset[str]
    ) -> None:
        """Check a list of steps; each sees the steps before it (and everything nested in them)."""
        seen = set(visible)
        for index, step in enumerate(steps):
            if isinstance(step, dict):
                self.check_step(step, (*path, index), frozenset(seen), names)
            seen |= self.ids_within(step)

    def check_step(
        self,
        step: dict[str, Json],
        here: load.JsonPath,
        visible: frozenset[str],
        names: frozenset[str],
    ) -> None:
        kind = spec.step_kind(step)
        self.templates(step.get("idempotency_key"), (*here, "idempotency_key"), visible, names)
        for field in _TEMPLATES.get(kind, []):
            extra = names | {"result"} if field == ("output",) else names
            self.templates(dig(step, field), (*here, *field), visible, extra)
        if kind == "action":
            self.check_action(step, here)
        elif kind == "call":
            self.check_call(step.get("call"), (*here, "call"))
        elif kind == "approval":
            self.check_levels(dig(step, ("approval", "levels")), (*here, "approval", "levels"), visible, names)
            self.check_notify(
                dig(step, ("approval", "notify", "connection")), (*here, "approval", "notify", "connection")
            )
        elif kind == "respond" and not self.is_sync:
            problem = "a respond step in a flow without a synchronous webhook trigger"
            self.add((*here, "respond"), problem, "trigger.webhook.mode: sync", at_key=True)
        item = step.get("as", "item") if kind == "foreach" else None
        inner = names | {item} if isinstance(item, str) else names
        for nested, nested_path in _children(step, here):
            self.check_steps(nested, nested_path, visible | _own_id(step), inner)

    def check_notify(self, name: object, path: load.JsonPath) -> None:
        """An approval's `notify.connection` exists and is one that can reach a person."""
        if not isinstance(name, str):
            return  # absent, or the shape check has reported it
        connection = self.connection(name, path)
        if connection is not None and connection.connector not in _NOTIFY_CONNECTORS:
            problem = f"connection {name!r} is a {connection.connector} connection, which cannot notify people"
            self.add(path, problem, f"a connection of connector {', '.join(_NOTIFY_CONNECTORS)}")

    def check_levels(self, levels: object, path: load.JsonPath, visible: frozenset[str], names: frozenset[str]) -> None:
        """Templates of an approval's levels: `when`, and assignees given by expression or department."""
        for i, level in enumerate(levels if isinstance(levels, list) else []):
            self.templates(dig(level, ("when",)), (*path, i, "when"), visible, names)
            assignees = dig(level, ("assignees",))
            for j, who in enumerate(assignees if isinstance(assignees, list) else []):
                for key in ("expression", "department_head"):
                    self.templates(dig(who, (key,)), (*path, i, "assignees", j, key), visible, names)

    def templates(self, value: object, path: load.JsonPath, visible: frozenset[str], names: frozenset[str]) -> None:
        """Compile every string in `value` and check the steps its expressions reference."""
        if isinstance(value, dict):
            for key, item in value.items():
                self.templates(item, (*path, key), visible, names)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.templates(item, (*path, index), visible, names)
        elif isinstance(value, str):
            self.template(value, path, visible, names)

    def template(self, text: str, path: load.JsonPath, visible: frozenset[str], names: frozenset[str]) -> None:
        try:
            # No `where`: the problem carries the position and path already.
            compiled = Template.compile(text, extra_names=names)
        except errors.ExpressionError as exc:
            self.add(path, exc.message, None)
            return
        for root, name in sorted(compiled.references):
            if root == "steps" and name and name not in visible:  # "": computed, not checked
                self.undefined_step(name, path, visible)

    def undefined_step(self, name: str, path: load.JsonPath, visible: frozenset[str]) -> None:
        expected = "a step that runs before this one"
        expected += f": {listed(sorted(visible))}" if visible else " (there is none)"
        defined = self.defined.get(name)
        if defined is None:
            hint = load.suggest(name, sorted(self.defined))
            self.add(path, f"reference to undefined step {name!r}{hint}", expected)
            return
        there = self.source_map.locate(defined)
        here = self.source_map.locate(path)
        if (there.line or 0, there.column or 0) > (here.line or 0, here.column or 0):
            note = f"it is defined later, at {there.path} (line {there.line})"
        else:
            note = f"{there.path} does not run before this step"
        self.add(path, f"reference to undefined step {name!r} ({note})", expected)
