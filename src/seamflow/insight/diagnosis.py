"""A process diagnosis: where cases wait (bottlenecks), where work passes between people or systems
(hand-offs, and the wait at each) and what is done twice (rework) — each finding with its cases."""

from __future__ import annotations

from dataclasses import dataclass

from seamflow.ids import Json
from seamflow.insight.index import ProcessIndex
from seamflow.insight.process_map import CaseFilter, discover_map, selected_cases

__all__ = ["Diagnosis", "Finding", "diagnose"]

_EXAMPLES = 5


@dataclass(frozen=True, slots=True)
class Finding:
    """One finding: `kind` is bottleneck, handoff or rework; `subject` names the edge, hand-off or activity."""

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


def diagnose(index: ProcessIndex, where: CaseFilter, top: int = 5) -> Diagnosis:
    """Bottlenecks, hand-offs between resources (with the wait before each) and rework, `top` of each.

    A hand-off is an event whose resource differs from the resource of the case's previous event
    that had one (events without a resource are passed over); its wait is the time between the two.

    Raises:
        errors.NotFound: the object type is unknown (`insight.object_type_unknown`).
    """
    found = discover_map(index, where)
    cases_sql, params = selected_cases(index, where)
    names = index.activity_names()
    codes = {n: c for c, n in names.items()}
    findings: list[Finding] = []
    for edge in found.bottlenecks(top):
        examples = index.query(
            "SELECT o.id FROM steps s JOIN objects o ON o.code = s.obj WHERE s.prev_act = ? AND s.act = ?"  # noqa: S608
            " AND s.obj IN (" + cases_sql + ") ORDER BY s.ts_ms - s.prev_ts_ms DESC, o.id LIMIT ?",
            [codes[edge.source], codes[edge.target], *params, _EXAMPLES],
        )
        findings.append(
            Finding(
                "bottleneck",
                f"{edge.source} → {edge.target}",
                edge.frequency,
                edge.median_ms,
                edge.total_ms,
                tuple(r[0] for r in examples),
            )
        )
    handoffs = index.query(
        "SELECT h.before || ' → ' || h.after, count(DISTINCT h.obj), median(h.wait), sum(h.wait),"  # noqa: S608
        " list(o.id ORDER BY h.wait DESC, o.id)[1:5] FROM (SELECT obj, resource AS after,"
        " lag(resource IGNORE NULLS) OVER w AS before, ts_ms - lag(CASE WHEN resource IS NOT NULL THEN ts_ms END"
        " IGNORE NULLS) OVER w AS wait FROM steps WHERE obj IN (" + cases_sql + ")"
        " WINDOW w AS (PARTITION BY obj ORDER BY ts_ms, seq)) h JOIN objects o ON o.code = h.obj"
        " WHERE h.after IS NOT NULL AND h.before IS NOT NULL AND h.before <> h.after"
        " GROUP BY 1 ORDER BY 4 DESC, 1 LIMIT ?",
        [*params, top],
    )
    findings.extend(Finding("handoff", s, int(n), float(m), int(t), tuple(e)) for s, n, m, t, e in handoffs)
    rework = index.query(
        "SELECT r.act, count(*), list(o.id ORDER BY r.n DESC, o.id)[1:5] FROM (SELECT obj, act, count(*) AS n"  # noqa: S608
        " FROM steps WHERE obj IN (" + cases_sql + ") GROUP BY obj, act HAVING count(*) > 1) r"
        " JOIN objects o ON o.code = r.obj GROUP BY r.act ORDER BY 2 DESC, 1 LIMIT ?",
        [*params, top],
    )
    findings.extend(Finding("rework", names[a], int(n), None, None, tuple(e)) for a, n, e in rework)
    return Diagnosis(where.object_type, found.cases, tuple(findings))
