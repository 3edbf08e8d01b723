"""The process diagnosis: bottlenecks, hand-offs between people with the wait at each, and rework — with their cases."""

from __future__ import annotations

from seamflow import insight

H = 3_600_000
T0 = 1_772_000_000_000


def _index() -> insight.ProcessIndex:
    rows = [  # case, activity, hours after T0, resource
        ("SO-1", "订单创建", 0, "张伟"),
        ("SO-1", "Credit check", 1, None),
        ("SO-1", "Approved by finance", 5, "王芳"),
        ("SO-1", "Shipped", 6, "刘洋"),
        ("SO-2", "订单创建", 0, "张伟"),
        ("SO-2", "Credit check", 1, None),
        ("SO-2", "Credit check", 2, None),
        ("SO-2", "Approved by finance", 9, "王芳"),
        ("SO-2", "Shipped", 30, "刘洋"),
        ("SO-3", "订单创建", 0, "张伟"),
        ("SO-3", "Shipped", 2, "张伟"),
    ]
    index = insight.ProcessIndex()
    index.append(
        insight.Event(seq, act, T0 + h * H, (insight.EventObject("order", case),), resource=who)
        for seq, (case, act, h, who) in enumerate(rows, start=1)
    )
    return index


def test_findings_of_each_kind_with_their_cases() -> None:
    report = insight.diagnose(_index(), insight.CaseFilter("order"), top=2)
    by_kind: dict[str, list[insight.Finding]] = {}
    for f in report.findings:
        by_kind.setdefault(f.kind, []).append(f)
    assert [(f.subject, f.total_ms, f.examples) for f in by_kind["bottleneck"]] == [
        ("Approved by finance → Shipped", 22 * H, ("SO-2", "SO-1")),
        ("Credit check → Approved by finance", 11 * H, ("SO-2", "SO-1")),
    ]
    # 张伟 → 王芳 passes over the credit checks (no resource): 5 h and 9 h; 王芳 → 刘洋: 1 h and 21 h.
    assert [(f.subject, f.cases, f.median_ms, f.total_ms, f.examples) for f in by_kind["handoff"]] == [
        ("王芳 → 刘洋", 2, 11 * H, 22 * H, ("SO-2", "SO-1")),
        ("张伟 → 王芳", 2, 7 * H, 14 * H, ("SO-2", "SO-1")),
    ]
    assert [(f.subject, f.cases, f.examples) for f in by_kind["rework"]] == [("Credit check", 1, ("SO-2",))]
    assert report.to_json()["cases"] == 3  # type: ignore[index]
