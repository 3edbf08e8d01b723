"""A process diagnosis: where cases wait (bottlenecks); the breakpoints where work passes between
people, systems or departments (hand-offs, and the wait at each); and redundancies — what is done
twice (rework) and the same data typed by hand into two systems — each finding with its cases."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import LiteralString

from seamflow.ids import Json
from seamflow.insight.index import ProcessIndex
from seamflow.insight.process_map import CaseFilter, discover_map, selected_cases

__all__ = ["Diagnosis", "Finding", "diagnose"]

_EXAMPLES = 5

KINDS = ("bottleneck", "handoff", "system_handoff", "department_handoff", "rework", "entered_twice")
"""The kinds of finding, in the order a diagnosis lists them."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One finding, of a kind of `KINDS`; `subject` names the edge, the hand-off, the activity or the data.

    For a hand-off, `median_ms`/`total_ms` are the waits at it; for data entered twice, the time
    from its first entry to its entry in the last of the systems.
    """

    kind: str
    subject: str
    cases: int
    median_ms: float | None
    total_ms: int | None
    examples: tuple[str, ...]
    """Ids of the cases that show it most (the longest waits first), at most 5."""


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """The findings of a diagnosis of one object type's process, most costly first within each kind."""

    object_type: str
    cases: int
    findings: tuple[Finding, ...]

    def to_json(self) -> Json:
        """The diagnosis as JSON."""
        return {
            "object_type": self.object_type,
            "cases": self.cases,
            "findings": [
                {
                    "kind": f.kind,
                    "subject": f.subject,
                    "cases": f.cases,
                    "median_ms": f.median_ms,
                    "total_ms": f.total_ms,
                    "examples": list(f.examples),
                }
                for f in self.findings
            ],
        }


def diagnose(
    index: ProcessIndex, where: CaseFilter, top: int = 5, departments: Mapping[str, str] | None = None
) -> Diagnosis:
    """The findings of the cases `where` selects, `top` of each kind.

    - bottleneck: the edges where cases spend the most time in total.
    - handoff / system_handoff / department_handoff: an event whose resource (system; the
      resource's department) differs from that of the case's previous event that had one
      (events without one are passed over); its wait is the time between the two.
    - rework: an activity done more than once in a case.
    - entered_twice: a case object's attribute given the same value by manual-entry events
      (`entry: manual`) of two or more systems — the same data typed into two systems.

    Args:
        index: the log.
        where: the cases.
        top: findings of each kind.
        departments: a person (resource: login or name) -> their department, from the directory;
            without it, no department hand-offs.

    Asked again while no event was appended (and with the same departments), the findings are
    answered from the index's memory.

    Raises:
        errors.NotFound: the object type is unknown (`insight.object_type_unknown`).
    """
    people = hash(tuple(sorted(departments.items()))) if departments else None
    return index.remembered(f"diagnosis {where!r} {top} {people}", lambda: _diagnose(index, where, top, departments))


def _diagnose(index: ProcessIndex, where: CaseFilter, top: int, departments: Mapping[str, str] | None) -> Diagnosis:
    found = discover_map(index, where)
    cases_sql, params = selected_cases(index, where)
    names = index.activity_names()
    codes = {n: c for c, n in names.items()}
    edges = found.bottlenecks(top)
    examples = _bottleneck_examples(index, [(codes[e.source], codes[e.target]) for e in edges], cases_sql, params)
    findings = [
        Finding(
            "bottleneck",
            f"{e.source} → {e.target}",
            e.frequency,
            e.median_ms,
            e.total_ms,
            examples.get((codes[e.source], codes[e.target]), ()),
        )
        for e in edges
    ]
    findings += _handoffs(index, "handoff", "s.resource", cases_sql, params, top)
    findings += _handoffs(index, "system_handoff", "e.system", cases_sql, params, top)
    if departments:
        lookup = {"key": list(departments), "value": list(departments.values())}
        findings += _handoffs(index, "department_handoff", "d.value", cases_sql, params, top, lookup)
    rework = index.query(
        "SELECT r.act, count(*), list(o.id ORDER BY r.n DESC, o.id)[1:5] FROM (SELECT obj, act, count(*) AS n"  # noqa: S608
        " FROM steps WHERE obj IN (" + cases_sql + ") GROUP BY obj, act HAVING count(*) > 1) r"
        " JOIN objects o ON o.code = r.obj GROUP BY r.act ORDER BY 2 DESC, 1 LIMIT ?",
        [*params, top],
    )
    findings.extend(Finding("rework", names[a], int(n), None, None, tuple(e)) for a, n, e in rework)
    findings += _entered_twice(index, cases_sql, params, top)
    return Diagnosis(where.object_type, found.cases, tuple(findings))


def _bottleneck_examples(
    index: ProcessIndex, edges: list[tuple[int, int]], cases_sql: LiteralString, params: list[object]
) -> dict[tuple[int, int], tuple[str, ...]]:
    """The cases that waited longest on each edge (activity codes), in one pass over the steps.

    Only the steps at or above each edge's 5th longest wait are joined to the objects for their ids
    (one query per edge joined every step of the edge: 50-130 ms each on a million events).
    """
    if not edges:
        return {}
    rows = index.query(
        "WITH c AS (SELECT s.prev_act, s.act, s.obj, s.ts_ms - s.prev_ts_ms AS wait FROM steps s"  # noqa: S608
        " JOIN _lookup l ON s.prev_act = CAST(l.key AS INTEGER) AND s.act = CAST(l.value AS INTEGER)"
        " WHERE s.obj IN (" + cases_sql + ")),"
        " f AS (SELECT prev_act, act, list_min(max(wait, 5)) AS floor FROM c GROUP BY ALL)"
        " SELECT c.prev_act, c.act, list(o.id ORDER BY c.wait DESC, o.id)[1:5] FROM c"
        " JOIN f ON f.prev_act = c.prev_act AND f.act = c.act JOIN objects o ON o.code = c.obj"
        " WHERE c.wait >= f.floor GROUP BY ALL",
        params,
        lookup={"key": [str(a) for a, _ in edges], "value": [str(b) for _, b in edges]},
    )
    return {(a, b): tuple(ids) for a, b, ids in rows}


def _handoffs(
    index: ProcessIndex,
    kind: str,
    who: LiteralString,
    cases_sql: LiteralString,
    params: list[object],
    top: int,
    lookup: dict[str, list[str]] | None = None,
) -> list[Finding]:
    """Hand-offs between the values of `who` (a column of steps `s`, events `e` or the lookup `d`).

    Only the steps that have a `who` are windowed: the previous one of them is the previous step
    that had one (a window over every step with `IGNORE NULLS` was 0.3 s on a million events).
    """
    joins: LiteralString = " JOIN _lookup d ON d.key = s.resource" if lookup else ""
    if who.startswith("e."):
        joins = " JOIN events e ON e.seq = s.seq" + joins
    rows = index.query(
        "SELECT h.before || ' → ' || h.after, count(DISTINCT h.obj), median(h.wait), sum(h.wait),"  # noqa: S608
        " list(o.id ORDER BY h.wait DESC, o.id)[1:5] FROM (SELECT obj, who AS after, lag(who) OVER w AS before,"
        " ts_ms - lag(ts_ms) OVER w AS wait FROM (SELECT s.obj, s.ts_ms, s.seq, "
        + who
        + " AS who FROM steps s"
        + joins
        + " WHERE "
        + who
        + " IS NOT NULL AND s.obj IN ("
        + cases_sql
        + "))"
        " WINDOW w AS (PARTITION BY obj ORDER BY ts_ms, seq)) h JOIN objects o ON o.code = h.obj"
        " WHERE h.before IS NOT NULL AND h.before <> h.after"
        " GROUP BY 1 ORDER BY 4 DESC, 1 LIMIT ?",
        [*params, top],
        lookup=lookup,
    )
    return [Finding(kind, s, int(n), float(m), int(t), tuple(e)) for s, n, m, t, e in rows]


def _entered_twice(index: ProcessIndex, cases_sql: LiteralString, params: list[object], top: int) -> list[Finding]:
    """The case objects' attributes typed with the same value into two or more systems."""
    rows = index.query(
        # Per case object, attribute and value: the systems it was typed into, and when first in each.
        "SELECT v.name || ' typed into ' || v.systems, count(DISTINCT v.obj), median(v.delay), sum(v.delay),"  # noqa: S608
        " list(o.id ORDER BY v.delay DESC, o.id) FROM (SELECT obj, name, value,"
        " string_agg(system, ' and ' ORDER BY system) AS systems, max(first_ms) - min(first_ms) AS delay"
        " FROM (SELECT a.obj, a.name, a.value, e.system, min(e.ts_ms) AS first_ms FROM object_attributes a"
        " JOIN events e ON e.seq = a.seq WHERE e.is_manual AND e.system IS NOT NULL"
        " AND a.obj IN (" + cases_sql + ") GROUP BY ALL) GROUP BY obj, name, value HAVING count(*) > 1) v"
        " JOIN objects o ON o.code = v.obj GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?",
        [*params, top],
    )
    return [
        Finding("entered_twice", s, int(n), float(m), int(t), tuple(dict.fromkeys(e))[:_EXAMPLES])
        for s, n, m, t, e in rows
    ]
