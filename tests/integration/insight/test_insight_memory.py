"""KPIs and diagnosis asked again while the log did not grow are answered from the index's memory
(the console's Insight page with a million events); the next event appended is counted at once."""

from __future__ import annotations

from seamflow import insight

H = 3_600_000
START = 1_773_993_600_000  # 2026-03-20 08:00 UTC


def _order(n: int, region: str) -> tuple[insight.EventObject, ...]:
    return (insight.EventObject("order", f"SO-2026-{n:04d}", attributes={"region": region}),)


def _index() -> insight.ProcessIndex:
    index = insight.ProcessIndex()
    events = []
    for n, region, wait_h in ((1, "华东", 3), (2, "华南", 1)):
        seq = len(events) + 1
        events += [
            insight.Event(seq, "Sales order created", START, _order(n, region)),
            insight.Event(seq + 1, "Approved by finance", START + wait_h * H, _order(n, region), resource="王芳"),
        ]
    index.append(events)
    return index


KPI = insight.Kpi.model_validate(
    {"id": "approval", "kind": "cycle_time", "object_type": "order", "from": "Sales order created",
     "to": "Approved by finance", "by": ["region"]}
)  # fmt: skip


def test_a_kpi_asked_again_is_remembered_until_an_event_is_appended() -> None:
    index = _index()
    first = insight.compute_kpi(index, KPI)
    assert insight.compute_kpi(index, KPI) is first, "the same question on the same log: no second query"
    assert insight.compute_kpi(index, KPI, cases=insight.CaseFilter("order", {"region": "华东"})) is not first

    order = _order(3, "华北")
    index.append([insight.Event(5, "Sales order created", START, order), insight.Event(6, "Approved by finance",
                  START + 5 * H, order)])  # fmt: skip
    again = insight.compute_kpi(index, KPI)
    assert again is not first
    assert len(again.rows) == len(first.rows) + 1, "the appended case's region is counted at once"


def test_a_diagnosis_asked_again_is_remembered_until_an_event_is_appended() -> None:
    index = _index()
    where = insight.CaseFilter("order")
    first = insight.diagnose(index, where)
    assert insight.diagnose(index, where) is first
    assert insight.diagnose(index, where, departments={"王芳": "财务部"}) is not first, "other departments"

    order = _order(1, "华东")
    index.append([insight.Event(5, "Approved by finance", START + 4 * H, order, resource="李雷")])
    again = insight.diagnose(index, where)
    assert again is not first
    assert any(f.kind == "rework" for f in again.findings), "the second approval of SO-2026-0001 is found at once"
