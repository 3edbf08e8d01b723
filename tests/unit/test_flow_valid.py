"""Valid flows pass: every step kind, every trigger, the scope of names; the JSON Schema."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from seamflow import redact
from seamflow.flows import load, validate
from tests.unit.test_flow_validation import check, problems_of

EVERY_STEP_KIND = """
id: contract-signed-to-erp
name: 合同签约 → ERP 待审核销售订单
trigger:
  webhook:
    path: crm/contracts
    mode: sync
    response_timeout: 5s
    signature: {secret: "{{ secrets.crm_webhook }}", header: X-Signature, prefix: "sha256="}
    dedupe_key: "{{ event.body.contract_id }}:{{ event.body.version }}"
when: "{{ event.body.status == 'signed' }}"
steps:
  - id: customer
    action: erp.upsert_customer
    with:
      external_id: "{{ event.body.customer.id }}"
      name: "{{ event.body.customer.name }}"
    output: {id: "{{ result.id }}"}
    retry: {attempts: 8, backoff: exponential, initial_delay: 500ms, max_delay: 5m}
    timeout: 30s
    idempotency_key: "{{ event.body.contract_id }}"
    on_error: continue
  - id: order
    action: erp.create_sales_order
    with: {customer_id: "{{ steps.customer.id }}", amount_cents: 1990, note: kept}
  - id: totals
    transform: {count: "{{ event.body.lines | length }}", customer: "{{ steps.customer.id }}"}
  - id: vip
    if: "{{ event.body.amount > 100000 }}"
    then:
      - id: approval
        wait: {signal: approved, key: "{{ event.body.contract_id }}", timeout: 3d}
    else:
      - id: cool_down
        wait: {duration: 2h}
  - id: lines
    foreach: "{{ event.body.lines }}"
    as: line
    concurrency: 4
    steps:
      - id: post_line
        transform: {sku: "{{ line.sku }}", order: "{{ steps.order.number }}"}
  - id: check
    call: credit-check
    input: {customer: "{{ steps.customer.id }}", approved: "{{ steps.approval }}"}
  - id: until_morning
    wait: {until: "{{ event.body.deliver_at }}"}
  - id: signed
    emit:
      activity: Sales order created
      time: "{{ event.body.signed_at }}"
      objects: {order: "{{ steps.order.number }}", customer: "{{ event.body.customer.id }}"}
      attributes: {lines: "{{ steps.post_line }}"}
  - id: writeback
    action: crm.update_contract
    with: {id: "{{ event.body.contract_id }}", erp_order_no: "{{ steps.order.number }}"}
  - id: answer
    respond: {status: 201, body: {order: "{{ steps.order.number }}"}, headers: {X-Run: "1"}}
on_error: dead_letter
concurrency: 16
"""


def test_a_flow_with_every_step_kind_is_valid() -> None:
    flow = check(EVERY_STEP_KIND, "flows/contract.yaml")
    assert flow.id == "contract-signed-to-erp"
    assert [load.format_path(("steps", i)) for i in range(2)] == ["steps[0]", "steps[1]"]
    assert [step.id for step in flow.steps] == [
        "customer", "order", "totals", "vip", "lines", "check",
        "until_morning", "signed", "writeback", "answer",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "trigger",
    [
        "{schedule: {cron: '*/5 * * * *', timezone: Asia/Shanghai}}",
        "{schedule: {every: 90s}}",
        "{webhook: {path: shop/orders}}",
        "{manual: {}}",
    ],
)
def test_every_kind_of_trigger_is_valid(trigger: str) -> None:
    flow = check(f"id: x\ntrigger: {trigger}\nsteps: [{{id: a, transform: 1}}]\n")
    assert flow.trigger.kind in trigger


def test_foreach_item_name_is_usable_inside_the_loop_only() -> None:
    inside = """
        id: x
        trigger: {manual: {}}
        steps:
          - id: lines
            foreach: "{{ event.body.lines }}"
            as: line
            steps:
              - {id: post, transform: "{{ line.sku }}"}
        """
    check(inside)
    outside = textwrap.dedent(inside) + '  - {id: after, transform: "{{ line.sku }}"}\n'
    assert problems_of(outside) == [
        "bad.yaml:9:28 steps[1].transform: in '{{ line.sku }}': unknown name 'line'; expected "
        "one of dict, env, event, item, loop_index, now, range, result, run, secrets, steps"
    ]


def test_computed_step_references_are_left_to_run_time() -> None:
    check(
        """
        id: x
        trigger: {manual: {}}
        steps:
          - {id: a, transform: "{{ steps[event.body.which] }} {{ steps }}"}
        """
    )


def test_steps_inside_a_branch_may_be_referenced_after_it() -> None:
    check(
        """
        id: x
        trigger: {manual: {}}
        steps:
          - id: vip
            if: "{{ event.body.vip }}"
            then: [{id: gold, transform: 1}]
          - {id: after, transform: "{{ steps.gold }}"}
        """
    )


def test_secrets_never_appear_in_problems() -> None:
    redact.register("s3cr3t-token-value")
    text = "id: x\ntrigger: {manual: {}}\nsteps: [{id: a, transform: 1, timeout: s3cr3t-token-value}]\n"
    [problem] = problems_of(text)
    assert "s3cr3t" not in problem
    assert problem == ("bad.yaml:3:40 steps[0].timeout: got '***'; expected a duration such as 30s, 5m, 2h or 3d")


def test_json_schema_describes_flow_files_for_editors() -> None:
    schema: dict[str, Any] = validate.flow_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "Seamflow flow file"
    assert set(schema["required"]) == {"id", "trigger", "steps"}
    assert schema["properties"]["trigger"]["description"].startswith("what starts a run")
    assert "with" in schema["$defs"]["ActionStep"]["properties"]
    jsonschema = pytest.importorskip(
        "jsonschema",
        reason="jsonschema is not installed; the schema was not checked against a flow",
    )
    data, _ = load.parse_yaml(EVERY_STEP_KIND, "flows/contract.yaml")
    assert isinstance(data, dict)
    jsonschema.validate(data, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**data, "retyr": 1}, schema)
