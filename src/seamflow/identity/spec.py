"""The format of a resolution file (`identity/members.yaml`): which sources hold records of one
entity type, how their columns map to the entity's fields, how records are compared and when two
are the same, and how the golden record is built. Read with file:line:column for every problem.

```yaml
entity: member
id_prefix: M                       # unified IDs: M00000001, M00000002, …
fields:                            # the entity's fields and their kinds (how they are normalised)
  name: name
  mobile: phone
  email: email
  id_number: resident_id
  address: address
  points: integer
  updated: date
sources:
  pos:
    file: data/pos_members.csv     # CSV in any encoding (GBK too) or XLSX, relative to this file
    key: 会员编号
    trust: 3                       # most trusted wins in `most_trusted`
    columns: {name: 姓名, mobile: 手机, points: 积分, updated: 更新日期}
rules:                             # deterministic: the same normalised value is the same member
  - same: [id_number]
blocking:                          # which pairs are compared at all
  - [mobile]
  - [name.pinyin, mobile.tail4]
comparisons:                       # Fellegi–Sunter: a weight log2(m/u) per level
  name:
    exact: {m: 0.82, u: 0.0008}
    pinyin: {m: 0.1, u: 0.002}
    similar: {m: 0.05, u: 0.02}
    different: {m: 0.03, u: 0.98}
threshold: 0.95                    # the match probability at which a pair is linked
golden: {name: most_trusted, mobile: most_recent, address: most_complete, points: sum}
```
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from seamflow import errors, flows

__all__ = [
    "KIND_KEYS",
    "KIND_LEVELS",
    "FieldKind",
    "Level",
    "Resolution",
    "SourceSpec",
    "Survivorship",
    "load_resolution",
    "parse_resolution",
]


class FieldKind(StrEnum):
    """How a field is normalised and compared."""

    NAME = "name"
    PHONE = "phone"
    EMAIL = "email"
    RESIDENT_ID = "resident_id"
    USCC = "uscc"
    ADDRESS = "address"
    TEXT = "text"
    INTEGER = "integer"
    DECIMAL = "decimal"
    DATE = "date"


KIND_LEVELS: dict[FieldKind, tuple[str, ...]] = {
    FieldKind.NAME: ("exact", "pinyin", "similar", "different"),
    FieldKind.PHONE: ("exact", "one_typo", "different"),
    FieldKind.EMAIL: ("exact", "same_local", "similar", "different"),
    FieldKind.RESIDENT_ID: ("exact", "one_typo", "different"),
    FieldKind.USCC: ("exact", "different"),
    FieldKind.ADDRESS: ("exact", "similar", "partial", "different"),
    FieldKind.TEXT: ("exact", "similar", "different"),
}
"""The comparison levels of each comparable kind, best first; a missing value on either side is level `null`
(weight 0)."""

KIND_KEYS: dict[FieldKind, tuple[str, ...]] = {
    FieldKind.NAME: ("", "pinyin"),
    FieldKind.PHONE: ("", "tail4", "head7"),
    FieldKind.EMAIL: ("", "local"),
    FieldKind.RESIDENT_ID: ("", "birth"),
    FieldKind.USCC: ("",),
    FieldKind.ADDRESS: ("", "head6"),
    FieldKind.TEXT: ("",),
    FieldKind.INTEGER: ("",),
    FieldKind.DECIMAL: ("",),
    FieldKind.DATE: ("",),
}
"""The keys a blocking rule may name per kind: `mobile` (the value), `mobile.tail4`, `name.pinyin`, …"""


class Survivorship(StrEnum):
    """How the golden record takes a field from the cluster's records."""

    MOST_RECENT = "most_recent"
    MOST_TRUSTED = "most_trusted"
    MOST_COMPLETE = "most_complete"
    MOST_FREQUENT = "most_frequent"
    SUM = "sum"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Level(_Model):
    """A comparison level's m (share among true matches) and u (share among non-matches)."""

    m: float = Field(gt=0, le=1)
    u: float = Field(gt=0, le=1)


class SqlSource(_Model):
    """Rows of a query over a `sql` connection or a database URL."""

    connection: str | None = None
    url: str | None = None
    query: str

    @model_validator(mode="after")
    def _one_address(self) -> SqlSource:
        if (self.connection is None) == (self.url is None):
            raise ValueError("give exactly one of connection and url")
        return self


class HttpSource(_Model):
    """A REST list: GET `url` answers a JSON array, or an object whose `items` is one; `next` pages on."""

    url: str = Field(pattern=r"^https?://")
    items: str = Field("items", description="the member holding the array in an object answer")
    next: str | None = Field("next", description="the member holding the next page's URL (null: the last page)")
    timeout_s: float = Field(30, gt=0, le=600)


class WriteBack(_Model):
    """A connector action called once per source record whose unified ID changed."""

    connection: str
    action: str
    with_: dict[str, Any] | None = Field(
        None, alias="with", description="the inputs, templates over `key` and `unified_id` (default: both)"
    )


class SourceSpec(_Model):
    """One source of records: exactly one of `file`, `sql` and `http`."""

    file: str | None = None
    encoding: str = "auto"
    sheet: str | None = None
    sql: SqlSource | None = None
    http: HttpSource | None = None
    key: str = Field(description="the column that identifies a record in this source")
    trust: int = Field(1, ge=0, le=100, description="higher wins in `most_trusted`")
    columns: dict[str, str] = Field(min_length=1, description="entity field: source column")
    write_back: WriteBack | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> SourceSpec:
        if sum(x is not None for x in (self.file, self.sql, self.http)) != 1:
            raise ValueError("give exactly one of file, sql and http")
        return self


class Rule(_Model):
    """A deterministic rule: records whose normalised fields are all equal (and present) are the same."""

    same: list[str] = Field(min_length=1)


class Resolution(_Model):
    """One resolution file."""

    entity: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    id_prefix: str = Field("U", pattern=r"^[A-Z][A-Z0-9]{0,7}$")
    fields: dict[str, FieldKind] = Field(min_length=1)
    sources: dict[str, SourceSpec] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)
    blocking: list[list[str]] = Field(default_factory=list)
    comparisons: dict[str, dict[str, Level]] = Field(default_factory=dict)
    prior: float = Field(0.0001, gt=0, lt=1, description="the share of compared pairs expected to match")
    threshold: float = Field(0.95, gt=0, lt=1, description="the match probability at which a pair is linked")
    max_block: int = Field(64, ge=2, le=10_000, description="a blocking key shared by more records is skipped")
    golden: dict[str, Survivorship] = Field(default_factory=dict)
    updated: str | None = Field(None, description="the date field `most_recent` reads")

    @model_validator(mode="after")
    def _references(self) -> Resolution:
        problems = [
            *self._check_sources(),
            *self._check_rules(),
            *self._check_comparisons(),
            *(f"golden names {f!r}, which is not in fields" for f in self.golden if f not in self.fields),
        ]
        if self.updated is not None and self.updated not in self.fields:
            problems.append(f"updated names {self.updated!r}, which is not in fields")
        if not (self.rules or self.comparisons):
            problems.append("no rules and no comparisons: nothing would ever match")
        if self.comparisons and not self.blocking:
            problems.append("comparisons without blocking: give blocking rules so that not every pair is compared")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _check_sources(self) -> list[str]:
        return [
            f"sources.{name}.columns names {field!r}, which is not in fields"
            for name, source in self.sources.items()
            for field in source.columns
            if field not in self.fields
        ]

    def _check_rules(self) -> list[str]:
        found = [
            f"rules name {f!r}, which is not in fields" for r in self.rules for f in r.same if f not in self.fields
        ]
        for block in self.blocking:
            for key in block:
                field, _, part = key.partition(".")
                kind = self.fields.get(field)
                if kind is None:
                    found.append(f"blocking names {field!r}, which is not in fields")
                elif part not in KIND_KEYS[kind]:
                    keys = ", ".join(f"{field}.{k}" if k else field for k in KIND_KEYS[kind])
                    found.append(f"blocking key {key!r} is not one of {keys}")
        return found

    def _check_comparisons(self) -> list[str]:
        found = []
        for field, levels in self.comparisons.items():
            kind = self.fields.get(field)
            if kind is None:
                found.append(f"comparisons name {field!r}, which is not in fields")
                continue
            known = KIND_LEVELS.get(kind)
            if known is None:
                found.append(f"{field} is a {kind} field, which is not compared")
                continue
            missing = [level for level in known if level not in levels]
            extra = [level for level in levels if level not in known]
            if missing or extra:
                found.append(f"comparisons.{field} must give the levels {', '.join(known)}")
        return found

    def trust(self, source: str) -> int:
        """How much `source` is trusted (0 for a source this file does not list, as in real-time matches)."""
        found = self.sources.get(source)
        return found.trust if found is not None else 0


class ResolutionInvalid(errors.FlowInvalid):
    """A resolution file is broken; every problem has its file:line:column."""

    code = "identity.spec_invalid"


def load_resolution(path: Path, shown: str | None = None) -> Resolution:
    """Read a resolution file.

    Raises:
        errors.FlowInvalid: every problem with file:line:column (code `identity.spec_invalid`).
    """
    name = shown or str(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ResolutionInvalid(
            [errors.Problem(errors.Location(name), f"cannot be read: {exc.strerror}", "a resolution file")]
        ) from None
    return parse_resolution(text, name)


def parse_resolution(text: str | bytes, name: str) -> Resolution:
    """Parse the text of a resolution file named `name` (for the error locations)."""
    try:
        data, source = flows.load.parse_yaml(text, name)
    except errors.FlowInvalid as exc:
        raise ResolutionInvalid(exc.problems) from None
    try:
        return Resolution.model_validate(data)
    except ValidationError as exc:
        problems = [
            errors.Problem(
                source.locate(tuple(detail["loc"]), at_key=detail["type"] == "extra_forbidden"),
                detail["msg"],
            )
            for detail in exc.errors(include_url=False, include_input=False)
        ]
        raise ResolutionInvalid(problems) from None
