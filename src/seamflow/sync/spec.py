"""The sync file format (`syncs/<id>.yaml`): two systems, a canonical model, ownership, policies.

```yaml
id: customers
model: customer                  # models/customer.yaml
mode: two_way                    # or one_way with `source: crm`
match: [tax_id]                  # link records first seen on both sides by these fields
ownership: {name: crm, phone: crm, credit_limit: erp}   # the owner's value wins
conflicts: latest                # fields nobody owns: latest change wins, or `queue` for a person
deletes: deactivate              # propagate | deactivate | flag
sides:
  crm: {connection: crm, key: id, updated: updated_at, fields: {name: name, phone: mobile}, ...}
  erp: {...}
```
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from seamflow import flows

__all__ = ["Changes", "Conflicts", "CountSpec", "Deletes", "ListSpec", "Mode", "Side", "Sync", "Write"]

_ID = r"^[a-z][a-z0-9_]{0,62}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Mode(StrEnum):
    ONE_WAY = "one_way"
    TWO_WAY = "two_way"


class Conflicts(StrEnum):
    """How a field nobody owns is settled when both systems changed it."""

    LATEST = "latest"
    """The change with the later time wins; the losing value is recorded."""
    QUEUE = "queue"
    """A person decides: the conflict waits in the queue with both values."""


class Deletes(StrEnum):
    """What a record deleted (or deactivated) on one side does to the other."""

    PROPAGATE = "propagate"
    """Delete it on the other side too (its `delete` write)."""
    DEACTIVATE = "deactivate"
    """Set the canonical `active` field to false on the other side."""
    FLAG = "flag"
    """Change nothing; put a conflict in the queue for a person."""


class PollChanges(_Model):
    feed: str = Field(pattern=_ID)
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    every: flows.Duration = timedelta(seconds=10)
    batch: int = Field(200, ge=1, le=10_000)


class WebhookChanges(_Model):
    path: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,199}$")
    record: str = Field("{{ event.body }}", description="template: the changed record in the webhook body")
    deleted: str | None = Field(None, description="template: true when the webhook reports a deletion")
    secret: str | None = Field(None, description="template for the HMAC-SHA256 signature secret")
    header: str = "X-Signature"
    prefix: str = ""


class Changes(_Model):
    """How the sync notices a change on this side: polling a feed, or a webhook."""

    poll: PollChanges | None = None
    webhook: WebhookChanges | None = None

    @model_validator(mode="after")
    def _one(self) -> Changes:
        if (self.poll is None) == (self.webhook is None):
            raise ValueError("give exactly one of poll or webhook")
        return self


class Write(_Model):
    """An action of the side's connection that writes a record; templates see `record`, `key`, `canonical_id`."""

    action: str = Field(pattern=_ID)
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    key: str | None = Field(None, description="create only: template giving the new record's key from `result`")


class CountSpec(_Model):
    """An action counting the side's records (for the progress bar of `seamflow sync load`)."""

    action: str = Field(pattern=_ID)
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    value: str = Field("rows.0.n", description="dotted path of the number in the action's result")


class ListSpec(_Model):
    """An action listing every record of the side, for `seamflow sync check` and `seamflow sync load`.

    For a large side, the connection's connector should read it as a stream (the sql connector's
    `query` with `key`): `sync load` then reads it in resumable chunks instead of all at once.
    """

    action: str = Field(pattern=_ID)
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    items: str = Field("rows", description="dotted path of the list in the action's result")
    count: CountSpec | None = None


class Side(_Model):
    """One system of the sync."""

    connection: str = Field(pattern=_ID)
    key: str = Field(description="the field of a record holding its id in this system")
    updated: str | None = Field(None, description="the field with the record's last change time")
    fields: dict[str, str] = Field(description="canonical field: this system's field")
    active: str | None = Field(None, description="this system's field that is false for a deactivated record")
    deleted: str | None = Field(None, description="this system's field that is true for a deleted record")
    changes: Changes | None = None
    create: Write | None = None
    update: Write | None = None
    delete: Write | None = None
    list: ListSpec | None = None


class Sync(_Model):
    """A sync of one object type between two systems."""

    id: str = Field(pattern=_ID)
    model: str = Field(pattern=_ID)
    mode: Mode = Mode.TWO_WAY
    source: str | None = Field(None, description="one_way: the side changes flow from")
    match: list[str] = Field(default_factory=list)
    ownership: dict[str, str] = Field(default_factory=dict)
    conflicts: Conflicts = Conflicts.LATEST
    deletes: Deletes = Deletes.DEACTIVATE
    sides: dict[str, Side]

    @model_validator(mode="after")
    def _coherent(self) -> Sync:
        if len(self.sides) != 2:
            raise ValueError(f"a sync has exactly two sides; got {len(self.sides)}")
        for field, owner in self.ownership.items():
            if owner not in self.sides:
                raise ValueError(f"ownership.{field}: {owner!r} is not a side; expected one of {', '.join(self.sides)}")
        if self.mode is Mode.ONE_WAY and self.source not in self.sides:
            raise ValueError(f"mode one_way needs `source`: one of {', '.join(self.sides)}")
        for name, side in self.sides.items():
            if self.mode is Mode.TWO_WAY or name == self.source:
                if side.changes is None:
                    raise ValueError(f"sides.{name}: changes are read from this side; give `changes`")
            if self.mode is Mode.TWO_WAY or name != self.source:
                if side.create is None or side.update is None:
                    raise ValueError(f"sides.{name}: records are written to this side; give `create` and `update`")
        return self

    def other(self, side: str) -> str:
        """The side that is not `side`."""
        return next(s for s in self.sides if s != side)

    def targets(self, side: str) -> list[str]:
        """Sides a change on `side` is written to."""
        if self.mode is Mode.ONE_WAY:
            return [] if side != self.source else [self.other(side)]
        return [self.other(side)]
