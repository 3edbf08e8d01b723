"""The object-centric model: rows of the store's event log as events with objects, and pm4py kept out of src/."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from seamflow import errors, insight, store

AT = datetime(2026, 3, 2, 9, 30, 0, 125000, tzinfo=UTC)


def _row(kind: str, **fields: object) -> store.LogEntry:
    values: dict[str, object] = {"seq": 9, "at": AT, "kind": kind, "flow_id": "o2c", "run_id": "run_1"}
    values.update({"path": None, "activity": None, "objects": None, "attributes": None, **fields})
    return store.LogEntry(**values)  # type: ignore[arg-type]


def test_business_event_keeps_activity_objects_attributes_and_links() -> None:
    row = _row(
        "business",
        path="signed",
        activity="合同签约",
        objects={
            "order": {
                "id": "SO-1",
                "attributes": {"region": "华东", "amount_cents": 1999},
                "related": {"customer": "C-9"},
            },
            "invoice": ["INV-3", 4],
        },
        attributes={"resource": "zhang.wei"},
    )
    event = insight.to_event(row)
    assert event is not None
    assert (event.seq, event.activity, event.at_ms, event.resource) == (9, "合同签约", 1772443800125, "zhang.wei")
    assert [(o.type, o.id) for o in event.objects] == [("order", "SO-1"), ("invoice", "INV-3"), ("invoice", "4")]
    assert event.objects[0].attributes == {"region": "华东", "amount_cents": "1999"}
    assert event.links == (insight.ObjectLink("order", "SO-1", "customer", "C-9", "customer"),)


def test_approval_rows_become_activities_with_the_approver_as_resource() -> None:
    created = insight.to_event(
        _row("task.created", objects={"approval": "apv_1", "task": "tsk_1"}, attributes={"who": "li.na"})
    )
    decided = insight.to_event(
        _row(
            "task.decided",
            objects={"approval": "apv_1"},
            attributes={"who": "li.na", "decision": "approve", "level": 2},
        )
    )
    assert created is not None and decided is not None
    assert created.activity == "Approval requested"
    assert decided.activity == "Approved by level 2"
    assert decided.resource == "li.na"
    assert ("run", "run_1") in [(o.type, o.id) for o in decided.objects]


def test_a_decision_is_named_after_its_level_from_the_task_created_before() -> None:
    levels: dict[tuple[str, str], str] = {}
    objects = {"approval": "apv_1", "task": "tsk_1"}
    insight.to_event(
        _row("task.created", objects=objects, attributes={"who": "li.na", "level": 1, "level_name": "财务经理"}), levels
    )
    decided = insight.to_event(
        _row("task.decided", objects=objects, attributes={"who": "li.na", "decision": "reject", "level": 1}), levels
    )
    other = insight.to_event(
        _row("task.decided", objects={"approval": "apv_2"}, attributes={"decision": "approve", "level": 1}), levels
    )
    assert decided is not None and other is not None
    assert (decided.activity, other.activity) == ("Rejected by 财务经理", "Approved by level 1")


def test_engine_rows_map_to_activities_on_their_run() -> None:
    queued = insight.to_event(_row("run.queued"))
    step = insight.to_event(_row("step.completed", path="order"))
    assert queued is not None and step is not None
    assert (queued.activity, step.activity) == ("Run started", "order completed")
    assert [(o.type, o.id) for o in step.objects] == [("run", "run_1")]
    assert insight.to_event(_row("lease.renewed")) is None


def test_objects_of_the_wrong_shape_say_where_and_what_was_expected() -> None:
    with pytest.raises(
        errors.InvalidInput, match=r"event_log seq 9: objects.order: got \[1\]; expected an object id"
    ) as info:
        insight.to_event(_row("business", activity="x", objects={"order": [[1]]}))
    assert info.value.code == "insight.objects_invalid"


def test_src_never_imports_pm4py_or_pandas() -> None:
    # pm4py is AGPL: a test-only dependency. pandas comes with it and is not a runtime dependency either.
    src = Path(__file__).parents[2] / "src"
    offenders = [
        str(p)
        for p in src.rglob("*.py")
        if re.search(r"^\s*(import|from)\s+(pm4py|pandas)\b", p.read_text(encoding="utf-8"), re.M)
    ]
    assert offenders == []


def test_the_lead_to_cash_example_kpis_name_activities_its_flows_emit() -> None:
    root = Path(__file__).parents[2] / "examples" / "lead-to-cash"
    found = insight.load_kpis(root / "kpis.yaml")
    emitted = set(
        re.findall(r"activity: (.+)", "\n".join(p.read_text("utf-8") for p in (root / "flows").glob("*.yaml")))
    )
    named = {a for k in found.kpis for a in (k.from_, k.to, k.activity) if a}
    assert named <= emitted, named - emitted


def test_a_step_row_s_system_is_the_connection_its_action_calls_and_an_emit_may_name_its_own() -> None:
    from seamflow import flows

    flow = flows.spec.Flow.model_validate(
        {
            "id": "o2c",
            "trigger": {"manual": {}},
            "steps": [
                {"id": "order", "action": "erp.create_sales_order", "with": {}},
                {
                    "id": "notify",
                    "foreach": "{{ [1, 2] }}",
                    "steps": [{"id": "post", "action": "dingtalk.markdown", "with": {}}],
                },
            ],
        }
    )
    systems = insight.step_systems([flows.compile_flow(flow, version="v1", source="", path="flows/o2c.yaml")])
    assert systems == {("o2c", "order"): "erp", ("o2c", "notify.post"): "dingtalk"}
    step = insight.to_event(_row("step.completed", path="notify[1].post"), systems=systems)
    assert step is not None and step.system == "dingtalk" and not step.is_manual
    typed = insight.to_event(
        _row(
            "business",
            path="entered",
            activity="Order entered",
            objects={"order": "SO-1"},
            attributes={"system": "金蝶K3", "entry": "manual", "resource": "王芳"},
        ),
        systems=systems,
    )
    assert typed is not None and typed.system == "金蝶K3" and typed.is_manual
