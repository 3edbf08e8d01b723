"""The format of a migration file (`seamflow migrate MAPPING.yaml`): a source, a field mapping,
rules, and a target, read with file:line:column for every problem.

```yaml
id: members-2019
source:
  file: exports/会员资料.csv          # CSV in any encoding (GBK too) or .xlsx
key: [member_no]                      # target fields that identify a row: writes are upserts on them
fields:                               # target field: source column
  member_no: 会员编号
  name: 姓名
  mobile: 手机
  balance: 储值余额
rules: rules/members.yaml
target:
  sql: {connection: crm_db, table: members}
batch: 1000
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from seamflow import errors, flows

__all__ = ["ActionTarget", "Mapping", "SourceSpec", "SqlSource", "SqlTarget", "TargetSpec", "load_mapping"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SqlSource(_Model):
    """Rows of a query; it must order its rows (`ORDER BY` a key) so a resumed run skips the same ones."""

    connection: str | None = Field(None, description="a `sql` connection of connections.yaml")
    url: str | None = Field(None, description="or a database URL (no password: use a connection for that)")
    query: str

    @model_validator(mode="after")
    def _one_address(self) -> SqlSource:
        if (self.connection is None) == (self.url is None):
            raise ValueError("give exactly one of connection and url")
        return self


class SourceSpec(_Model):
    """Where rows come from: exactly one of `file` and `sql`."""

    file: str | None = Field(None, description="a CSV or XLSX file, relative to the migration file")
    encoding: str = Field("auto", description="the CSV's encoding: auto, utf-8, gbk, gb18030, …")
    sheet: str | None = Field(None, description="the XLSX sheet (default: the first)")
    sql: SqlSource | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> SourceSpec:
        if (self.file is None) == (self.sql is None):
            raise ValueError("give exactly one of file and sql")
        return self


class SqlTarget(_Model):
    """A table written with upserts on the migration's key (it must have a unique key on those columns)."""

    connection: str | None = None
    url: str | None = None
    table: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
    create: bool = Field(False, description="create the table (text columns, the key as primary key) if missing")

    @model_validator(mode="after")
    def _one_address(self) -> SqlTarget:
        if (self.connection is None) == (self.url is None):
            raise ValueError("give exactly one of connection and url")
        return self


class ActionTarget(_Model):
    """A connector action called once per row with the row as its input and an idempotency key from the row's key."""

    connection: str
    action: str
    with_: dict[str, Any] | None = Field(
        None, alias="with", description="the action's inputs, templates over `row` (default: the row itself)"
    )
    parallel: int = Field(8, ge=1, le=64)


class TargetSpec(_Model):
    """Where rows go: exactly one of `sql` and `action`."""

    sql: SqlTarget | None = None
    action: ActionTarget | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> TargetSpec:
        if (self.sql is None) == (self.action is None):
            raise ValueError("give exactly one of sql and action")
        return self


class Mapping(_Model):
    """One migration file."""

    id: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")
    source: SourceSpec
    key: list[str] = Field(min_length=1)
    fields: dict[str, str] = Field(min_length=1, description="target field: source column")
    rules: str | None = Field(None, description="a rule file, relative to the migration file")
    target: TargetSpec
    batch: int = Field(1000, ge=1, le=100_000)

    @model_validator(mode="after")
    def _key_mapped(self) -> Mapping:
        missing = [name for name in self.key if name not in self.fields]
        if missing:
            raise ValueError(f"key fields {', '.join(missing)} are not in fields")
        return self


class MappingInvalid(errors.FlowInvalid):
    """A migration file is broken; every problem has its file:line:column."""

    code = "quality.mapping_invalid"


def load_mapping(path: Path, shown: str | None = None) -> tuple[Mapping, Any]:
    """Read a migration file; returns the mapping and its source map.

    Raises:
        errors.FlowInvalid: every problem with file:line:column.
    """
    name = shown or str(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise MappingInvalid(
            [errors.Problem(errors.Location(name), f"cannot be read: {exc.strerror}", "a migration file")]
        ) from None
    try:
        data, source = flows.load.parse_yaml(text, name)
    except errors.FlowInvalid as exc:  # YAML syntax: the same problems, under this file's code
        raise MappingInvalid(exc.problems) from None
    try:
        return Mapping.model_validate(data), source
    except ValidationError as exc:
        problems = [
            errors.Problem(
                source.locate(tuple(detail["loc"]), at_key=detail["type"] == "extra_forbidden"), detail["msg"]
            )
            for detail in exc.errors(include_url=False, include_input=False)
        ]
        raise MappingInvalid(problems) from None
