"""Validating a project: its flow files with connections.yaml, all their problems at once."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import BaseModel, ConfigDict

from seamflow import connectors, errors
from seamflow.flows import load, validate
from seamflow.ids import Json


class NotifyInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str


class FakeChat:
    """A connector kind for tests: one action with a required input."""

    kind: ClassVar[str] = "chat"
    Config: ClassVar[type[BaseModel]] = BaseModel
    actions: ClassVar[Mapping[str, connectors.Action]] = {"notify": connectors.Action("notify", NotifyInput)}

    async def open(self, connection: connectors.Connection) -> None:
        pass

    async def call(self, action: str, params: Json, *, idempotency_key: str) -> Json:
        return None

    async def close(self) -> None:
        pass


KINDS: dict[str, type[connectors.Connector]] = {"chat": FakeChat}

NOTIFY = """\
id: notify
trigger: {webhook: {path: ops/notify}}
steps:
  - id: send
    action: team.notify
    with: {text: "{{ event.body.text }}"}
  - id: audit
    call: audit-log
"""
AUDIT = """\
id: audit-log
trigger: {manual: {}}
steps:
  - {id: record, emit: {activity: Notified}}
"""


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def problems_of(root: Path, connections: Path | None) -> list[str]:
    with pytest.raises(errors.FlowInvalid) as caught:
        validate.validate_project(root / "flows", connections, kinds=KINDS)
    return [str(problem).replace(f"{root}/", "") for problem in caught.value.problems]


def test_valid_project_gives_every_flow_with_its_version(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "flows/notify.yaml": NOTIFY,
            "flows/internal/audit.yml": AUDIT,
            "flows/README.md": "not a flow",
            "connections.yaml": "team: {connector: chat, token: '{{ secrets.chat }}'}\n",
        },
    )
    project = validate.validate_project(tmp_path / "flows", tmp_path / "connections.yaml", kinds=KINDS)
    assert sorted(project.flows) == ["audit-log", "notify"]
    loaded = project.flows["notify"]
    assert loaded.path == tmp_path / "flows/notify.yaml"
    assert loaded.version == load.flow_version(NOTIFY.encode())
    assert loaded.source_map.values[("steps", 0, "action")] == (5, 13)
    assert project.connections == {"team": {"connector": "chat", "token": "{{ secrets.chat }}"}}


def test_problems_of_every_file_are_reported_at_once(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "flows/a_broken.yaml": "id: a\ntrigger: {manual: {}\n",
            "flows/b_notify.yaml": NOTIFY.replace("text:", "txt:"),
            "flows/c_same_id.yaml": AUDIT.replace("manual: {}", "webhook: {path: ops/notify/}"),
            "flows/d_audit.yaml": AUDIT,
            "connections.yaml": "team: {connector: chat}\nerp: {connector: kingdee}\n",
        },
    )
    assert problems_of(tmp_path, tmp_path / "connections.yaml") == [
        "connections.yaml:2:18 erp.connector: unknown connector 'kingdee'; expected an installed connector: chat",
        "flows/a_broken.yaml:3:1: the { opened at 2:10 is not closed before this point; "
        "expected a , between items or a closing }",
        "flows/b_notify.yaml:6:5 steps[0].with: missing required input 'text' of team.notify; "
        "expected inputs text (required)",
        "flows/b_notify.yaml:6:12 steps[0].with.txt: unknown input 'txt' of team.notify; did you mean 'text'?",
        "flows/c_same_id.yaml:2:27 trigger.webhook.path: webhook path 'ops/notify' is already "
        "used at flows/b_notify.yaml:2:27 trigger.webhook.path; "
        "expected a webhook path used by one flow only",
        "flows/d_audit.yaml:1:5 id: flow id 'audit-log' is already used at "
        "flows/c_same_id.yaml:1:5 id; expected a flow id used by one flow only",
    ]


def test_without_connections_an_action_names_the_missing_connection(tmp_path: Path) -> None:
    write(tmp_path, {"flows/notify.yaml": NOTIFY, "flows/audit.yaml": AUDIT})
    assert problems_of(tmp_path, None) == [
        "flows/notify.yaml:5:13 steps[0].action: unknown connection 'team'; "
        "expected a connection declared in connections.yaml (there are none)",
    ]


def test_missing_flows_folder_is_reported(tmp_path: Path) -> None:
    assert problems_of(tmp_path, None) == ["flows: not a directory; expected the folder of the flow files"]


def test_check_project_keeps_the_valid_files_and_lists_the_problems_of_the_others(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "flows/notify.yaml": NOTIFY,
            "flows/audit.yml": AUDIT,
            "flows/broken.yaml": "id: broken\ntrigger: {manual: {}\n",
            "connections.yaml": "team: {connector: chat}\n",
        },
    )
    project, problems = validate.check_project(tmp_path / "flows", tmp_path / "connections.yaml", kinds=KINDS)
    assert sorted(project.flows) == ["audit-log", "notify"]
    assert [p.where.file for p in problems] == [str(tmp_path / "flows/broken.yaml")]
    assert problems[0].where.line == 3


def test_check_project_loads_neither_file_that_claims_a_taken_flow_id(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "flows/a_audit.yml": AUDIT,
            "flows/b_audit_again.yml": AUDIT.replace("manual: {}", "webhook: {path: audit}"),
            "flows/notify.yaml": NOTIFY,
            "connections.yaml": "team: {connector: chat}\n",
        },
    )
    project, problems = validate.check_project(tmp_path / "flows", tmp_path / "connections.yaml", kinds=KINDS)
    assert "flow id 'audit-log' is already used at" in str(problems[0])
    assert problems[0].where.file == str(tmp_path / "flows/b_audit_again.yml")
    assert "audit-log" in project.flows and project.flows["audit-log"].path.name == "a_audit.yml"
