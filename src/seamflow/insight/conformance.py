"""Conformance: what happened to each case against the designed path of its process — activities
skipped, repeated, out of order or not in the design — with the deviating cases listed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from seamflow import flows
from seamflow.ids import Json
from seamflow.insight.index import ProcessIndex
from seamflow.insight.process_map import CaseFilter, selected_cases

__all__ = ["Conformance", "Deviation", "check_conformance", "designed_path"]

_EXAMPLES = 10


@dataclass(frozen=True, slots=True)
class Deviation:
    """One way cases left the designed path: `kind` is skipped, repeated, out_of_order or unexpected."""

    kind: str
    activity: str
    cases: int
    examples: tuple[str, ...]
    """Ids of some of the cases (at most 10), for a person to look at."""


@dataclass(frozen=True, slots=True)
class Conformance:
    """How many cases followed the designed path, and how the others deviated (most cases first)."""

    designed: tuple[str, ...]
    cases: int
    conforming: int
    deviations: tuple[Deviation, ...]

    def to_json(self) -> Json:
        """The report as JSON."""
        return {
            "designed": list(self.designed),
            "cases": self.cases,
            "conforming": self.conforming,
            "deviations": [
                {"kind": d.kind, "activity": d.activity, "cases": d.cases, "examples": list(d.examples)}
                for d in self.deviations
            ],
        }


def check_conformance(index: ProcessIndex, where: CaseFilter, designed: Sequence[str]) -> Conformance:
    """Compare each case's activities with `designed` (the activities in their designed order).

    Computed per variant (cases with the same path deviate the same way), so the work grows with
    the number of variants, not of cases.

    Raises:
        errors.NotFound: the object type is unknown (`insight.object_type_unknown`).
    """
    cases_sql, params = selected_cases(index, where)
    names = index.activity_names()
    rows = index.query(
        "SELECT c.variant, count(*), list(o.id ORDER BY o.id)[1:10] FROM cases c JOIN objects o ON o.code = c.obj"  # noqa: S608
        " WHERE c.obj IN (" + cases_sql + ") GROUP BY c.variant",
        params,
    )
    found: dict[tuple[str, str], tuple[int, list[str]]] = {}
    total = conforming = 0
    for variant, count, examples in rows:
        total += count
        path = [names[int(c)] for c in variant.split(",")]
        kinds = _deviations(path, designed)
        if not kinds:
            conforming += count
        for key in kinds:
            n, shown = found.get(key, (0, []))
            found[key] = (n + count, (shown + list(examples))[:_EXAMPLES])
    deviations = sorted(
        (Deviation(kind, activity, n, tuple(shown)) for (kind, activity), (n, shown) in found.items()),
        key=lambda d: (-d.cases, d.kind, d.activity),
    )
    return Conformance(tuple(designed), total, conforming, tuple(deviations))


def _deviations(path: list[str], designed: Sequence[str]) -> list[tuple[str, str]]:
    position = {a: i for i, a in enumerate(designed)}
    found = [("skipped", a) for a in designed if a not in path]
    found += [("repeated", a) for a in dict.fromkeys(path) if a in position and path.count(a) > 1]
    found += [("unexpected", a) for a in dict.fromkeys(path) if a not in position]
    first = [a for a in dict.fromkeys(path) if a in position]
    latest = -1
    for a in first:  # an activity met after one designed to come later is out of order
        if position[a] < latest:
            found.append(("out_of_order", a))
        latest = max(latest, position[a])
    return found


def designed_path(flow: flows.spec.Flow) -> list[str]:
    """The activities a flow's `emit` steps name, in step order: the path the flow was designed for.

    A branch contributes its `then` steps (the designed case), a `foreach` its steps once; an
    activity given by a template (`{{ … }}`) is left out, as it names no one activity.
    """
    found: list[str] = []

    def walk(steps: Sequence[flows.spec.Step]) -> None:
        for step in steps:
            if isinstance(step, flows.spec.EmitStep) and "{{" not in step.emit.activity:
                found.append(step.emit.activity)
            elif isinstance(step, flows.spec.BranchStep):
                walk(step.then)
            elif isinstance(step, flows.spec.ForeachStep):
                walk(step.steps)

    walk(flow.steps)
    return list(dict.fromkeys(found))
