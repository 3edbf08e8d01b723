"""Checking flows before they run: shape, connections, actions, templates and step references.

`validate_project` checks every flow file of a project with its `connections.yaml` and
reports every problem of every file at once, each with file:line:column and path. The checks
of one flow beyond its shape are in `validate_steps` (steps, templates, step references) and
`validate_refs` (connections, actions, feeds, called flows).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from seamflow import connectors, errors
from seamflow.errors import Problem
from seamflow.flows import connector_files, load, spec
from seamflow.flows.validate_refs import ConnectionInfo, listed
from seamflow.flows.validate_steps import FlowChecker, dig
from seamflow.ids import Json

__all__ = [
    "ConnectionInfo",
    "LoadedFlow",
    "Project",
    "check_project",
    "connection_infos",
    "flow_json_schema",
    "validate_flow",
    "validate_flow_text",
    "validate_project",
]


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
        problems += FlowChecker(source_map, connections, flow_ids).check(data)
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


def _actions_of(
    connector: type[connectors.Connector], name: str, config: dict[str, Json], root: Path
) -> tuple[Mapping[str, connectors.Action], str | None]:
    """The connection's actions: exactly those of its local document if the connector reads one
    (`actions_of`, the `openapi` connector), else the connector's; with the problem reading it."""
    actions_of = getattr(connector, "actions_of", None)
    if actions_of is None:
        return connector.actions, None
    try:
        found = actions_of(name, config, root)
    except errors.InvalidInput as exc:
        return connector.actions, exc.message
    return (connector.actions if found is None else found), None


def _connection_infos(
    configs: Mapping[str, dict[str, Json]],
    source_map: load.SourceMap,
    kinds: Mapping[str, type[connectors.Connector]] | None,
    root: Path,
) -> tuple[dict[str, ConnectionInfo], list[Problem]]:
    """Find the connector of every connection and its actions; an unknown connector kind, or a
    local OpenAPI document that cannot be read, is a problem."""
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
            problems.append(Problem(where, found, f"an installed connector: {listed(sorted(kinds))}"))
        else:
            actions, problem = _actions_of(connector, name, config, root)
            if problem is not None:
                where = source_map.locate((name, "document"))
                problems.append(Problem(where, problem, "an OpenAPI 3.0/3.1 document the connection can read"))
            infos[name] = ConnectionInfo(name, kind, actions, connectors.feeds_of(connector))
    return infos, problems


def _read_flows(flows_dir: Path, drafts: Mapping[Path, bytes]) -> tuple[list[_Document], list[Problem]]:
    if not flows_dir.is_dir():
        return [], [Problem(errors.Location(str(flows_dir)), "not a directory", "the folder of the flow files")]
    documents, problems = [], []
    paths = sorted({*flows_dir.rglob("*.yaml"), *flows_dir.rglob("*.yml"), *drafts})
    for path in paths:
        try:
            raw = drafts[path] if path in drafts else load.read_source(path)
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
        flow_id = dig(document.data, ("id",))
        problems.append(_claim(ids, flow_id, document.source_map.locate(("id",)), "flow id"))
        kind = "oa" if dig(document.data, ("trigger", "oa")) is not None else "webhook"
        hook = dig(document.data, ("trigger", kind, "path"))
        hook = hook.rstrip("/") if isinstance(hook, str) else None
        where = document.source_map.locate(("trigger", kind, "path"))
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
    infos, problems = _connection_infos(configs, source_map, kinds, connections_file.parent)
    return configs, infos, problems


def connection_infos(connections_file: Path | None) -> tuple[dict[str, ConnectionInfo], list[Problem]]:
    """The project's connections with their connectors' actions (declarative connectors included),
    as `validate_project` checks steps against them; the console's editor offers these actions.

    Returns:
        Connection name -> its connector kind, actions and feeds; and the problems reading them.
    """
    root = connections_file.parent if connections_file is not None else None
    problems = connector_files.install_project_connectors(root) if root is not None else []
    _, infos, found = _read_connections(connections_file, None)
    return infos, problems + found


def check_project(
    flows_dir: Path,
    connections_file: Path | None,
    *,
    kinds: Mapping[str, type[connectors.Connector]] | None = None,
    drafts: Mapping[Path, bytes] | None = None,
) -> tuple[Project, list[Problem]]:
    """Load and check every flow file like `validate_project`, keeping the valid ones.

    A running `seamflow serve` reloads with this: the flows of files without problems are
    returned, and every problem (of the other files, or of `connections.yaml`) is listed
    beside them, sorted by file and position, instead of raised.

    Returns:
        The project with the flows of the files that have no problem, and the problems.
    """
    problems = [] if kinds is not None else connector_files.install_project_connectors(flows_dir.parent)
    configs, infos, found = _read_connections(connections_file, kinds)
    problems += found
    documents, found = _read_flows(flows_dir, drafts or {})
    problems += found + _project_problems(documents)
    flow_ids = {key for d in documents if isinstance(key := dig(d.data, ("id",)), str)}
    flows: list[LoadedFlow] = []
    for document in documents:
        filename = document.source_map.file
        try:
            flow = validate_flow(document.data, document.source_map, filename, connections=infos, flow_ids=flow_ids)
        except errors.FlowInvalid as exc:
            problems += exc.problems
            continue
        flows.append(LoadedFlow(flow, document.path, load.flow_version(document.raw), document.source_map))
    invalid_files = {p.where.file for p in problems}
    valid = {f.spec.id: f for f in flows if str(f.path) not in invalid_files}  # the first claim of an id stays
    return Project(valid, configs), _sorted(problems)


def validate_project(
    flows_dir: Path,
    connections_file: Path | None,
    *,
    kinds: Mapping[str, type[connectors.Connector]] | None = None,
    drafts: Mapping[Path, bytes] | None = None,
) -> Project:
    """Load and check every flow file (`*.yaml`, `*.yml`) under `flows_dir` with the connections.

    Args:
        flows_dir: the project's `flows/` folder, searched recursively.
        connections_file: the project's `connections.yaml`, or None if it has none.
        kinds: connector classes by kind; default: the installed connectors
            (`connectors.available_connectors()`).
        drafts: file texts to check instead of what is on disk (or beside it, for a new file):
            the console's editor checks a flow before it saves it.

    Returns:
        The project: every flow by id, and the raw connection settings.

    Raises:
        errors.FlowInvalid: with every problem of every file; flow ids and webhook paths
            must also be unique across files.
    """
    project, problems = check_project(flows_dir, connections_file, kinds=kinds, drafts=drafts)
    if problems:
        raise errors.FlowInvalid(problems)
    return project


_DESCRIPTIONS = {
    "id": "unique name of the flow; lowercase letters, digits, _ . -",
    "name": "a title for people",
    "description": "what the flow is for",
    "trigger": "what starts a run: exactly one of webhook, schedule, manual, poll, consume, oa",
    "steps": "the steps, run in order; each has an id and exactly one kind key",
    "on_error": "what happens when a step fails after its retries: fail, continue or dead_letter",
}


def validate_flow_text(
    text: str | bytes, filename: str, connections_file: Path | None, *, flow_ids: Collection[str] = ()
) -> LoadedFlow:
    """Check one flow's text with a project's connections, as `validate_project` checks a file.

    For flows that are not (yet) a file of the project: the console editor's text, a candidate.

    Args:
        text: the flow's YAML.
        filename: the name problems carry (`file:line:column`).
        connections_file: the project's `connections.yaml`, or None.
        flow_ids: the project's other flows, for `call` steps.

    Raises:
        errors.FlowInvalid: with every problem found (of `connections.yaml` too).
    """
    _, infos, problems = _read_connections(connections_file, None)
    if problems:
        raise errors.FlowInvalid(_sorted(problems))
    raw = text.encode() if isinstance(text, str) else text
    data, source_map = load.parse_yaml(raw, filename)
    own = dig(data, ("id",))
    known = {*flow_ids, *([own] if isinstance(own, str) else [])}
    flow = validate_flow(data, source_map, filename, connections=infos, flow_ids=known)
    return LoadedFlow(flow, Path(filename), load.flow_version(raw), source_map)


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
