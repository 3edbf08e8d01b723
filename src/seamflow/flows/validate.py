"""Checking flows before they run: shape, connections, actions, templates and step references.

`validate_project` checks every flow file of a project with its `connections.yaml` and
reports every problem of every file at once, each with file:line:column and path.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from pydantic import BaseModel, ValidationError

from seamflow import connectors, errors
from seamflow.errors import Problem
from seamflow.flows import load, spec
from seamflow.flows.expressions import Template
from seamflow.ids import Json

__all__ = [
    "ConnectionInfo",
    "LoadedFlow",
    "Project",
    "flow_json_schema",
    "validate_flow",
    "validate_project",
]

_ACTION = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
_MAX_LISTED = 12
_TEMPLATES: dict[str | None, list[tuple[str, ...]]] = {
    "action": [("with",), ("output",)],
    "transform": [("transform",)],
    "if": [("if",)],
    "foreach": [("foreach",)],
    "call": [("input",)],
    "respond": [("respond", "body"), ("respond", "headers")],
    "wait": [("wait", "until"), ("wait", "key")],
    "emit": [("emit", "activity"), ("emit", "time"), ("emit", "objects"), ("emit", "attributes")],
}
"""Where each kind of step holds templates, besides `idempotency_key`."""
_CHILDREN = {"if": ("then", "else"), "foreach": ("steps",)}


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """What validation needs to know of a connection: its connector and the connector's actions and feeds."""

    name: str
    connector: str
    actions: Mapping[str, connectors.Action]
    feeds: Mapping[str, connectors.Feed] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LoadedFlow:
    """A validated flow file of a project."""

    spec: spec.Flow
    path: Path
    version: str
    """First 16 hex digits of the SHA-256 of the file's bytes (`load.flow_version`)."""
    source_map: load.SourceMap


@dataclass(frozen=True, slots=True)
class Project:
    """Every flow of a project by flow id, and the raw configuration of every connection."""

    flows: Mapping[str, LoadedFlow]
    connections: Mapping[str, dict[str, Json]]
    """Connection name -> settings from `connections.yaml`, secrets still as templates."""


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else "")


def _dig(data: object, path: tuple[str, ...]) -> object:
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


class _FlowChecker:
    """The checks of one flow that need more than its shape; works on the raw data so that
    problems are found even where the shape is wrong."""

    def __init__(
        self,
        source_map: load.SourceMap,
        connections: Mapping[str, ConnectionInfo],
        flow_ids: set[str],
    ) -> None:
        self.source_map = source_map
        self.connections = connections
        self.flow_ids = flow_ids
        self.problems: list[Problem] = []
        self.defined: dict[str, load.JsonPath] = {}
        self.is_sync = False

    def add(self, path: load.JsonPath, problem: str, expected: str | None, *, at_key: bool = False) -> None:
        self.problems.append(Problem(self.source_map.locate(path, at_key=at_key), problem, expected))

    def check(self, flow: dict[str, Json]) -> list[Problem]:
        steps = flow.get("steps")
        steps = steps if isinstance(steps, list) else []
        self.collect_ids(steps, ("steps",))
        trigger = flow.get("trigger")
        self.is_sync = _dig(trigger, ("webhook", "mode")) == "sync"
        for path in [
            ("trigger", "webhook", "dedupe_key"),
            ("trigger", "webhook", "signature", "secret"),
        ]:
            self.templates(_dig(flow, path), path, frozenset(), frozenset())
        self.templates(flow.get("when"), ("when",), frozenset(), frozenset())
        for mode in ("poll", "consume"):
            feed = _dig(trigger, (mode,))
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
            self.templates(_dig(step, field), (*here, *field), visible, extra)
        if kind == "action":
            self.check_action(step, here)
        elif kind == "call":
            self.check_call(step.get("call"), (*here, "call"))
        elif kind == "respond" and not self.is_sync:
            problem = "a respond step in a flow without a synchronous webhook trigger"
            self.add((*here, "respond"), problem, "trigger.webhook.mode: sync", at_key=True)
        item = step.get("as", "item") if kind == "foreach" else None
        inner = names | {item} if isinstance(item, str) else names
        for nested, nested_path in _children(step, here):
            self.check_steps(nested, nested_path, visible | _own_id(step), inner)

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
        expected += f": {_listed(sorted(visible))}" if visible else " (there is none)"
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

    def connection(self, name: str, path: load.JsonPath) -> ConnectionInfo | None:
        """The connection called `name`; an unknown one is a problem at `path`."""
        connection = self.connections.get(name)
        if connection is None:
            known = sorted(self.connections)
            expected = f"a connection of connections.yaml: {_listed(known)}" if known else None
            problem = f"unknown connection {name!r}{load.suggest(name, known)}"
            self.add(path, problem, expected or "a connection declared in connections.yaml (there are none)")
        return connection

    def check_feed(self, trigger: dict[str, Json], here: load.JsonPath, mode: str) -> None:
        """A `poll`/`consume` trigger: its connection exists, offers the feed in that mode, `with` fits."""
        connection_name, feed_name = trigger.get("connection"), trigger.get("feed")
        if not isinstance(connection_name, str) or not isinstance(feed_name, str):
            return  # the shape check has reported it
        connection = self.connection(connection_name, (*here, "connection"))
        if connection is None:
            return
        of = f"of connection {connection_name!r} (connector {connection.connector})"
        modes = {name: feed.mode for name, feed in connection.feeds.items()}
        fitting = sorted(name for name, kind in modes.items() if kind == mode)
        expected = f"a {mode} feed: {_listed(fitting)}" if fitting else f"a connection with {mode} feeds"
        offered = connection.feeds.get(feed_name)
        if offered is None:
            hint = load.suggest(feed_name, sorted(modes))
            offers = f"; it offers {_listed(sorted(modes))}" if modes else "; it offers no feeds"
            self.add((*here, "feed"), f"unknown feed {feed_name!r} {of}{hint or offers}", expected)
            return
        if offered.mode != mode:
            problem = f"feed {feed_name!r} {of} is a {offered.mode} feed, not a {mode} feed"
            self.add((*here, "feed"), problem, f"trigger.{offered.mode} for it, or {expected}")
            return
        given = trigger.get("with", {})
        if isinstance(given, dict):
            what = f"{connection_name}.{feed_name}"
            self.check_inputs(given, here, what, offered.input, anchor="feed", noun="setting")
            self.check_values(given, (*here, "with"), what, offered.input)

    def check_values(self, given: dict[str, Json], here: load.JsonPath, what: str, model: type[BaseModel]) -> None:
        """Validate settings given literally (feeds get them unrendered) against their model; each
        problem at the field it is about. Missing and unknown fields are `check_inputs`' to report."""
        try:
            model.model_validate(given)
        except ValidationError as exc:
            for error in exc.errors(include_url=False, include_input=False):
                if error["type"] in ("missing", "extra_forbidden"):
                    continue
                loc = tuple(str(part) if not isinstance(part, int) else part for part in error["loc"])
                message = str(error["msg"]).removeprefix("Value error, ")
                self.add((*here, *loc), f"{what}: {message}", None, at_key=bool(loc))

    def check_action(self, step: dict[str, Json], here: load.JsonPath) -> None:
        action = step.get("action")
        if not isinstance(action, str) or not _ACTION.match(action):
            return  # the shape check has reported it
        connection_name, action_name = action.split(".")
        connection = self.connection(connection_name, (*here, "action"))
        if connection is None:
            return
        offered = connection.actions.get(action_name)
        if offered is None:
            known = sorted(connection.actions)
            hint = load.suggest(action_name, known)
            of = f"of connection {connection_name!r} (connector {connection.connector})"
            problem = f"unknown action {action_name!r} {of}{hint}"
            self.add((*here, "action"), problem, f"one of: {_listed(known)}")
            return
        given = step.get("with", {})
        if isinstance(given, dict):
            self.check_inputs(given, here, action, offered.input)

    def check_inputs(
        self,
        given: dict[str, Json],
        here: load.JsonPath,
        action: str,
        model: type[BaseModel],
        *,
        anchor: str = "action",
        noun: str = "input",
    ) -> None:
        """Each required input is given; no unknown one if the input model forbids extras."""
        fields = model.model_fields
        keys = {key: name for name, info in fields.items() for key in {name, info.alias or name}}
        given_names = {keys[key] for key in given if key in keys}
        missing = [
            info.alias or name for name, info in fields.items() if info.is_required() and name not in given_names
        ]
        inputs = ", ".join(
            (info.alias or name) + (" (required)" if info.is_required() else "") for name, info in fields.items()
        )
        if missing:
            plural = "s" if len(missing) > 1 else ""
            problem = f"missing required {noun}{plural} {', '.join(map(repr, missing))} of {action}"
            with_key = (*here, "with")
            at = with_key if with_key in self.source_map.keys else (*here, anchor)
            self.add(at, problem, f"{noun}s {inputs}", at_key=True)
        if model.model_config.get("extra") == "forbid":
            for key in given:
                if key not in keys:
                    hint = load.suggest(key, sorted(keys))
                    self.add(
                        (*here, "with", key),
                        f"unknown {noun} {key!r} of {action}{hint}",
                        None if hint else f"{noun}s {inputs}",
                        at_key=True,
                    )

    def check_call(self, flow_id: Json, path: load.JsonPath) -> None:
        if isinstance(flow_id, str) and flow_id not in self.flow_ids:
            known = sorted(self.flow_ids)
            problem = f"call of unknown flow {flow_id!r}{load.suggest(flow_id, known)}"
            self.add(
                path,
                problem,
                f"the id of a flow of this project: {_listed(known)}" if known else "the id of a flow of this project",
            )


def _sorted(problems: list[Problem]) -> list[Problem]:
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.where.file or "", p.where.line or 0, p.where.column or 0))


def validate_flow(
    data: Json,
    source_map: load.SourceMap,
    filename: str,
    *,
    connections: Mapping[str, ConnectionInfo],
    flow_ids: set[str],
) -> spec.Flow:
    """Check a flow's shape and meaning and return it as a `spec.Flow`.

    Args:
        data: the flow file as plain data (from `load.parse_yaml`).
        source_map: positions of the values of `data`.
        filename: the name used in problems.
        connections: the project's connections by name, with their connectors' actions.
        flow_ids: ids of every flow of the project, for `call` steps.

    Raises:
        errors.FlowInvalid: with every problem found, in the order of the file.
    """
    if source_map.file != filename:
        source_map = dataclasses.replace(source_map, file=filename)
    flow, problems = load.flow_from_data(data, source_map)
    if isinstance(data, dict):
        problems += _FlowChecker(source_map, connections, flow_ids).check(data)
    if problems or flow is None:
        raise errors.FlowInvalid(_sorted(problems))
    return flow


@dataclass(frozen=True, slots=True)
class _Document:
    """A flow file read and parsed, not yet validated."""

    path: Path
    raw: bytes
    data: Json
    source_map: load.SourceMap


def _connection_infos(
    configs: Mapping[str, dict[str, Json]],
    source_map: load.SourceMap,
    kinds: Mapping[str, type[connectors.Connector]] | None,
) -> tuple[dict[str, ConnectionInfo], list[Problem]]:
    """Find the connector of every connection; an unknown connector kind is a problem."""
    if not configs:
        return {}, []
    kinds = connectors.available_connectors() if kinds is None else kinds
    infos: dict[str, ConnectionInfo] = {}
    problems = []
    for name, config in configs.items():
        kind = str(config.get("connector"))
        connector = kinds.get(kind)
        if connector is None:
            where = source_map.locate((name, "connector"))
            found = f"unknown connector {errors.redact(kind)}{load.suggest(kind, sorted(kinds))}"
            problems.append(Problem(where, found, f"an installed connector: {_listed(sorted(kinds))}"))
        else:
            infos[name] = ConnectionInfo(name, kind, connector.actions, connectors.feeds_of(connector))
    return infos, problems


def _read_flows(flows_dir: Path) -> tuple[list[_Document], list[Problem]]:
    if not flows_dir.is_dir():
        return [], [Problem(errors.Location(str(flows_dir)), "not a directory", "the folder of the flow files")]
    documents, problems = [], []
    paths = sorted({*flows_dir.rglob("*.yaml"), *flows_dir.rglob("*.yml")})
    for path in paths:
        try:
            raw = load.read_source(path)
            data, source_map = load.parse_yaml(raw, str(path))
        except errors.FlowInvalid as exc:
            problems += exc.problems
            continue
        documents.append(_Document(path, raw, data, source_map))
    return documents, problems


def _claim(claimed: dict[str, errors.Location], key: object, where: errors.Location, what: str) -> Problem | None:
    """Claim `key` for one file; a second claim is a problem pointing at the first."""
    if not isinstance(key, str):
        return None
    first = claimed.setdefault(key, where)
    if first is where:
        return None
    return Problem(where, f"{what} {key!r} is already used at {first}", f"a {what} used by one flow only")


def _project_problems(documents: list[_Document]) -> list[Problem]:
    """Flow ids and webhook paths must be unique across the files of a project."""
    ids: dict[str, errors.Location] = {}
    hooks: dict[str, errors.Location] = {}
    problems = []
    for document in documents:
        flow_id = _dig(document.data, ("id",))
        problems.append(_claim(ids, flow_id, document.source_map.locate(("id",)), "flow id"))
        hook = _dig(document.data, ("trigger", "webhook", "path"))
        hook = hook.rstrip("/") if isinstance(hook, str) else None
        where = document.source_map.locate(("trigger", "webhook", "path"))
        problems.append(_claim(hooks, hook, where, "webhook path"))
    return [problem for problem in problems if problem is not None]


def _read_connections(
    connections_file: Path | None, kinds: Mapping[str, type[connectors.Connector]] | None
) -> tuple[dict[str, dict[str, Json]], dict[str, ConnectionInfo], list[Problem]]:
    if connections_file is None:
        return {}, {}, []
    try:
        configs, source_map = load.load_connections_file(connections_file)
    except errors.FlowInvalid as exc:
        return {}, {}, exc.problems
    infos, problems = _connection_infos(configs, source_map, kinds)
    return configs, infos, problems


def validate_project(
    flows_dir: Path,
    connections_file: Path | None,
    *,
    kinds: Mapping[str, type[connectors.Connector]] | None = None,
) -> Project:
    """Load and check every flow file (`*.yaml`, `*.yml`) under `flows_dir` with the connections.

    Args:
        flows_dir: the project's `flows/` folder, searched recursively.
        connections_file: the project's `connections.yaml`, or None if it has none.
        kinds: connector classes by kind; default: the installed connectors
            (`connectors.available_connectors()`).

    Returns:
        The project: every flow by id, and the raw connection settings.

    Raises:
        errors.FlowInvalid: with every problem of every file; flow ids and webhook paths
            must also be unique across files.
    """
    configs, infos, problems = _read_connections(connections_file, kinds)
    documents, found = _read_flows(flows_dir)
    problems += found + _project_problems(documents)
    flow_ids = {key for d in documents if isinstance(key := _dig(d.data, ("id",)), str)}
    flows: dict[str, LoadedFlow] = {}
    for document in documents:
        filename = document.source_map.file
        try:
            flow = validate_flow(document.data, document.source_map, filename, connections=infos, flow_ids=flow_ids)
        except errors.FlowInvalid as exc:
            problems += exc.problems
            continue
        version = load.flow_version(document.raw)
        flows[flow.id] = LoadedFlow(flow, document.path, version, document.source_map)
    if problems:
        raise errors.FlowInvalid(_sorted(problems))
    return Project(flows, configs)


_DESCRIPTIONS = {
    "id": "unique name of the flow; lowercase letters, digits, _ . -",
    "name": "a title for people",
    "description": "what the flow is for",
    "trigger": "what starts a run: exactly one of webhook, schedule, manual, poll, consume",
    "steps": "the steps, run in order; each has an id and exactly one kind key",
    "on_error": "what happens when a step fails after its retries: fail, continue or dead_letter",
}


def flow_json_schema() -> dict[str, Json]:
    """Return the JSON Schema of flow files, for editors (auto-completion, checks as you type).

    The schema checks the shape only; `seamflow flow validate` also checks connections,
    templates and step references.
    """
    schema = spec.Flow.model_json_schema(by_alias=True)
    for key, text in _DESCRIPTIONS.items():
        schema["properties"][key].setdefault("description", text)
    return cast(
        dict[str, Json],
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            **schema,
            "title": "Seamflow flow file",
            "description": "A flow: a trigger, an optional `when` condition and steps. "
            'Templates are strings such as "{{ event.body.id }}".',
        },
    )
