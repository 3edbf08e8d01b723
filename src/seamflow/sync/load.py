"""Reading a project's canonical models (`models/*.yaml`) and syncs (`syncs/*.yaml`), and the flows a sync runs as.

Every problem is reported with its file:line:column, as for flow files. A sync is checked
against its model (every mapped, owned and matched field must be a model field) and its
connections (they must be defined in connections.yaml).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from seamflow import errors
from seamflow.flows import load, spec
from seamflow.sync.model import Model
from seamflow.sync.spec import Sync

__all__ = ["SyncProject", "generated_flows", "load_project"]

M = TypeVar("M", bound=BaseModel)


@dataclass(slots=True)
class SyncProject:
    """The models and syncs of a project."""

    models: dict[str, Model] = field(default_factory=dict)
    syncs: dict[str, Sync] = field(default_factory=dict)


def load_project(root: Path, connections: Mapping[str, Any]) -> SyncProject:
    """Load and check `models/` and `syncs/` under `root` (both optional).

    Raises:
        errors.FlowInvalid: every problem found, with positions.
    """
    project = SyncProject()
    problems: list[errors.Problem] = []
    for path, document in _documents(root / "models", problems):
        model = _validate(Model, path, document, problems)
        if model is not None:
            project.models[model.id] = model
    for path, document in _documents(root / "syncs", problems):
        sync = _validate(Sync, path, document, problems)
        if sync is None:
            continue
        _, source_map = document
        model = project.models.get(sync.model)
        if model is None:
            known = ", ".join(sorted(project.models)) or "none (add models/<id>.yaml)"
            problems.append(errors.Problem(source_map.locate(("model",)), f"unknown model {sync.model!r}", known))
            continue
        fields = set(model.fields)
        for name, side in sync.sides.items():
            if side.connection not in connections:
                problems.append(
                    errors.Problem(
                        source_map.locate(("sides", name, "connection")),
                        f"connection {side.connection!r} is not defined",
                        f"one of {', '.join(sorted(connections)) or 'none'} (connections.yaml)",
                    )
                )
            for canonical in side.fields:
                if canonical not in fields:
                    problems.append(
                        errors.Problem(
                            source_map.locate(("sides", name, "fields", canonical), at_key=True),
                            f"{canonical!r} is not a field of model {model.id}",
                            ", ".join(sorted(fields)),
                        )
                    )
        expected = ", ".join(sorted(fields))
        for canonical in sync.ownership:
            if canonical not in fields:
                at = source_map.locate(("ownership", canonical), at_key=True)
                problems.append(errors.Problem(at, f"{canonical!r} is not a field of model {model.id}", expected))
        for index, canonical in enumerate(sync.match):
            if canonical not in fields:
                at = source_map.locate(("match", index))
                problems.append(errors.Problem(at, f"{canonical!r} is not a field of model {model.id}", expected))
        project.syncs[sync.id] = sync
    if problems:
        raise errors.FlowInvalid(problems)
    return project


def _where(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def _documents(folder: Path, problems: list[errors.Problem]) -> list[tuple[Path, tuple[Any, load.SourceMap]]]:
    found = []
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        try:
            found.append((path, load.parse_yaml(path.read_bytes(), _where(path))))
        except errors.FlowInvalid as exc:
            problems.extend(exc.problems)
    return found


def _validate(
    model: type[M], path: Path, document: tuple[Any, load.SourceMap], problems: list[errors.Problem]
) -> M | None:
    data, source_map = document
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for detail in exc.errors(include_url=False, include_input=False):
            where = source_map.locate(tuple(detail["loc"]))
            problems.append(errors.Problem(where, detail["msg"]))
        return None


def generated_flows(project: SyncProject) -> dict[str, tuple[spec.Flow, str]]:
    """The flow of each side whose changes a sync reads: `sync.<sync>.<side>`, with its YAML text."""
    flows: dict[str, tuple[spec.Flow, str]] = {}
    for sync in project.syncs.values():
        for name, side in sync.sides.items():
            if side.changes is None or (sync.mode.value == "one_way" and name != sync.source):
                continue
            record, deleted = "{{ event.body }}", None
            if side.changes.poll is not None:
                poll = side.changes.poll
                trigger: dict[str, Any] = {
                    "poll": {
                        "connection": side.connection,
                        "feed": poll.feed,
                        "with": poll.with_,
                        "every": f"{poll.every.total_seconds():g}s",
                        "batch": poll.batch,
                    }
                }
            else:
                hook = side.changes.webhook
                assert hook is not None
                webhook: dict[str, Any] = {"path": hook.path}
                if hook.secret:
                    webhook["signature"] = {"secret": hook.secret, "header": hook.header, "prefix": hook.prefix}
                trigger = {"webhook": webhook}
                record, deleted = hook.record, hook.deleted
            flow = {
                "id": f"sync.{sync.id}.{name}",
                "trigger": trigger,
                "steps": [
                    {
                        "id": "apply",
                        "action": "sync.apply",
                        "with": {"sync": sync.id, "side": name, "record": record, "deleted": deleted or False},
                        "retry": {"attempts": 8, "initial_delay": "1s", "max_delay": "1m"},
                    }
                ],
                "on_error": "dead_letter",
            }
            text = (
                "# generated from syncs/"
                + sync.id
                + ".yaml\n"
                + yaml.safe_dump(flow, allow_unicode=True, sort_keys=False)
            )
            flows[str(flow["id"])] = (spec.Flow.model_validate(flow), text)
    return flows
