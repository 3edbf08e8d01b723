"""The `identity` connection: a record matched on arrival inside a flow (`action: identity.match`).

```yaml
# connections.yaml
identity:
  connector: identity
  resolutions: identity        # the folder of resolution files (default: identity)
```
```yaml
# a step of a flow: a new POS member
- id: member
  action: identity.match
  with: {resolution: members, source: pos, key: "{{ event.body.member_no }}", record: "{{ event.body }}"}
```
`record` maps the entity's fields (as the resolution file names them) to the values. The step's
output is `{unified_id, is_new, candidates, matched, probability}`; the record is stored with its
unified ID and its cluster's golden record is refreshed. Matching the same record again gives the
same unified ID, so the action is idempotent. The process serves the connection over its store.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from seamflow import connectors, errors, store
from seamflow.identity.resolver import Resolver
from seamflow.identity.spec import load_resolution
from seamflow.ids import Json

__all__ = ["IdentityConnector"]


class IdentityConfig(BaseModel):
    """The settings of an `identity` connection."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    resolutions: str = "identity"
    """The folder of resolution files (`<id>.yaml`), relative to the project folder."""


class MatchInput(BaseModel):
    """The inputs of `identity.match`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    resolution: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", description="the id of a resolution file")
    source: str = Field(min_length=1, max_length=64, description="the system the record comes from")
    key: str = Field(min_length=1, max_length=256, description="the record's key in that system")
    record: dict[str, Any] = Field(description="entity field → value")


class IdentityConnector:
    """Serves `identity.match` over the process's store; resolution files are read on first use and kept."""

    kind: ClassVar[str] = "identity"
    Config: ClassVar[type[BaseModel]] = IdentityConfig
    actions: ClassVar[Mapping[str, connectors.Action]] = {
        "match": connectors.Action(
            "match", MatchInput, "Match a record on arrival: its unified ID, new or of an existing member.", True
        ),
    }

    def __init__(self, db: store.IdentityStore | None = None, folder: Path | None = None) -> None:
        """Args:
        db: the process's store.
        folder: the resolution files' folder (the project's `identity/`, or the connection's `resolutions:`).
        """
        self._db = db
        self._folder = folder or Path("identity")
        self._resolvers: dict[str, Resolver] = {}

    async def open(self, connection: connectors.Connection) -> None:
        """Check the settings; the process gave the folder (it knows the project's)."""
        connectors.parse_config(IdentityConfig, connection)

    async def close(self) -> None:
        """Nothing to release: the store is the process's."""

    def _resolver(self, name: str) -> Resolver:
        found = self._resolvers.get(name)
        if found is not None:
            return found
        path = self._folder / f"{name}.yaml"
        if not path.is_file():
            raise errors.Permanent(
                f"resolution file {name}.yaml is not in {self._folder}",
                where="identity.match",
                code="identity.resolution_missing",
            )
        if self._db is None:
            raise errors.Permanent("the identity connection has no store", where="identity.match")
        try:
            resolution = load_resolution(path, f"identity/{name}.yaml")
        except errors.FlowInvalid as exc:
            raise errors.Permanent(exc.message, where="identity.match", code="identity.spec_invalid") from None
        found = self._resolvers[name] = Resolver(self._db, resolution, base=path.parent)
        return found

    async def call(self, action: str, params: Json, *, idempotency_key: str) -> Json:
        """`match`: the record's unified ID; matching the same record twice gives the same ID."""
        if action != "match":
            raise errors.Permanent(f"unknown action {action!r}; expected match", where=f"identity.{action}")
        try:
            request = MatchInput.model_validate(params)
        except ValidationError as exc:
            details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise errors.Permanent(details, where="identity.match", code="identity.invalid_input") from None
        result = await self._resolver(request.resolution).match(request.source, request.key, request.record)
        return result.as_json()
