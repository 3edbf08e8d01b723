"""The `quality` connection: rule files applied to a record inside a flow (`action: quality.validate`).

```yaml
# connections.yaml
quality:
  connector: quality
  rules: rules            # the folder of rule files, relative to the project (default: rules)
```
```yaml
# a step of a flow
- id: member
  action: quality.validate
  with: {rules: members, record: "{{ event.body }}"}
```
The step's output is `{valid, record, fixed, violations}`: the record normalised (phones in E.164,
amounts as Decimal, dates ISO). A record that breaks a rule fails the step for good (the run goes
to the dead letters with every rule it broke) unless `on_invalid: report` asks for the output anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from seamflow import connectors, errors
from seamflow.ids import Json
from seamflow.quality.rules import RuleSet, load_rules

__all__ = ["QualityConnector"]


class QualityConfig(BaseModel):
    """The settings of a `quality` connection."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    rules: str = "rules"
    """The folder of rule files (`<id>.yaml`), relative to the project folder."""


class ValidateInput(BaseModel):
    """The inputs of `quality.validate`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    rules: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", description="the id of a rule file")
    record: dict[str, Any] = Field(description="the record to check")
    on_invalid: Literal["fail", "report"] = Field("fail", description="fail the step, or report and go on")


class QualityConnector:
    """Serves `quality.validate`; rule files are read on first use and kept."""

    kind: ClassVar[str] = "quality"
    Config: ClassVar[type[BaseModel]] = QualityConfig
    actions: ClassVar[Mapping[str, connectors.Action]] = {
        "validate": connectors.Action(
            "validate", ValidateInput, "Check and normalise a record against a rule file.", True
        ),
    }

    def __init__(self) -> None:
        self._folder = Path("rules")
        self._rules: dict[str, RuleSet] = {}

    async def open(self, connection: connectors.Connection) -> None:
        """Find the rule folder: relative to the project (the folder above `.seamflow/`)."""
        config = connectors.parse_config(QualityConfig, connection)
        folder = Path(config.rules)
        if not folder.is_absolute() and connection.state_dir is not None:
            folder = connection.state_dir.parent.parent.parent / folder  # <project>/.seamflow/connections/<name>
        self._folder = folder

    async def close(self) -> None:
        """Nothing to release."""

    def _rule_set(self, rules_id: str) -> RuleSet:
        found = self._rules.get(rules_id)
        if found is None:
            path = self._folder / f"{rules_id}.yaml"
            if not path.is_file():
                raise errors.Permanent(
                    f"rule file {rules_id}.yaml is not in {self._folder}",
                    where="quality.validate",
                    code="quality.rules_missing",
                )
            try:
                found = load_rules(path, f"rules/{rules_id}.yaml")
            except errors.FlowInvalid as exc:
                raise errors.Permanent(exc.message, where="quality.validate", code="quality.rules_invalid") from None
            self._rules[rules_id] = found
        return found

    async def call(self, action: str, params: Json, *, idempotency_key: str) -> Json:
        """`validate`: the record checked and normalised; a pure function of its inputs, so idempotent."""
        if action != "validate":
            raise errors.Permanent(f"unknown action {action!r}; expected validate", where=f"quality.{action}")
        try:
            request = ValidateInput.model_validate(params)
        except ValidationError as exc:
            details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise errors.Permanent(details, where="quality.validate", code="quality.invalid_input") from None
        outcome = self._rule_set(request.rules).check(request.record)
        violations: list[Json] = [v.as_json() for v in outcome.violations]
        if violations and request.on_invalid == "fail":
            broken = "; ".join(f"{v.rule}: {v.message}" for v in outcome.violations)
            raise errors.Permanent(
                f"the record breaks rules {request.rules}: {broken}",
                where="quality.validate",
                code="quality.record_invalid",
            )
        record: dict[str, Json] = dict(outcome.values)
        return {"valid": not violations, "record": record, "fixed": list(outcome.fixed), "violations": violations}
