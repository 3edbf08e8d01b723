"""The format of a rule file (`rules/<id>.yaml`): fields with a type and constraints, cross-field
checks and reference checks. Pydantic models, read with positions by `rules.load_rules`.

```yaml
id: customers
fields:
  member_no: {required: true, regex: '^M\\d{8}$'}
  mobile: {type: mobile_cn, required: true}
  id_number: {type: resident_id}
  balance: {type: amount, min: 0, max: 1000000}
  level: {enum: [普通会员, 银卡会员, 金卡会员]}
checks:
  - id: gold_needs_mobile
    if: "{{ row.level == '金卡会员' }}"
    assert: "{{ row.mobile is not none }}"
    message: 金卡会员必须有手机号
references:
  - field: store_code
    connection: erp
    action: list_stores
    key: code
```
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Check", "FieldRule", "Reference", "RuleFile"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class FieldRule(_Model):
    """What one field must be."""

    type: str = Field("string", description="a built-in type: string, integer, amount, mobile_cn, resident_id, …")
    required: bool = Field(False, description="an empty or missing value is a violation")
    clean: bool = Field(True, description="fold full-width forms and collapse whitespace before checking")
    min: Any = Field(None, description="smallest allowed value (numbers, amounts, dates)")
    max: Any = Field(None, description="largest allowed value (numbers, amounts, dates)")
    min_length: int | None = Field(None, ge=0, description="fewest characters")
    max_length: int | None = Field(None, ge=0, description="most characters")
    enum: list[Any] | None = Field(None, min_length=1, description="the allowed values")
    regex: str | None = Field(None, description="a pattern the whole (normalised) value must match")


class Check(_Model):
    """A rule over several fields of one row, as an expression over `row`."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    if_: str | None = Field(None, alias="if", description="the check applies only when this is true")
    assert_: str = Field(alias="assert", description="true for a good row")
    message: str | None = Field(None, description="what is wrong, in words for the data steward")


class Reference(_Model):
    """A field whose value must exist in another system, read once through a connection's action."""

    field: str
    connection: str
    action: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    key: str = Field(description="the field of each returned record that holds the value")


class RuleFile(_Model):
    """One rule file."""

    id: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")
    fields: dict[str, FieldRule] = Field(default_factory=dict)
    checks: list[Check] = Field(default_factory=list)
    references: list[Reference] = Field(default_factory=list)
