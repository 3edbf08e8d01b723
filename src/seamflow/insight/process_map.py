"""The process map: the directly-follows graph of one object type with frequency and performance,
its start and end activities, variants, case durations and bottlenecks.

Semantics are pm4py's: each object of the chosen type is a case; its events are ordered by
timestamp, then ingest order; an edge a → b counts every event b that directly follows an
event a in a case, and its duration is b's time minus a's. Medians and the 90th percentile
interpolate linearly between the two nearest values (numpy's default). Durations are milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import LiteralString

from seamflow import errors
from seamflow.ids import Json
from seamflow.insight.index import ProcessIndex

__all__ = ["CaseFilter", "Edge", "Node", "ProcessMap", "Variant", "discover_map", "selected_cases"]


@dataclass(frozen=True, slots=True)
class CaseFilter:
    """Which cases a map or KPI covers: those of an object type, with attribute values, started in a period."""

    object_type: str
    attributes: dict[str, str] = field(default_factory=dict)
    """Object attribute -> value the case object must have (its latest value), e.g. {"region": "华东"}."""
    start: datetime | None = None
    """Cases that started at or after this instant."""
    end: datetime | None = None
    """Cases that started before this instant."""


@dataclass(frozen=True, slots=True)
class Node:
    """An activity of the map: how often it happened, and in how many cases."""

    activity: str
    frequency: int
    cases: int


@dataclass(frozen=True, slots=True)
class Edge:
    """A directly-follows edge: frequency and the time between the two activities (ms)."""

    source: str
    target: str
    frequency: int
    mean_ms: float
    median_ms: float
    p90_ms: float
    total_ms: int


@dataclass(frozen=True, slots=True)
class Variant:
    """A path through the process: the activities in order, the cases that took it and their share."""

    activities: tuple[str, ...]
    cases: int
    share: float


@dataclass(frozen=True, slots=True)
class ProcessMap:
    """A directly-follows graph with performance, for one object type and case filter."""

    object_type: str
    cases: int
    events: int
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    start_activities: dict[str, int]
    end_activities: dict[str, int]
    variants: tuple[Variant, ...]
    variant_count: int
    case_duration_ms: dict[str, float | None]
    """median, p90 and mean of case durations (first event to last)."""

    def bottlenecks(self, top: int = 10) -> list[Edge]:
        """The edges where cases spend the most time in total, most first."""
        return sorted(self.edges, key=lambda e: (-e.total_ms, e.source, e.target))[:top]

    def to_json(self) -> Json:
        """The map as JSON (what `/api/v1/insight/map` answers)."""
        total = sum(e.total_ms for e in self.edges) or 1
        return {
            "object_type": self.object_type,
            "cases": self.cases,
            "events": self.events,
            "nodes": [{"activity": n.activity, "frequency": n.frequency, "cases": n.cases} for n in self.nodes],
            "edges": [
                {
                    "source": e.source,
                    "target": e.target,
                    "frequency": e.frequency,
                    "mean_ms": e.mean_ms,
                    "median_ms": e.median_ms,
                    "p90_ms": e.p90_ms,
                    "total_ms": e.total_ms,
                }
                for e in self.edges
            ],
            "start_activities": dict(self.start_activities),
            "end_activities": dict(self.end_activities),
            "variants": [{"activities": list(v.activities), "cases": v.cases, "share": v.share} for v in self.variants],
            "variant_count": self.variant_count,
            "case_duration_ms": dict(self.case_duration_ms),
            "bottlenecks": [
                {
                    "source": e.source,
                    "target": e.target,
                    "total_ms": e.total_ms,
                    "share": e.total_ms / total,
                    "median_ms": e.median_ms,
                    "frequency": e.frequency,
                }
                for e in self.bottlenecks()
            ],
        }


def selected_cases(index: ProcessIndex, where: CaseFilter) -> tuple[LiteralString, list[object]]:
    """SQL selecting the `obj` codes of the filter's cases, and its parameters.

    Raises:
        errors.NotFound: no event touched an object of the type (`insight.object_type_unknown`).
    """
    otype = index.object_type_code(where.object_type)
    if otype is None:
        known = ", ".join(index.object_types()) or "none yet"
        raise errors.NotFound(
            f"no event touched an object of type {errors.redact(where.object_type)}; known types: {known}",
            code="insight.object_type_unknown",
        )
    sql: LiteralString = "SELECT obj FROM cases WHERE otype = ?"
    params: list[object] = [otype]
    if where.start is not None:
        sql += " AND start_ms >= ?"
        params.append(_ms(where.start))
    if where.end is not None:
        sql += " AND start_ms < ?"
        params.append(_ms(where.end))
    for name, value in sorted(where.attributes.items()):
        sql += (
            " AND obj IN (SELECT obj FROM object_attributes WHERE name = ? GROUP BY obj HAVING arg_max(value, seq) = ?)"
        )
        params.extend([name, value])
    return sql, params


def _ms(at: datetime) -> int:
    # A naive time is UTC, as everywhere in insight (pm4py's reading).
    return round((at if at.tzinfo is not None else at.replace(tzinfo=UTC)).timestamp() * 1000)


def discover_map(index: ProcessIndex, where: CaseFilter, *, top_variants: int = 20) -> ProcessMap:
    """The process map of the cases `where` selects, from the index's ready edges.

    Asked again while no event was appended, the map is answered from the index's memory.

    Raises:
        errors.NotFound: the object type is unknown (`insight.object_type_unknown`).
    """
    key = f"map {where!r} {top_variants}"
    return index.remembered(key, lambda: _discover(index, where, top_variants))


def _discover(index: ProcessIndex, where: CaseFilter, top_variants: int) -> ProcessMap:
    cases_sql, params = selected_cases(index, where)
    is_whole = len(params) == 1
    # Without a filter the object type alone selects the rows: no semi-join.
    steps: LiteralString = "otype = ?" if is_whole else "obj IN (" + cases_sql + ")"
    names = index.activity_names()
    edges = index.query(
        "SELECT prev_act, act, count(*), avg(ts_ms - prev_ts_ms), quantile_cont(ts_ms - prev_ts_ms, [0.5, 0.9]),"  # noqa: S608
        " sum(ts_ms - prev_ts_ms) FROM steps WHERE " + steps + " AND prev_act IS NOT NULL GROUP BY 1, 2",
        params,
    )
    case_rows: LiteralString = "FROM cases WHERE " + ("otype = ?" if is_whole else "obj IN (" + cases_sql + ")")
    # Every variant with its cases: nodes, start and end activities follow from them, without
    # another pass over the steps.
    variants = index.query("SELECT variant, count(*) " + case_rows + " GROUP BY variant", params)
    durations = index.query(
        "SELECT count(*), sum(events), quantile_cont(end_ms - start_ms, [0.5, 0.9]), avg(end_ms - start_ms) "
        + case_rows,
        params,
    )[0]
    paths = [(tuple(names[int(c)] for c in v.split(",")), int(n)) for v, n in variants]
    paths.sort(key=lambda p: (-p[1], p[0]))
    n_cases = int(durations[0])
    quantiles = durations[2] or (None, None)
    return ProcessMap(
        object_type=where.object_type,
        cases=n_cases,
        events=int(durations[1] or 0),
        nodes=_nodes(paths),
        edges=tuple(
            Edge(names[a], names[b], int(n), float(mean), float(q[0]), float(q[1]), int(total))
            for a, b, n, mean, q, total in sorted(edges, key=lambda r: (-r[2], names[r[0]], names[r[1]]))
        ),
        start_activities=_count_by(paths, 0),
        end_activities=_count_by(paths, -1),
        variants=tuple(Variant(path, n, n / n_cases) for path, n in paths[:top_variants]),
        variant_count=len(paths),
        case_duration_ms={
            "median": None if quantiles[0] is None else float(quantiles[0]),
            "p90": None if quantiles[1] is None else float(quantiles[1]),
            "mean": None if durations[3] is None else float(durations[3]),
        },
    )


def _nodes(paths: list[tuple[tuple[str, ...], int]]) -> tuple[Node, ...]:
    frequency: dict[str, int] = {}
    cases: dict[str, int] = {}
    for path, n in paths:
        for activity in path:
            frequency[activity] = frequency.get(activity, 0) + n
        for activity in set(path):
            cases[activity] = cases.get(activity, 0) + n
    return tuple(Node(a, f, cases[a]) for a, f in sorted(frequency.items(), key=lambda x: (-x[1], x[0])))


def _count_by(paths: list[tuple[tuple[str, ...], int]], position: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path, n in paths:
        counts[path[position]] = counts.get(path[position], 0) + n
    return dict(sorted(counts.items(), key=lambda x: (-x[1], x[0])))
