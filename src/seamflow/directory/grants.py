"""Grants: a permission role on one flow, or on every flow under a folder of the flows folder.

A grant is held by a user (`user:<login>`), by every member of a department (`department:<id>`,
its direct members) or by every holder of a position (`position:<id>`). Its target is
`flow:<flow id>` or `folder:<path>/` — a folder of the project's `flows/` folder (`folder:finance/`
covers `flows/finance/pay.yaml` and `flows/finance/ap/refund.yaml`). What a principal may do on a
flow is its global scopes (`users.roles`) plus the scopes of the grants that cover the flow,
never more than its token allows (`Principal.scopes_on`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from seamflow import errors
from seamflow.directory.model import ROLE_SCOPES, Role, Scope

__all__ = ["FlowGrant", "FlowRef", "check_subject", "check_target", "covers", "folder_of"]

_FLOW = re.compile(r"^flow:[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")
_FOLDER = re.compile(r"^folder:(?:[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}/){1,10}$")
_SUBJECT = re.compile(r"^(user|department|position):[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")


@dataclass(frozen=True, slots=True)
class FlowRef:
    """A flow as a grant sees it: its id and the folder of its file under `flows/` (`finance/`, `` at the top)."""

    flow_id: str
    folder: str | None = None
    """None when the flow has no file under `flows/` (a sync's generated flow, a removed flow):
    then only `flow:` grants cover it."""


@dataclass(frozen=True, slots=True)
class FlowGrant:
    """A role held on a target, as scopes."""

    target: str
    role: Role

    @property
    def scopes(self) -> frozenset[Scope]:
        """The scopes the role grants on the target."""
        return ROLE_SCOPES[self.role]


def check_target(text: str) -> str:
    """A grant's target in its stored form (`folder:finance` gains its trailing `/`).

    Raises:
        errors.InvalidInput: `directory.grant_invalid` — neither `flow:<id>` nor `folder:<path>/`.
    """
    value = text.strip()
    if value.startswith("folder:") and not value.endswith("/"):
        value += "/"
    if _FLOW.match(value) or (_FOLDER.match(value) and ".." not in value.split("/")):
        return value
    raise errors.InvalidInput(
        f"grant target {errors.redact(text)} is not valid; expected flow:<flow id> (flow:pay-invoice) or"
        " folder:<path>/ of the flows folder (folder:finance/)",
        code="directory.grant_invalid",
    )


def check_subject(text: str) -> str:
    """Who holds a grant, in its stored form; a bare login means `user:<login>`.

    Raises:
        errors.InvalidInput: `directory.grant_invalid` — not `user:`, `department:` or `position:` and an id.
    """
    value = text.strip()
    if ":" not in value:
        value = f"user:{value}"
    if _SUBJECT.match(value):
        return value
    raise errors.InvalidInput(
        f"grant subject {errors.redact(text)} is not valid; expected a login (zhangwei), user:<login>,"
        " department:<id> or position:<id>",
        code="directory.grant_invalid",
    )


def covers(target: str, flow: FlowRef) -> bool:
    """Whether a grant on `target` applies to `flow`."""
    if target.startswith("flow:"):
        return target[len("flow:") :] == flow.flow_id
    if target.startswith("folder:") and flow.folder is not None:
        return flow.folder.startswith(target[len("folder:") :])
    return False


def folder_of(path: str, flows_root: Path | None) -> str | None:
    """The folder of a flow file relative to the flows folder (`finance/`, `` at the top); None if outside it."""
    if flows_root is None or path.startswith("<"):
        return None
    try:
        relative = Path(path).resolve().relative_to(flows_root.resolve())
    except ValueError:
        return None
    parent = PurePosixPath(relative.as_posix()).parent
    return "" if str(parent) == "." else f"{parent}/"
