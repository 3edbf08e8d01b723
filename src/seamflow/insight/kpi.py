"""KPIs declared in YAML and computed with DuckDB over the process index, by dimension and period.

```yaml
timezone: "+08:00"              # periods start at local midnight (default UTC)
kpis:
  - id: order_to_cash
    name: 订单处理周期
    kind: cycle_time            # from the first `from` to the first `to` of each case
    object_type: order
    from: 订单创建
    to: Payment received
    sla: 10d                    # adds the share of cases within it
    by: [region]                # object attributes of the case
    period: month               # day | week | month | quarter | year (of the `to` event)
  - {id: approval_wait, kind: waiting_time, object_type: order, activity: Approved by finance, per: resource}
  - {id: paid_per_week, kind: throughput, object_type: order, activity: Payment received, period: week}
  - {id: credit_rework, kind: rework, object_type: order, activity: Credit check}
```
"""

# SQL here is built from literal fragments only (typed LiteralString, checked by mypy); values are bound.
# ruff: noqa: S608

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Literal, LiteralString

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from seamflow import errors
from seamflow.ids import Json
from seamflow.insight.index import ProcessIndex
from seamflow.insight.process_map import CaseFilter, selected_cases

__all__ = ["AlertRule", "Kpi", "KpiFile", "KpiResult", "compute_kpi", "load_kpis"]

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_OFFSET = re.compile(r"^([+-])(\d\d):(\d\d)$")


class Kpi(BaseModel):
    """One KPI: what is measured on which object type, by which dimensions and period."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    name: str | None = None
    kind: Literal["cycle_time", "waiting_time", "throughput", "rework"]
    object_type: str
    from_: str | None = Field(None, alias="from", description="cycle_time: the start activity")
    to: str | None = Field(None, description="cycle_time: the end activity")
    activity: str | None = Field(None, description="waiting_time, throughput, rework: the activity (rework: any)")
    per: Literal["activity", "resource"] | None = Field(None, description="waiting_time: per activity or resource")
    sla: str | None = Field(None, description="cycle_time: e.g. 10d, 36h; adds share_within_sla")
    by: list[str] = Field(default_factory=list, max_length=3, description="object attributes of the case")
    period: Literal["day", "week", "month", "quarter", "year"] | None = None

    @field_validator("sla")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None and not _DURATION.match(value):
            raise ValueError("expected a duration such as 90m, 36h or 10d")
        return value

    def sla_ms(self) -> int | None:
        """The SLA in milliseconds, if any."""
        if self.sla is None:
            return None
        match = _DURATION.match(self.sla)
        assert match is not None  # checked by the validator
        return round(float(match[1]) * _UNITS[match[2]] * 1000)


class AlertRule(BaseModel):
    """An alert on one measure of a KPI, over the cases started in the last window."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    kpi: str = Field(description="the id of a KPI of the same file")
    measure: str = Field(description="a column of the KPI's rows, e.g. median_ms, share_within_sla, cases")
    window: Literal["day", "week", "month"] = "week"
    above: float | None = Field(None, description="fire when the measure is above this value")
    below: float | None = Field(None, description="fire when the measure is below this value")
    rise_above: float | None = Field(
        None, description="fire when the measure grew by more than this share (0.5: +50 %)"
    )
    repeat_after: str | None = Field(
        None, description="notify again after this long while the condition holds, e.g. 1d (default: never)"
    )
    notify_resolved: bool = Field(False, description="notify once when the condition no longer holds")

    @field_validator("repeat_after")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None and not _DURATION.match(value):
            raise ValueError("expected a duration such as 90m, 36h or 1d")
        return value

    def repeat_after_delta(self) -> timedelta | None:
        """`repeat_after` as a timedelta (None: notify once per firing)."""
        if self.repeat_after is None:
            return None
        match = _DURATION.match(self.repeat_after)
        assert match is not None  # checked by the validator
        return timedelta(seconds=float(match[1]) * _UNITS[match[2]])

    @model_validator(mode="after")
    def _one_condition(self) -> AlertRule:
        given = [n for n in ("above", "below", "rise_above") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of above, below, rise_above; got {given or 'none'}")
        return self


class KpiFile(BaseModel):
    """A KPI file: the KPIs and the time zone their periods are cut in."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = Field("+00:00", pattern=r"^[+-]\d\d:\d\d$", description="UTC offset of the periods, e.g. +08:00")
    kpis: list[Kpi] = Field(min_length=1)
    alerts: list[AlertRule] = Field(default_factory=list)

    def offset(self) -> timedelta:
        """The UTC offset as a timedelta."""
        match = _OFFSET.match(self.timezone)
        assert match is not None  # checked by the pattern
        sign = -1 if match[1] == "-" else 1
        return sign * timedelta(hours=int(match[2]), minutes=int(match[3]))


@dataclass(frozen=True, slots=True)
class KpiResult:
    """A KPI's rows: one per dimension values and period, each with its measures."""

    kpi: Kpi
    columns: tuple[str, ...]
    rows: tuple[tuple[Json, ...], ...]

    def to_json(self) -> Json:
        """`{"id", "name", "kind", "rows": [{column: value}]}`."""
        return {
            "id": self.kpi.id,
            "name": self.kpi.name or self.kpi.id,
            "kind": self.kpi.kind,
            "rows": [dict(zip(self.columns, r, strict=True)) for r in self.rows],
        }


def load_kpis(path: Path) -> KpiFile:
    """Read and check a KPI file.

    Raises:
        errors.InvalidInput: the file is not YAML or not a KPI file (`insight.kpi_invalid`), every problem listed.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        found = KpiFile.model_validate(data)
    except OSError as exc:
        raise errors.InvalidInput(f"{path}: cannot be read: {exc.strerror}", code="insight.kpi_invalid") from None
    except yaml.YAMLError as exc:
        raise errors.InvalidInput(f"{path}: not YAML: {exc}", code="insight.kpi_invalid") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']} (got {errors.redact(e.get('input'))})" for e in exc.errors()
        )
        raise errors.InvalidInput(f"{path}: {problems}", code="insight.kpi_invalid") from None
    for kpi in found.kpis:
        _check(path, kpi)
    return found


def _check(path: Path, kpi: Kpi) -> None:
    need = {"cycle_time": ("from_", "to"), "waiting_time": ("per",), "throughput": ("activity",), "rework": ()}
    missing = [n.rstrip("_") for n in need[kpi.kind] if getattr(kpi, n) is None]
    if missing:
        raise errors.InvalidInput(
            f"{path}: kpis.{kpi.id}: a {kpi.kind} KPI needs {' and '.join(missing)}", code="insight.kpi_invalid"
        )


@dataclass(frozen=True, slots=True)
class _Query:
    """The parts every KPI query shares: the selected cases, the dimension joins and the period column."""

    cases_sql: LiteralString
    params: list[object]
    dims: LiteralString
    joins: LiteralString
    dim_params: list[object]
    period: LiteralString
    period_params: list[object]
    head: list[str]
    codes: dict[str, int]

    @property
    def group(self) -> LiteralString:
        return "GROUP BY ALL ORDER BY ALL" if self.dims or self.period else ""

    def code(self, activity: str | None) -> int:
        return self.codes.get(activity or "", -1)  # an activity never seen measures nothing


def compute_kpi(
    index: ProcessIndex, kpi: Kpi, offset: timedelta = timedelta(0), cases: CaseFilter | None = None
) -> KpiResult:
    """The KPI's rows over the cases of its object type (or those `cases` selects: a period, attributes).

    Asked again while no event was appended, the rows are answered from the index's memory.

    Raises:
        errors.NotFound: the object type is unknown (`insight.object_type_unknown`).
    """
    key = f"kpi {kpi!r} {offset!r} {cases!r}"
    return index.remembered(key, lambda: _compute(index, kpi, offset, cases))


def _compute(index: ProcessIndex, kpi: Kpi, offset: timedelta, cases: CaseFilter | None) -> KpiResult:
    q = _query(index, kpi, offset, cases)
    measure = {"cycle_time": _cycle_time, "waiting_time": _waiting_time, "throughput": _throughput, "rework": _rework}
    sql, args, cols = measure[kpi.kind](kpi, q)
    rows = index.query(sql, args)
    if kpi.kind == "cycle_time" and not kpi.sla:
        rows = [r[:-1] for r in rows]
    return KpiResult(kpi, tuple(cols), tuple(tuple(_plain(v) for v in r) for r in rows))


def _query(index: ProcessIndex, kpi: Kpi, offset: timedelta, cases: CaseFilter | None) -> _Query:
    where = CaseFilter(kpi.object_type) if cases is None else replace(cases, object_type=kpi.object_type)
    cases_sql, params = selected_cases(index, where)
    dims: LiteralString = ""
    joins: LiteralString = ""
    for alias in ("d0", "d1", "d2")[: len(kpi.by)]:
        dims += alias + ".v, "
        joins += (
            " LEFT JOIN (SELECT obj, arg_max(value, seq) AS v FROM object_attributes WHERE name = ?"
            " GROUP BY obj) " + alias + " ON " + alias + ".obj = m.obj"
        )
    return _Query(
        cases_sql=cases_sql,
        params=params,
        dims=dims,
        joins=joins,
        dim_params=list(kpi.by),
        period="strftime(date_trunc(?, epoch_ms(m.t + ?)), '%Y-%m-%d'), " if kpi.period else "",
        period_params=[kpi.period, round(offset.total_seconds() * 1000)] if kpi.period else [],
        head=[*kpi.by, *(["period"] if kpi.period else [])],
        codes={name: code for code, name in index.activity_names().items()},
    )


_Sql = tuple[LiteralString, list[object], list[str]]


def _cycle_time(kpi: Kpi, q: _Query) -> _Sql:
    inner: LiteralString = (
        "SELECT obj, min(ts_ms) FILTER (WHERE act = ?) AS t0, min(ts_ms) FILTER (WHERE act = ?) AS t1, t1 AS t"
        " FROM steps WHERE obj IN (" + q.cases_sql + ") GROUP BY obj"
    )
    sql: LiteralString = (
        "SELECT " + q.dims + q.period + "count(*), median(m.t1 - m.t0), quantile_cont(m.t1 - m.t0, 0.9),"
        " avg(m.t1 - m.t0), avg(CASE WHEN m.t1 - m.t0 <= ? THEN 1.0 ELSE 0.0 END)"
        " FROM (" + inner + ") m" + q.joins + " WHERE m.t0 IS NOT NULL AND m.t1 >= m.t0 " + q.group
    )
    args = [*q.period_params, kpi.sla_ms() or 0, q.code(kpi.from_), q.code(kpi.to), *q.params, *q.dim_params]
    cols = [*q.head, "cases", "median_ms", "p90_ms", "mean_ms", *(["share_within_sla"] if kpi.sla else [])]
    return sql, args, cols


def _waiting_time(kpi: Kpi, q: _Query) -> _Sql:
    key: LiteralString = "a.name" if kpi.per == "activity" else "coalesce(m.resource, '')"
    sql: LiteralString = (
        "SELECT " + q.dims + q.period + key + ", count(*), median(m.ts_ms - m.prev_ts_ms),"
        " quantile_cont(m.ts_ms - m.prev_ts_ms, 0.9), avg(m.ts_ms - m.prev_ts_ms)"
        " FROM (SELECT *, ts_ms AS t FROM steps WHERE obj IN (" + q.cases_sql + ") AND prev_act IS NOT NULL"
        " AND (? < 0 OR act = ?)) m JOIN activities a ON a.code = m.act" + q.joins + " GROUP BY ALL ORDER BY ALL"
    )
    only = q.code(kpi.activity) if kpi.activity else -1
    args = [*q.period_params, *q.params, only, only, *q.dim_params]
    return sql, args, [*q.head, kpi.per or "resource", "events", "median_ms", "p90_ms", "mean_ms"]


def _throughput(kpi: Kpi, q: _Query) -> _Sql:
    sql: LiteralString = (
        "SELECT " + q.dims + q.period + "count(DISTINCT m.obj) FROM (SELECT obj, ts_ms AS t FROM steps"
        " WHERE obj IN (" + q.cases_sql + ") AND act = ?) m" + q.joins + " " + q.group
    )
    return sql, [*q.period_params, *q.params, q.code(kpi.activity), *q.dim_params], [*q.head, "cases"]


def _rework(kpi: Kpi, q: _Query) -> _Sql:
    only = q.code(kpi.activity) if kpi.activity else -1
    inner: LiteralString = (
        "SELECT obj, min(ts_ms) AS t, bool_or(n > 1 AND (? < 0 OR act = ?)) AS is_rework FROM (SELECT obj, act,"
        " count(*) AS n, min(ts_ms) AS ts_ms FROM steps WHERE obj IN (" + q.cases_sql + ") GROUP BY obj, act)"
        " GROUP BY obj"
    )
    sql: LiteralString = (
        "SELECT " + q.dims + q.period + "count(*), count(*) FILTER (WHERE m.is_rework), avg(m.is_rework::INTEGER)"
        " FROM (" + inner + ") m" + q.joins + " " + q.group
    )
    args = [*q.period_params, only, only, *q.params, *q.dim_params]
    return sql, args, [*q.head, "cases", "rework_cases", "rework_share"]


def _plain(value: object) -> Json:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return round(value, 6)
    return str(value)
