"""Checking what a flow refers to outside itself: connections, their actions and feeds, called flows.

Part of flow validation (`flows.validate`): an action's connection exists and offers the
action, its `with` gives every required input and no unknown one; a `poll`/`consume` trigger's
feed exists in that mode and its settings fit; a `call` names a flow of the project.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ValidationError

from seamflow import connectors
from seamflow.errors import Problem
from seamflow.flows import load
from seamflow.ids import Json

__all__ = ["ConnectionInfo", "ReferenceChecks", "listed"]

_ACTION = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
_MAX_LISTED = 12


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """What validation needs to know of a connection: its connector and the connector's actions and feeds."""

    name: str
    connector: str
    actions: Mapping[str, connectors.Action]
    feeds: Mapping[str, connectors.Feed] = dataclasses.field(default_factory=dict)


def listed(names: list[str]) -> str:
    """`names` joined for a message, the first dozen and how many more."""
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else "")


class ReferenceChecks:
    """The reference checks of one flow, and the problems found so far; see the module docstring."""

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

    def add(self, path: load.JsonPath, problem: str, expected: str | None, *, at_key: bool = False) -> None:
        """Note a problem at the value (or, `at_key`, the key) at `path`."""
        self.problems.append(Problem(self.source_map.locate(path, at_key=at_key), problem, expected))

    def connection(self, name: str, path: load.JsonPath) -> ConnectionInfo | None:
        """The connection called `name`; an unknown one is a problem at `path`."""
        connection = self.connections.get(name)
        if connection is None:
            known = sorted(self.connections)
            expected = f"a connection of connections.yaml: {listed(known)}" if known else None
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
        expected = f"a {mode} feed: {listed(fitting)}" if fitting else f"a connection with {mode} feeds"
        offered = connection.feeds.get(feed_name)
        if offered is None:
            hint = load.suggest(feed_name, sorted(modes))
            offers = f"; it offers {listed(sorted(modes))}" if modes else "; it offers no feeds"
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
            self.add((*here, "action"), problem, f"one of: {listed(known)}")
            return
        given = step.get("with", {})
        if isinstance(given, dict):
            self.check_inputs(given, here, action, offered.input)
            literal_problems = getattr(offered.input, "literal_problems", None)  # a declared or OpenAPI
            for found in literal_problems(given) if literal_problems else []:  # operation's input schema
                path, problem = found[0], found[1]
                expected = found[2] if len(found) > 2 else "a value the operation's input schema allows"
                parts = [int(part) if part.isdigit() else part for part in path.split(".")] if path else []
                self.add((*here, "with", *parts), f"{action}: {problem}", expected)

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
                f"the id of a flow of this project: {listed(known)}" if known else "the id of a flow of this project",
            )
