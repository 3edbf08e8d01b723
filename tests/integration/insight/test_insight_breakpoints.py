"""The diagnosis' breakpoints and redundancies: hand-offs between systems and between departments (the
wait at each), and the same data typed into two systems — with their cases; departments from the
directory on both store backends; the report as HTML."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from seamflow import insight, store

H = 3_600_000
T0 = 1_772_000_000_000


def _event(seq: int, case: str, activity: str, hours: float, **kw: object) -> insight.Event:
    attributes = kw.pop("data", None)
    obj = insight.EventObject("order", case, attributes=attributes or {})  # type: ignore[arg-type]
    return insight.Event(seq, activity, T0 + round(hours * H), (obj,), **kw)  # type: ignore[arg-type]


def _index() -> insight.ProcessIndex:
    amount = {"amount": "12800.00", "customer": "C-9"}
    rows = [
        # SO-1: signed in the CRM, typed again by hand into the ERP 5 h later, then the WMS ships it.
        _event(1, "SO-1", "Contract signed", 0, system="CRM", is_manual=True, resource="zhangwei", data=amount),
        _event(2, "SO-1", "Order entered", 5, system="ERP", is_manual=True, resource="wangfang", data=amount),
        _event(3, "SO-1", "Credit check", 6),  # no system, no resource: passed over
        _event(4, "SO-1", "Shipped", 30, system="WMS", resource="liuyang"),
        # SO-2: the same, typed into the ERP 1 h later, but the amount was mistyped (not the same data).
        _event(5, "SO-2", "Contract signed", 0, system="CRM", is_manual=True, resource="zhangwei",
               data={"amount": "5600.00", "customer": "C-7"}),
        _event(6, "SO-2", "Order entered", 1, system="ERP", is_manual=True, resource="wangfang",
               data={"amount": "6500.00", "customer": "C-7"}),
        _event(7, "SO-2", "Shipped", 2, system="WMS", resource="liuyang"),
        # SO-3: the ERP got it from the integration (not typed): no redundancy; one system only.
        _event(8, "SO-3", "Contract signed", 0, system="CRM", is_manual=True, resource="zhangwei",
               data={"amount": "990.00"}),
        _event(9, "SO-3", "Order created", 0.01, system="ERP", resource="seamflow", data={"amount": "990.00"}),
    ]  # fmt: skip
    index = insight.ProcessIndex()
    index.append(rows)
    return index


def _of(report: insight.Diagnosis, kind: str) -> list[tuple[str, int, float | None, int | None, tuple[str, ...]]]:
    return [(f.subject, f.cases, f.median_ms, f.total_ms, f.examples) for f in report.findings if f.kind == kind]


def test_handoffs_between_systems_with_the_wait_at_each() -> None:
    report = insight.diagnose(_index(), insight.CaseFilter("order"))
    assert _of(report, "system_handoff") == [
        ("ERP → WMS", 2, 13 * H, 26 * H, ("SO-1", "SO-2")),  # 25 h and 1 h
        ("CRM → ERP", 3, 1 * H, 6 * H + 36_000, ("SO-1", "SO-2", "SO-3")),  # 5 h, 1 h, 36 s
    ]


def test_handoffs_between_departments_of_the_directory() -> None:
    departments = {"zhangwei": "销售部", "wangfang": "财务部", "liuyang": "仓储部"}
    report = insight.diagnose(_index(), insight.CaseFilter("order"), departments=departments)
    assert _of(report, "department_handoff") == [
        ("财务部 → 仓储部", 2, 13 * H, 26 * H, ("SO-1", "SO-2")),
        ("销售部 → 财务部", 2, 3 * H, 6 * H, ("SO-1", "SO-2")),  # seamflow (SO-3) has no department
    ]
    assert _of(insight.diagnose(_index(), insight.CaseFilter("order")), "department_handoff") == []


def test_the_same_data_typed_into_two_systems_with_its_cases() -> None:
    report = insight.diagnose(_index(), insight.CaseFilter("order"))
    # SO-1's amount and customer were typed into both; SO-2's customer too, its amount differs (a typo,
    # not the same data); SO-3's ERP entry came from the integration.
    assert _of(report, "entered_twice") == [
        ("customer typed into CRM and ERP", 2, 3 * H, 6 * H, ("SO-1", "SO-2")),
        ("amount typed into CRM and ERP", 1, 5 * H, 5 * H, ("SO-1",)),
    ]


def test_the_diagnosis_as_html_lists_every_kind() -> None:
    report = insight.diagnose(_index(), insight.CaseFilter("order"), departments={"zhangwei": "销售部"})
    page = insight.diagnosis_html(report, "订单诊断 <o2c>")
    assert "<title>订单诊断 &lt;o2c&gt;</title>" in page
    for anchor in ("bottleneck", "handoff", "system_handoff", "department_handoff", "rework", "entered_twice"):
        assert f'id="{anchor}"' in page
    assert "customer typed into CRM and ERP" in page and "ERP → WMS" in page
    assert "<script" not in page


async def test_departments_come_from_the_directory_and_systems_from_the_log(db: store.SqlStore) -> None:
    await db.save_directory_entries(
        store.DirectoryEntries(
            departments=[store.StoredDepartment("sales", "销售部"), store.StoredDepartment("finance", "财务部")],
            users=[
                store.StoredUser("zhangwei", "张伟", department_id="sales"),
                store.StoredUser("wangfang", "王芳", department_id="finance"),
            ],
        )
    )
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def row(activity: str, hours: int, who: str, system: str) -> store.LogRow:
        attributes = {"resource": who, "system": system, "entry": "manual"}
        objects = {"order": {"id": "SO-1", "attributes": {"amount": "12800.00"}}}
        return store.LogRow(at + timedelta(hours=hours), "business", "o2c", "run_1", "s", activity, objects, attributes)

    # A resource may be a login or a display name (an imported log's 王芳).
    await db.transact(
        lambda tx: tx.append_log([row("Contract signed", 0, "zhangwei", "CRM"), row("Order entered", 4, "王芳", "ERP")])
    )
    found = insight.Insight(db)
    report = await found.diagnosis(insight.CaseFilter("order"), people=db)
    assert _of(report, "department_handoff") == [("销售部 → 财务部", 1, 4.0 * H, 4 * H, ("SO-1",))]
    assert _of(report, "system_handoff") == [("CRM → ERP", 1, 4.0 * H, 4 * H, ("SO-1",))]
    assert _of(report, "entered_twice") == [("amount typed into CRM and ERP", 1, 4.0 * H, 4 * H, ("SO-1",))]
    found.close()
