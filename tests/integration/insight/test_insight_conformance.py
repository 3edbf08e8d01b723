"""Conformance against the designed path: skipped, repeated, out-of-order and unexpected activities, with the cases."""

from __future__ import annotations

from seamflow import insight

DESIGNED = ["订单创建", "Credit check", "Shipped", "Payment received"]


def _index(paths: dict[str, list[str]]) -> insight.ProcessIndex:
    index = insight.ProcessIndex()
    seq = 0
    events = []
    for case, path in paths.items():
        for i, activity in enumerate(path):
            seq += 1
            events.append(
                insight.Event(seq, activity, 1_772_000_000_000 + i * 1000, (insight.EventObject("order", case),))
            )
    index.append(events)
    return index


def test_deviations_name_the_activity_and_the_cases() -> None:
    index = _index(
        {
            "SO-1": DESIGNED,
            "SO-2": DESIGNED,
            "SO-3": ["订单创建", "Shipped", "Payment received"],
            "SO-4": ["订单创建", "Credit check", "Credit check", "Shipped", "Payment received"],
            "SO-5": ["订单创建", "Credit check", "Payment received", "Shipped"],
            "SO-6": ["订单创建", "Order corrected", "Credit check", "Shipped", "Payment received"],
        }
    )
    report = insight.check_conformance(index, insight.CaseFilter("order"), DESIGNED)
    assert (report.cases, report.conforming) == (6, 2)
    assert {(d.kind, d.activity): d.examples for d in report.deviations} == {
        ("skipped", "Credit check"): ("SO-3",),
        ("repeated", "Credit check"): ("SO-4",),
        ("out_of_order", "Shipped"): ("SO-5",),
        ("unexpected", "Order corrected"): ("SO-6",),
    }


def test_many_deviating_cases_are_counted_and_ten_are_shown() -> None:
    index = _index({f"SO-{i:02d}": ["订单创建", "Shipped", "Payment received"] for i in range(25)})
    report = insight.check_conformance(index, insight.CaseFilter("order"), DESIGNED)
    (skipped,) = report.deviations
    assert (skipped.kind, skipped.cases, len(skipped.examples)) == ("skipped", 25, 10)
    assert skipped.examples[0] == "SO-00"
