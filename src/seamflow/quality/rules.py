"""Rule sets: a rule file read with positions and compiled to one function per field, then applied
to rows. Used by the `quality.validate` action of flows, by `seamflow data profile` and by
`seamflow migrate`; every broken rule file is reported with file:line:column.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from itertools import compress, count
from operator import ne
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from seamflow import errors, flows
from seamflow.ids import Json
from seamflow.quality import screens
from seamflow.quality.spec import FieldRule, RuleFile
from seamflow.quality.text import clean_text
from seamflow.quality.validators import VALIDATORS

__all__ = ["BatchOutcome", "Outcome", "RuleSet", "Violation", "load_rules", "parse_rules"]

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


@dataclass(slots=True)
class BatchOutcome:
    """Many rows after their rules (`RuleSet.check_batch`), column by column.

    `values` holds, per field, the normalised column (rule fields) or the column as given (other
    fields); it is empty when the caller asked for no values. Only the rows that broke a rule are in
    `violations`, in row order, each with what it broke in the order `RuleSet.check` gives.
    """

    size: int
    values: dict[str, list[Any]] = field(default_factory=dict)
    violations: dict[int, list[Violation]] = field(default_factory=dict)
    fixed: set[int] = field(default_factory=set)
    """The rows in which a normaliser changed a field (found only when the values were asked for)."""


Verdict = tuple[Any, tuple[Violation, ...], bool]
"""A field's verdict on one typed value: the value to keep (normalised; as typed when refused; None
when empty), the rules it broke, and whether normalising changed it."""
FieldJudge = Callable[[object], Verdict]
_MEMO_LIMIT = 20_000
"""Values remembered per field; a column of repeated values (dates, provinces) is validated once per value."""


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
        for name, compiled in self._fields:
            value, broken, changed = compiled.judge(row.get(name))
            outcome.values[name] = value
            if changed:
                outcome.fixed.append(name)
            if broken:
                outcome.violations.extend(broken)
        for reference in self.rules.references:
            known = self._known.get(reference.field)
            value = outcome.values.get(reference.field)
            if known is not None and value is not None and str(value) not in known:
                outcome.violations.append(
                    Violation(f"{reference.field}.reference", f"is not a {reference.key} of {reference.connection}")
                )
        if self._checks and not outcome.violations:
            outcome.violations.extend(self._cross_checks(outcome.values))
        return outcome

    def check_batch(self, columns: Mapping[str, Sequence[object]], size: int, *, values: bool = True) -> BatchOutcome:
        """Apply every rule to `size` rows given column by column (field → cells; a field not given is
        empty in every row): the same verdicts as `check` row by row, found once per distinct value
        of a column with the row loops in C (`dict.fromkeys`, `map`, `compress`).

        Args:
            values: also return the normalised columns and the fixed rows (a profile needs only
                the violations).
        """
        out = BatchOutcome(size)
        bad: dict[int, list[Violation]] = {}
        need_values = values or bool(self._checks) or bool(self._known)
        empty: Sequence[object] = (None,) * size
        for name, compiled in self._fields:
            column = _judge_column(columns.get(name, empty), compiled, bad, out.fixed, keep_values=need_values)
            if column is not None:
                out.values[name] = column
        if need_values:
            for name, cells in columns.items():
                out.values.setdefault(name, list(cells))
        for reference in self.rules.references:
            known = self._known.get(reference.field)
            if known is None:
                continue
            broken = Violation(f"{reference.field}.reference", f"is not a {reference.key} of {reference.connection}")
            for index, value in enumerate(out.values[reference.field]):
                if value is not None and str(value) not in known:
                    bad.setdefault(index, []).append(broken)
        if self._checks:
            names = list(out.values)
            for index in range(size):
                if index not in bad:
                    found = self._cross_checks({name: out.values[name][index] for name in names})
                    if found:
                        bad[index] = found
        out.violations = dict(sorted(bad.items()))
        if not values:
            out.values, out.fixed = {}, set()
        return out

    def _cross_checks(self, row: dict[str, Any]) -> list[Violation]:
        broken: list[Violation] = []
        context = {"row": row}
        for check, condition, claim in self._checks:
            try:
                if (condition is None or condition.is_true(context)) and not claim.is_true(context):
                    broken.append(Violation(f"checks.{check.id}", check.message or "the check failed"))
            except errors.ExpressionError as exc:
                broken.append(Violation(f"checks.{check.id}", exc.message))
        return broken


_HASHABLE_ALONE = frozenset({str, type(None)})
"""Cell types whose equal values are alike (1, 1.0 and True are equal keys of a dict, not alike values)."""


@dataclass(frozen=True, slots=True)
class _Field:
    """A compiled field: its judge of one cell and, for types that have one, its column screen."""

    judge: FieldJudge
    """One cell's verdict, remembered per typed text while the memo has room."""
    screen: screens.Screen | None
    """The cells the field accepts as typed (its type's screen and its value checks)."""


def _judge_column(
    cells: Sequence[object], field: _Field, bad: dict[int, list[Violation]], fixed: set[int], *, keep_values: bool
) -> list[Any] | None:
    """Judge one column: each distinct value once — most in C-level passes of the field's screen, the
    rest by its judge — then the verdicts spread over the rows in C (`map`, `compress`)."""
    if not set(map(type, cells)) <= _HASHABLE_ALONE:
        return _judge_cells(cells, field.judge, bad, fixed, keep_values=keep_values)
    distinct: list[Any] = list(dict.fromkeys(cells))
    value_of: dict[object, Any] = {}
    changed: set[object] = set()
    if field.screen is not None:
        texts = distinct if None not in distinct else [cell or "" for cell in distinct]
        at, accepted, values = field.screen(list(range(len(distinct))), texts)
        keys = list(map(distinct.__getitem__, at))
        if keep_values:
            value_of.update(zip(keys, values, strict=True))
            changed.update(compress(keys, map(ne, map(str, values), accepted)))
        distinct = list(map(distinct.__getitem__, sorted(set(range(len(distinct))).difference(at))))
    broken: dict[object, tuple[Violation, ...]] = {}
    for raw in distinct:
        value_of[raw], broken_here, is_changed = field.judge(raw)
        if broken_here:
            broken[raw] = broken_here
        if is_changed:
            changed.add(raw)
    if broken:
        for index in compress(count(), map(broken.__contains__, cells)):
            bad.setdefault(index, []).extend(broken[cells[index]])
    if not keep_values:
        return None
    if changed:
        fixed.update(compress(count(), map(changed.__contains__, cells)))
    return list(map(value_of.__getitem__, cells))


def _judge_cells(
    cells: Sequence[object], judge: FieldJudge, bad: dict[int, list[Violation]], fixed: set[int], *, keep_values: bool
) -> list[Any] | None:
    """Judge a column of numbers, dates or other values from a query, cell by cell."""
    found = list(map(judge, cells))
    for index, (_, violations, changed_one) in enumerate(found):
        if violations:
            bad.setdefault(index, []).extend(violations)
        if changed_one and keep_values:
            fixed.add(index)
    return [verdict[0] for verdict in found] if keep_values else None


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


def _compile_field(name: str, rule: FieldRule, where: flows.load.SourceMap, problems: list[errors.Problem]) -> _Field:
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
    is_checked, clean = rule.type != "string" and validator is not None, rule.clean
    empty: Verdict = (None, (Violation(f"{name}.required", "is missing"),) if rule.required else (), False)
    check_value = _value_checks(name, rule, low, high, allowed, pattern)
    memo: dict[str, Verdict] = {}  # typed text -> verdict: dates, provinces, levels repeat

    def judge(raw: object) -> Verdict:
        if isinstance(raw, str):
            text = clean_text(raw) if clean else raw
        elif raw is None:
            text = ""
        else:  # a number or a date from a query: its text, cleaned only when a validator reads it
            text = clean_text(str(raw)) if clean and is_checked else str(raw)
        if not text:
            return empty
        found: object = text
        if is_checked:
            assert validator is not None
            try:
                found = validator(text)
            except ValueError as exc:
                return raw, (Violation(f"{name}.type", f"{errors.redact(text, 40)} {exc}"),), False
        shown = str(found)
        return found, check_value(found, shown), shown != (raw if isinstance(raw, str) else str(raw))

    def judge_remembered(raw: object) -> Verdict:
        if type(raw) is not str:
            return judge(raw)
        verdict = memo.get(raw)
        if verdict is None:
            verdict = judge(raw)
            if len(memo) < _MEMO_LIMIT:
                memo[raw] = verdict
        return verdict

    screen = (screens.SCREENS.get(rule.type) if is_checked else screens.screen_text) if clean else None
    if screen is not None:
        screen = _checked_screen(screen, _ValueBounds(low, high, allowed, pattern, rule.min_length, rule.max_length))
    return _Field(judge_remembered, screen)


@dataclass(frozen=True, slots=True)
class _ValueBounds:
    """A field's checks of a normalised value and its text, as `_value_checks` applies them."""

    low: Any
    high: Any
    allowed: frozenset[str] | None
    pattern: re.Pattern[str] | None
    min_length: int | None
    max_length: int | None


def _checked_screen(screen: screens.Screen, bounds: _ValueBounds) -> screens.Screen:
    """`screen`, then the field's value checks over the accepted cells, column by column: a cell that
    fails one is left to the field's judge, which says what it broke."""
    on_values: list[Callable[[Any], object]] = []  # each true for a value that passes it
    on_shown: list[Callable[[str], object]] = []
    if bounds.low is not None:
        on_values.append(bounds.low.__le__)
    if bounds.high is not None:
        on_values.append(bounds.high.__ge__)
    if bounds.allowed is not None:
        on_shown.append(bounds.allowed.__contains__)
    if bounds.pattern is not None:
        on_shown.append(bounds.pattern.fullmatch)
    if (shortest := bounds.min_length) is not None:
        on_shown.append(lambda text: len(text) >= shortest)
    if (longest := bounds.max_length) is not None:
        on_shown.append(lambda text: len(text) <= longest)
    if not on_values and not on_shown:
        return screen

    def checked(positions: list[int], texts: list[str]) -> screens.Screened:
        positions, texts, values = screen(positions, texts)
        shown = list(map(str, values)) if on_shown else []
        for test, is_on_value in [(test, True) for test in on_values] + [(test, False) for test in on_shown]:
            flags = list(map(bool, map(test, values if is_on_value else shown)))
            positions, texts = list(compress(positions, flags)), list(compress(texts, flags))
            values, shown = list(compress(values, flags)), list(compress(shown, flags)) if on_shown else []
        return positions, texts, values

    return checked


def _value_checks(
    name: str, rule: FieldRule, low: Any, high: Any, allowed: frozenset[str] | None, pattern: re.Pattern[str] | None
) -> Callable[[Any, str], tuple[Violation, ...]]:
    """The checks of a field's normalised value (and its text): bounds, enumeration, pattern and length."""
    min_length, max_length = rule.min_length, rule.max_length
    if low is None and high is None and allowed is None and pattern is None and min_length is max_length is None:
        return lambda value, shown: ()

    def check(value: Any, shown: str) -> tuple[Violation, ...]:
        broken: list[Violation] = []
        if low is not None and value < low:
            broken.append(Violation(f"{name}.min", f"{value} is below {low}"))
        if high is not None and value > high:
            broken.append(Violation(f"{name}.max", f"{value} is above {high}"))
        if allowed is not None and shown not in allowed:
            broken.append(Violation(f"{name}.enum", f"{errors.redact(shown, 40)} is not an allowed value"))
        if pattern is not None and not pattern.fullmatch(shown):
            broken.append(Violation(f"{name}.regex", f"{errors.redact(shown, 40)} does not match {rule.regex}"))
        if min_length is not None and len(shown) < min_length:
            broken.append(Violation(f"{name}.length", f"has {len(shown)} characters, fewer than {min_length}"))
        if max_length is not None and len(shown) > max_length:
            broken.append(Violation(f"{name}.length", f"has {len(shown)} characters, more than {max_length}"))
        return tuple(broken)

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
