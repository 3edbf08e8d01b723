"""Alerts on KPIs: a threshold, or a change against the previous period (e.g. the median approval
time up 50 % week over week), evaluated when a flow asks (`insight.check_alerts` on a schedule).

A condition that holds is notified once, when it starts to fire, and again only after the rule's
`repeat_after`; `AlertMemory` remembers what was notified (and, with `notify_resolved`, says when
a condition stopped firing)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from seamflow.ids import Json
from seamflow.insight.index import ProcessIndex
from seamflow.insight.kpi import AlertRule, Kpi, compute_kpi
from seamflow.insight.process_map import CaseFilter

__all__ = ["AlertMemory", "Firing", "Notifications", "evaluate_alerts"]

_WINDOWS = {"day": timedelta(days=1), "week": timedelta(weeks=1), "month": timedelta(days=30)}


@dataclass(frozen=True, slots=True)
class Firing:
    """An alert that fires: for which KPI row (its dimension values), the value and what it was compared with."""

    alert: str
    kpi: str
    key: dict[str, Json]
    value: float
    compared_with: float
    message: str

    def to_json(self) -> Json:
        """The firing alert as JSON (a flow's next step sends `message`)."""
        return {
            "alert": self.alert,
            "kpi": self.kpi,
            "key": dict(self.key),
            "value": self.value,
            "compared_with": self.compared_with,
            "message": self.message,
        }


def evaluate_alerts(
    index: ProcessIndex, kpis: list[Kpi], rules: list[AlertRule], now: datetime, offset: timedelta = timedelta(0)
) -> list[Firing]:
    """The rules that fire now: each KPI row of the last window (cases started in it) against the rule.

    Raises:
        errors.InvalidInput: a rule names a KPI or measure that does not exist (`insight.alert_invalid`).
    """
    from seamflow import errors

    by_id = {k.id: k for k in kpis}
    firing: list[Firing] = []
    for rule in rules:
        kpi = by_id.get(rule.kpi)
        if kpi is None:
            raise errors.InvalidInput(
                f"alerts.{rule.id}: no KPI {rule.kpi!r}; expected one of {', '.join(by_id)}",
                code="insight.alert_invalid",
            )
        window = _WINDOWS[rule.window]
        current = _rows(index, kpi, offset, now - window, now)
        previous = _rows(index, kpi, offset, now - 2 * window, now - window) if rule.rise_above is not None else {}
        for key, row in current.items():
            if rule.measure not in row:
                raise errors.InvalidInput(
                    f"alerts.{rule.id}: the KPI {kpi.id} has no measure {rule.measure!r};"
                    f" expected one of {', '.join(row)}",
                    code="insight.alert_invalid",
                )
            found = _check(rule, row[rule.measure], previous.get(key, {}).get(rule.measure))
            if found is not None:
                value, against, how = found
                shown = ", ".join(f"{k}={v}" for k, v in key) or "all cases"
                message = (
                    f"{kpi.name or kpi.id} ({shown}): {rule.measure} {value:g} {how} {against:g}, last {rule.window}"
                )
                firing.append(Firing(rule.id, kpi.id, dict(key), value, against, message))
    return firing


def _rows(
    index: ProcessIndex, kpi: Kpi, offset: timedelta, start: datetime, end: datetime
) -> dict[tuple[tuple[str, Json], ...], dict[str, Json]]:
    result = compute_kpi(index, kpi, offset, CaseFilter(kpi.object_type, start=start, end=end))
    dims = [c for c in result.columns if c in kpi.by or c in ("period", "resource", "activity")]
    rows: dict[tuple[tuple[str, Json], ...], dict[str, Json]] = {}
    for values in result.rows:
        row = dict(zip(result.columns, values, strict=True))
        rows[tuple((d, row[d]) for d in dims)] = row
    return rows


def _check(rule: AlertRule, value: Json, before: Json) -> tuple[float, float, str] | None:
    if not isinstance(value, int | float):
        return None
    if rule.above is not None and value > rule.above:
        return float(value), rule.above, "is above"
    if rule.below is not None and value < rule.below:
        return float(value), rule.below, "is below"
    if rule.rise_above is not None and isinstance(before, int | float) and before > 0:
        if (value - before) / before > rule.rise_above:
            return float(value), float(before), "rose from"
    return None


@dataclass(frozen=True, slots=True)
class Notifications:
    """What to send now, out of the alerts that fire: the new and the repeated ones, and the resolved ones."""

    firing: tuple[Firing, ...]
    """Alerts that started to fire, or still fire and were last notified `repeat_after` ago or earlier."""
    resolved: tuple[Firing, ...]
    """Alerts with `notify_resolved` that fired at the last check and no longer do (their last firing,
    with a message saying it is back to normal)."""
    held: int
    """Alerts that still fire and were notified recently enough: not sent again."""


_Key = tuple[str, tuple[tuple[str, str], ...]]


class AlertMemory:
    """Which alert rows fire and when each was last notified, across the checks of one process.

    Kept in memory: after a restart an alert that still fires is notified once more.
    """

    def __init__(self) -> None:
        self._notified: dict[_Key, tuple[datetime, Firing]] = {}

    def sort(self, firing: list[Firing], rules: list[AlertRule], now: datetime) -> Notifications:
        """Sort the alerts that fire `now` into those to notify and those held back; remember the outcome.

        Args:
            firing: what `evaluate_alerts` found now.
            rules: the KPI file's alert rules (their `repeat_after` and `notify_resolved`).
            now: the time of the check.
        """
        by_id = {rule.id: rule for rule in rules}
        send: list[Firing] = []
        held = 0
        current: set[_Key] = set()
        for found in firing:
            key = _key(found)
            current.add(key)
            rule = by_id.get(found.alert)
            last = self._notified.get(key)
            repeat = rule.repeat_after_delta() if rule is not None else None
            if last is None or (repeat is not None and now - last[0] >= repeat):
                self._notified[key] = (now, found)
                send.append(found)
            else:
                held += 1
        resolved: list[Firing] = []
        for key in [k for k in self._notified if k not in current]:
            _, last_firing = self._notified.pop(key)
            rule = by_id.get(key[0])
            if rule is not None and rule.notify_resolved:
                message = f"Back to normal (was: {last_firing.message})"
                resolved.append(replace(last_firing, message=message))
        return Notifications(tuple(send), tuple(resolved), held)


def _key(found: Firing) -> _Key:
    return found.alert, tuple(sorted((k, str(v)) for k, v in found.key.items()))
