"""Rule sets: a rule file read with positions and compiled to one function per field, then applied
to rows. Used by the `quality.validate` action of flows, by `seamflow data profile` and by
`seamflow migrate`; every broken rule file is reported with file:line:column.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from seamflow import errors, flows
from seamflow.ids import Json
from seamflow.quality.spec import FieldRule, RuleFile
from seamflow.quality.text import clean_text
from seamflow.quality.validators import VALIDATORS

__all__ = ["Outcome", "RuleSet", "Violation", "load_rules", "parse_rules"]

_NUMERIC = frozenset({"integer", "decimal", "amount"})
_ROW = frozenset({"row"})


@dataclass(frozen=True, slots=True)
class Violation:
    """One rule a row broke: `rule` is `<field>.<check>` (`mobile.type`) or `checks.<id>`."""

    rule: str
    message: str

    def as_json(self) -> dict[str, Json]:
        return {"rule": self.rule, "message": self.message}


@dataclass(slots=True)
class Outcome:
    """A row after its rules: the normalised values, the fields changed by normalising, what it broke."""

    values: dict[str, Any]
    fixed: list[str] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)

    @property
    def is_valid(self) -> bool:
        return not self.violations


_FieldCheck = Callable[[object, Outcome], None]
_MEMO_LIMIT = 20_000
"""Values remembered per field; a column of repeated values (dates, provinces) is validated once per value."""
_UNSEEN = object()
_EMPTY = object()


@dataclass(frozen=True, slots=True)
class _Refusal:
    message: str


class RuleSet:
    """A compiled rule file; `check` applies it to one row."""

    def __init__(self, rules: RuleFile, source: flows.load.SourceMap | None = None) -> None:
        self.rules = rules
        self.id = rules.id
        where = source or flows.load.SourceMap(f"rules/{rules.id}.yaml")
        problems: list[errors.Problem] = []
        self._fields = [(name, _compile_field(name, rule, where, problems)) for name, rule in rules.fields.items()]
        self._checks = []
        for index, check in enumerate(rules.checks):
            try:
                condition = (
                    flows.Template.compile(check.if_, where=f"checks[{index}].if", extra_names=_ROW)
                    if check.if_
                    else None
                )
                claim = flows.Template.compile(check.assert_, where=f"checks[{index}].assert", extra_names=_ROW)
            except errors.ExpressionError as exc:
                problems.append(errors.Problem(where.locate(("checks", index)), exc.message))
                continue
            self._checks.append((check, condition, claim))
        for index, reference in enumerate(rules.references):
            if reference.field not in rules.fields:
                at = where.locate(("references", index, "field"))
                problems.append(errors.Problem(at, f"{reference.field!r} is not a field of these rules", "a field"))
        if problems:
            raise RulesInvalid(problems)
        self._known: dict[str, frozenset[str]] = {}

    @property
    def fields(self) -> list[str]:
        """The fields the rules name, in file order."""
        return [name for name, _ in self._fields]

    def set_reference_values(self, field_name: str, values: Collection[object]) -> None:
        """Give the values another system holds for a reference check (read by the caller through its connection)."""
        self._known[field_name] = frozenset(str(value) for value in values)

    def check(self, row: Mapping[str, object]) -> Outcome:
        """Apply every rule to `row`; fields the rules do not name are passed through unchanged."""
        outcome = Outcome(dict(row))
        for name, apply in self._fields:
            apply(row.get(name), outcome)
        for reference in self.rules.references:
            known = self._known.get(reference.field)
            value = outcome.values.get(reference.field)
            if known is not None and value is not None and str(value) not in known:
                outcome.violations.append(
                    Violation(f"{reference.field}.reference", f"is not a {reference.key} of {reference.connection}")
                )
        if self._checks and not outcome.violations:
            context = {"row": outcome.values}
            for check, condition, claim in self._checks:
                try:
                    if (condition is None or condition.is_true(context)) and not claim.is_true(context):
                        outcome.violations.append(Violation(f"checks.{check.id}", check.message or "the check failed"))
                except errors.ExpressionError as exc:
                    outcome.violations.append(Violation(f"checks.{check.id}", exc.message))
        return outcome


def _bound(name: str, rule: FieldRule, key: str, where: flows.load.SourceMap, problems: list[errors.Problem]) -> Any:
    value = getattr(rule, key)
    if value is None:
        return None
    at = where.locate(("fields", name, key))
    if rule.type in _NUMERIC:
        try:
            return Decimal(str(value))
        except InvalidOperation:
            problems.append(errors.Problem(at, f"got {errors.redact(value)}", "a number"))
            return None
    if rule.type == "date":
        try:
            return VALIDATORS["date"](str(value))
        except ValueError:
            problems.append(errors.Problem(at, f"got {errors.redact(value)}", "a date such as 2026-12-07"))
            return None
    problems.append(errors.Problem(at, f"{key} does not apply to type {rule.type}", "integer, decimal, amount or date"))
    return None


def _compile_field(
    name: str, rule: FieldRule, where: flows.load.SourceMap, problems: list[errors.Problem]
) -> _FieldCheck:
    validator = VALIDATORS.get(rule.type)
    if validator is None:
        at = where.locate(("fields", name, "type"))
        problems.append(errors.Problem(at, f"unknown type {rule.type!r}", ", ".join(sorted(VALIDATORS))))
    low, high = _bound(name, rule, "min", where, problems), _bound(name, rule, "max", where, problems)
    pattern = None
    if rule.regex is not None:
        try:
            pattern = re.compile(rule.regex)
        except re.error as exc:
            problems.append(errors.Problem(where.locate(("fields", name, "regex")), f"bad pattern: {exc}"))
    allowed = None
    if rule.enum is not None:
        allowed = frozenset(str(item) for item in rule.enum)
    is_text, clean, required = rule.type == "string", rule.clean, rule.required
    memo: dict[str, object] = {}  # text -> normalised value or refusal: dates, provinces, levels repeat

    def _validate(typed: str) -> object:
        text = clean_text(typed) if clean else typed
        if not text:
            return _EMPTY
        assert validator is not None
        try:
            return validator(text)
        except ValueError as exc:
            return _Refusal(f"{errors.redact(text, 40)} {exc}")

    check_value = _value_checks(name, rule, low, high, allowed, pattern)

    def apply(raw: object, outcome: Outcome) -> None:
        if isinstance(raw, str) and not is_text and validator is not None:
            found = memo.get(raw, _UNSEEN)  # keyed by the raw text: a repeated value is not even cleaned again
            if found is _UNSEEN:
                found = _validate(raw)
                if len(memo) < _MEMO_LIMIT:
                    memo[raw] = found
            text = raw
        else:
            text = "" if raw is None else (clean_text(raw) if clean else raw) if isinstance(raw, str) else str(raw)
            found = _EMPTY if not text else (text if is_text or validator is None else _validate(text))
        if found is _EMPTY:
            outcome.values[name] = None
            if required:
                outcome.violations.append(Violation(f"{name}.required", "is missing"))
            return
        if isinstance(found, _Refusal):
            outcome.violations.append(Violation(f"{name}.type", found.message))
            return
        outcome.values[name] = found
        if raw is not None and str(found) != (raw if isinstance(raw, str) else str(raw)):  # differs from what was typed
            outcome.fixed.append(name)
        check_value(found, outcome)

    return apply


def _value_checks(
    name: str, rule: FieldRule, low: Any, high: Any, allowed: frozenset[str] | None, pattern: re.Pattern[str] | None
) -> Callable[[Any, Outcome], None]:
    """The checks of a field's normalised value: bounds, enumeration, pattern and length."""
    min_length, max_length = rule.min_length, rule.max_length

    def check(value: Any, outcome: Outcome) -> None:
        if low is not None and value < low:
            outcome.violations.append(Violation(f"{name}.min", f"{value} is below {low}"))
        if high is not None and value > high:
            outcome.violations.append(Violation(f"{name}.max", f"{value} is above {high}"))
        shown = str(value)
        if allowed is not None and shown not in allowed:
            outcome.violations.append(Violation(f"{name}.enum", f"{errors.redact(shown, 40)} is not an allowed value"))
        if pattern is not None and not pattern.fullmatch(shown):
            outcome.violations.append(
                Violation(f"{name}.regex", f"{errors.redact(shown, 40)} does not match {rule.regex}")
            )
        if min_length is not None and len(shown) < min_length:
            outcome.violations.append(
                Violation(f"{name}.length", f"has {len(shown)} characters, fewer than {min_length}")
            )
        if max_length is not None and len(shown) > max_length:
            outcome.violations.append(
                Violation(f"{name}.length", f"has {len(shown)} characters, more than {max_length}")
            )

    return check


class RulesInvalid(errors.FlowInvalid):
    """A rule file is broken; every problem has its file:line:column."""

    code = "quality.rules_invalid"


def parse_rules(text: str | bytes, filename: str) -> RuleSet:
    """Read a rule file's text.

    Raises:
        errors.FlowInvalid: every problem, each with file:line:column (YAML syntax, unknown keys,
            unknown types, bounds that do not fit the type, bad patterns and expressions).
    """
    try:
        data, source = flows.load.parse_yaml(text, filename)
    except errors.FlowInvalid as exc:  # YAML syntax: the same problems, under this file's code
        raise RulesInvalid(exc.problems) from None
    try:
        rules = RuleFile.model_validate(data)
    except ValidationError as exc:
        problems = [
            errors.Problem(
                source.locate(tuple(detail["loc"]), at_key=detail["type"] == "extra_forbidden"), detail["msg"]
            )
            for detail in exc.errors(include_url=False, include_input=False)
        ]
        raise RulesInvalid(problems) from None
    return RuleSet(rules, source)


def load_rules(path: Path, shown: str | None = None) -> RuleSet:
    """Read a rule file (see `parse_rules`).

    Raises:
        errors.FlowInvalid: as `parse_rules`; also when the file cannot be read.
    """
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise RulesInvalid(
            [errors.Problem(errors.Location(shown or str(path)), f"cannot be read: {exc.strerror}", "a rule file")]
        ) from None
    return parse_rules(text, shown or str(path))
