"""A rehearsal lists its steps in the order the flow runs them, however the store's millisecond start
times tie (CI saw `done` listed before `order` when both started in the same millisecond)."""

from __future__ import annotations

from datetime import UTC, datetime

from seamflow import store
from seamflow.flows import in_flow_order, load

FLOW = """
id: contract-to-erp
trigger: {webhook: {path: crm/contracts}}
steps:
  - id: order
    transform: {n: 1}
  - id: vip
    if: "{{ true }}"
    then:
      - {id: approve, transform: {ok: true}}
    else:
      - {id: auto_ok, transform: {ok: true}}
  - id: lines
    foreach: "{{ [1, 2, 3] }}"
    steps:
      - {id: add_line, transform: {line: "{{ item }}"}}
  - id: done
    transform: {n: 2}
"""
AT = datetime(2026, 12, 8, 9, 30, tzinfo=UTC)  # every entry started in the same millisecond


def _entry(path: str, attempt: int = 1) -> store.JournalEntry:
    return store.JournalEntry(path, attempt, 0, "transform", store.StepStatus.COMPLETED, None, None, None, AT, AT)


def test_entries_started_in_the_same_millisecond_come_in_the_flows_order() -> None:
    flow, _ = load.load_flow_text(FLOW, "flows/contract.yaml")
    paths = ["done", "lines[10].add_line", "lines[2].add_line", "lines", "vip.approve", "vip", "order"]
    journal = [_entry(p) for p in paths] + [_entry("order", attempt=2)]
    ordered = [(e.path, e.attempt) for e in in_flow_order(journal, flow.steps)]
    assert ordered == [
        ("order", 1),
        ("order", 2),
        ("vip", 1),
        ("vip.approve", 1),
        ("lines", 1),
        ("lines[2].add_line", 1),
        ("lines[10].add_line", 1),
        ("done", 1),
    ]
