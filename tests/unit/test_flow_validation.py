"""Flow validation: every broken flow gets its exact problems, with file:line:column and path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from seamflow import connectors, errors
from seamflow.flows import load, spec, validate

BROKEN = Path(__file__).parent / "flows_broken"


class CustomerInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    external_id: str
    name: str
    phone: str | None = None


class OrderInput(BaseModel):
    customer_id: str
    amount_cents: int | str


class ContractInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    erp_order_no: str


CONNECTIONS = {
    "erp": validate.ConnectionInfo(
        "erp",
        "erp_fake",
        {
            "upsert_customer": connectors.Action("upsert_customer", CustomerInput),
            "create_sales_order": connectors.Action("create_sales_order", OrderInput),
        },
    ),
    "crm": validate.ConnectionInfo(
        "crm", "crm_fake", {"update_contract": connectors.Action("update_contract", ContractInput)}
    ),
}
FLOW_IDS = {"contract-signed-to-erp", "credit-check", "x"}


def check(text: str | bytes, filename: str = "bad.yaml") -> spec.Flow:
    if isinstance(text, str):
        text = textwrap.dedent(text).lstrip("\n")
    data, source_map = load.parse_yaml(text, filename)
    return validate.validate_flow(data, source_map, filename, connections=CONNECTIONS, flow_ids=FLOW_IDS)


def problems_of(text: str | bytes, filename: str = "bad.yaml") -> list[str]:
    with pytest.raises(errors.FlowInvalid) as caught:
        check(text, filename)
    assert str(caught.value) == "\n".join(map(str, caught.value.problems))
    return [str(problem) for problem in caught.value.problems]


BROKEN_FLOWS = [
    pytest.param(
        """
        id: x
        trigger: {manual: {}}
        steps:
          - id: a
            transform: {a: 1
          - id: b
        """,
        [
            "bad.yaml:6:7: the { opened at 5:16 is not closed before this point; "
            "expected a , between items or a closing }"
        ],
        id="yaml-syntax-error",
    ),
    pytest.param(
        """
        id: x
        trigger: {manual: {}}
        steps:
          - id: a
            transform: 1
            id: b
        """,
        ["bad.yaml:6:5 steps[0].id: duplicate key 'id' (first at line 4:5); expected each key once in a mapping"],
        id="duplicate-yaml-key",
    ),
    pytest.param(
        """
        id: x
        trigger: {webhook: {path: /orders}}
        steps: [{id: a, transform: 1}]
        """,
        [
            "bad.yaml:2:27 trigger.webhook.path: got '/orders'; "
            "expected the path without its leading slash: orders (served at /hooks/orders)"
        ],
        id="webhook-path-with-leading-slash",
    ),
    pytest.param(
        """
        id: x
        descripton: orders
        trigger: {manual: {}}
        steps: [{id: a, transform: 1}]
        """,
        ["bad.yaml:2:1 descripton: unknown field 'descripton'; did you mean 'description'?"],
        id="unknown-top-level-field",
    ),
    pytest.param(
        """
        id: x
        steps: [{id: a, transform: 1}]
        """,
        ["bad.yaml:1:1: missing field 'trigger'; expected a trigger: webhook, schedule or manual"],
        id="missing-trigger",
    ),
    pytest.param(
        """
        id: x
        trigger:
          manual: {}
          schedule: {every: 5m}
        steps: [{id: a, transform: 1}]
        """,
        [
            "bad.yaml:3:3 trigger: got schedule, manual;"
            " expected exactly one trigger of webhook, schedule, manual, poll, consume, oa"
        ],
        id="two-triggers",
    ),
    pytest.param(
        """
        id: x
        trigger:
          oa: {platform: wecom, path: oa/wecom, token: "{{ secrets.t }}", aes_key: "{{ secrets.k }}"}
        steps: [{id: a, transform: 1}]
        """,
        [
            "bad.yaml:3:7 trigger.oa: got fields platform, path, token, aes_key;"
            " expected receiver_id for wecom: the app key or corp id the messages are for"
        ],
        id="oa-without-receiver",
    ),
    pytest.param(
        """
        id: x
        trigger: {manual: {}}
        steps:
          - id: a
            acton: erp.upsert_customer
        """,
        [
            "bad.yaml:4:5 steps[0]: a step without a kind (unknown field 'acton'; did you mean "
            "'action'?); expected exactly one of: action, transform, if, foreach, call, "
            "respond, wait, emit, approval"
        ],
        id="step-without-kind",
    ),
    pytest.param(
        """
        id: x
        trigger: {manual: {}}
        steps:
          - id: a
            transform: {n: 1}
            emit: {activity: Counted}
        """,
        [
            "bad.yaml:6:5 steps[0].emit: a step with several kinds: transform, emit; "
            "expected exactly one of: action, transform, if, foreach, call, respond, wait, emit, approval"
        ],
        id="step-with-two-kinds",
    ),
    pytest.param(
        """
        id: x
        trigger: {manual: {}}
        steps:
          - id: lines
            foreach: "{{ event.body.lines }}"
            steps:
              - id: post
                transform: "{{ item }}"
          - id: check
            if: "{{ event.body.ok }}"
            then:
              - id: post
                transform: 2
        """,
        [
            "bad.yaml:12:13 steps[1].then[0].id: duplicate step id 'post' "
            "(first at line 7:13, steps[0].steps[0].id); expected step ids used once in a flow"
        ],
        id="duplicate-step-id-nested",
    ),
    pytest.param(
        """
        id: x
        trigger: {manual: {}}
        steps:
          - id: a
            action: ep.upsert_customer
        """,
        [
            "bad.yaml:5:13 steps[0].action: unknown connection 'ep'; did you mean 'erp'?; "
            "expected a connection of connections.yaml: crm, erp"
        ],
        id="unknown-connection",
    ),
    pytest.param(
        """
        id: x
        trigger: {manual: {}}
        steps:
          - id: a
            action: erp.delete_everything
        """,
        [
            "bad.yaml:5:13 steps[0].action: unknown action 'delete_everything' of connection "
            "'erp' (connector erp_fake); expected one of: create_sales_order, upsert_customer"
        ],
        id="unknown-action",
    ),
    pytest.param(
        """
        id: x
        trigger: {manual: {}}
        steps:
          - id: a
            action: erp.upsert_customer
            with:
              external_id: "{{ event.body.id }}"
        """,
        [
            "bad.yaml:6:5 steps[0].with: missing required input 'name' of erp.upsert_customer; "
            "expected inputs external_id (required), name (required), phone"
        ],
        id="missing-required-input",
    ),
    pytest.param(
        """
        id: x
        trigger: {manual: {}}
        steps:
          - id: a
            action: crm.update_contract
            with: {id: "1", erp_order_no: "2", erp_ordr_no: "3"}
        """,
        [
            "bad.yaml:6:40 steps[0].with.erp_ordr_no: unknown input 'erp_ordr_no' of "
            "crm.update_contract; did you mean 'erp_order_no'?"
        ],
        id="unknown-input",
    ),
    pytest.param(
        """
        id: x
        trigger: {manual: {}}
        steps:
          - id: a
            transform: 1
            timeout: 5 minutes
        """,
        ["bad.yaml:6:14 steps[0].timeout: got '5 minutes'; expected a duration such as 30s, 5m, 2h or 3d"],
        id="bad-duration",
    ),
    pytest.param(
        """
        id: x
        trigger:
          schedule: {cron: "0 25 * * *", timezone: Asia/Shanghai}
        steps: [{id: a, transform: 1}]
        """,
        [
            "bad.yaml:3:20 trigger.schedule.cron: got '0 25 * * *'; expected a cron expression "
            "such as '0 9 * * 1-5' (minute hour day month weekday)"
        ],
        id="bad-cron",
    ),
    pytest.param(
        """
        id: x
        trigger:
          schedule:
            cron: "0 9 * * 1-5"
            timezone: Asia/Beijing
        steps: [{id: a, transform: 1}]
        """,
        [
            "bad.yaml:5:15 trigger.schedule.timezone: got 'Asia/Beijing'; "
            "expected an IANA time zone such as Asia/Shanghai or UTC"
        ],
        id="bad-timezone",
    ),
    pytest.param(
        """
        id: x
        trigger: {manual: {}}
        steps:
          - id: a
            transform: 1
          - id: b
            transform: "{{ steps.customer.id }}"
        """,
        [
            "bad.yaml:7:16 steps[1].transform: reference to undefined step 'customer'; "
            "expected a step that runs before this one: a"
        ],
        id="reference-to-undefined-step",
    ),
    pytest.param(
        """
        id: x
        trigger: {manual: {}}
        steps:
          - id: a
            transform: {total: "{{ steps.b.total }}"}
          - id: b
            transform: 1
        """,
        [
            "bad.yaml:5:24 steps[0].transform.total: reference to undefined step 'b' (it is "
            "defined later, at steps[1] (line 6)); expected a step that runs before this one "
            "(there is none)"
        ],
        id="reference-to-later-step",
    ),
    pytest.param(
        """
        id: x
        trigger: {manual: {}}
        steps:
          - id: check
            if: "{{ event.body.vip }}"
            then: [{id: gold, transform: 1}]
            else: [{id: plain, transform: "{{ steps.gold }}"}]
        """,
        [
            "bad.yaml:7:35 steps[0].else[0].transform: reference to undefined step 'gold' "
            "(steps[0].then[0] does not run before this step); "
            "expected a step that runs before this one: check"
        ],
        id="reference-across-branches",
    ),
    pytest.param(
        """
        id: x
        trigger: {manual: {}}
        steps:
          - id: a
            action: erp.create_sales_order
            with:
              customer_id: "1"
              amount_cents:
                lines: ["{{ event.body.lines[0] }}", "{{ event.body.amount | cents "]
        """,
        [
            "bad.yaml:9:46 steps[0].with.amount_cents.lines[1]: in '{{ event.body.amount | "
            "cents ': syntax error at line 1: unexpected end of template, expected 'end of "
            "print statement'; expected an expression such as {{ event.body.id }} or a tag "
            "such as {% if ... %}"
        ],
        id="expression-syntax-error-in-nested-input",
    ),
    pytest.param(
        """
        id: x
        trigger: {manual: {}}
        steps:
          - {id: a, transform: "{{ evnt.body.id }}"}
        """,
        [
            "bad.yaml:4:24 steps[0].transform: in '{{ evnt.body.id }}': unknown name 'evnt' "
            "(did you mean 'event'?); expected one of dict, env, event, item, loop_index, now, "
            "range, result, run, secrets, steps"
        ],
        id="expression-with-unknown-name",
    ),
    pytest.param(
        """
        id: x
        trigger: {webhook: {path: shop/orders}}
        steps:
          - id: answer
            respond: {status: 200, body: ok}
        """,
        [
            "bad.yaml:5:5 steps[0].respond: a respond step in a flow without a synchronous "
            "webhook trigger; expected trigger.webhook.mode: sync"
        ],
        id="respond-in-async-flow",
    ),
    pytest.param(
        """
        id: x
        trigger: {manual: {}}
        steps:
          - id: child
            call: credit-chek
        """,
        [
            "bad.yaml:5:11 steps[0].call: call of unknown flow 'credit-chek'; did you mean "
            "'credit-check'?; expected the id of a flow of this project: "
            "contract-signed-to-erp, credit-check, x"
        ],
        id="call-of-unknown-flow",
    ),
    pytest.param(
        """
        id: x
        trigger: {manual: {}}
        steps:
          - id: Create-Order
            transform: 1
        """,
        [
            "bad.yaml:4:9 steps[0].id: got 'Create-Order'; expected a lowercase letter, then "
            "lowercase letters, digits or _ (at most 63 characters)"
        ],
        id="bad-step-id",
    ),
    pytest.param(
        """
        id: x
        trigger: {manual: {}}
        steps:
          - id: a
            transform: 1
            retry: {attempts: -3}
        """,
        ["bad.yaml:6:23 steps[0].retry.attempts: got -3; expected an integer from 1 to 100"],
        id="retry-attempts-out-of-range",
    ),
    pytest.param(
        """
        id: x
        trigger: {manual: {}}
        steps:
          - id: a
            transform: 1
            retyr: {attempts: 3}
        """,
        ["bad.yaml:6:5 steps[0].retyr: unknown field 'retyr'; did you mean 'retry'?"],
        id="unknown-step-field",
    ),
    pytest.param(
        """
        id: x
        trigger: {manual: {}}
        steps:
          - id: a
            wait: {duration: 1h, signal: approved}
        """,
        ["bad.yaml:5:11 steps[0].wait: got duration, signal; expected exactly one of duration, until, signal"],
        id="wait-with-two-kinds",
    ),
    pytest.param(
        """
        id: x
        trigger: {manual: {}}
        on_error: retry
        steps: [{id: a, transform: 1}]
        """,
        ["bad.yaml:3:11 on_error: got 'retry'; expected one of 'fail', 'continue' or 'dead_letter'"],
        id="bad-on-error",
    ),
    pytest.param(
        """
        id: x
        trigger: {manual: {}}
        steps: []
        """,
        ["bad.yaml:3:8 steps: got []; expected at least one step"],
        id="no-steps",
    ),
    pytest.param(
        """
        id: x
        trigger: {manual: {}}
        steps:
          - id: a
            transform: !secret token
        """,
        [
            "bad.yaml:5:16 steps[0].transform: tag !secret is not allowed; "
            "expected plain YAML: text, numbers, true/false, null, lists and mappings"
        ],
        id="custom-tag",
    ),
    pytest.param(
        (BROKEN / "alias_bomb.yaml").read_bytes(),
        ["bad.yaml:5:8: aliases (*name) are not allowed; expected each value written out"],
        id="alias-bomb",
    ),
    pytest.param(
        (BROKEN / "not_utf8.yaml").read_bytes(),
        ["bad.yaml:2:8: the file is not UTF-8 text (byte 0xba); expected UTF-8 text; save the file as UTF-8"],
        id="not-utf8",
    ),
    pytest.param(
        "id: x\ntrigger: {manual: {}}\nsteps: [{id: a, transform: '" + "x" * (1024 * 1024) + "'}]\n",
        ["bad.yaml: the file has 1,048,636 bytes; expected at most 1 MiB (1,048,576 bytes)"],
        id="file-too-big",
    ),
]


@pytest.mark.parametrize(("text", "expected"), BROKEN_FLOWS)
def test_broken_flow_reports_its_problems_with_positions(text: str | bytes, expected: list[str]) -> None:
    assert problems_of(text) == expected


def test_every_problem_is_reported_at_once_in_file_order() -> None:
    path = BROKEN / "several_problems.yaml"
    assert problems_of(path.read_bytes(), "flows/several_problems.yaml") == [
        "flows/several_problems.yaml:7:5 steps[0].with: missing required input 'name' of "
        "erp.upsert_customer; expected inputs external_id (required), name (required), phone",
        "flows/several_problems.yaml:9:7 steps[0].with.nmae: unknown input 'nmae' of "
        "erp.upsert_customer; did you mean 'name'?",
        "flows/several_problems.yaml:11:13 steps[1].action: unknown connection 'erpp'; did you "
        "mean 'erp'?; expected a connection of connections.yaml: crm, erp",
        "flows/several_problems.yaml:12:23 steps[1].retry.attempts: got 0; expected an integer from 1 to 100",
        "flows/several_problems.yaml:13:25 steps[1].with.customer_id: reference to undefined "
        "step 'custmer'; did you mean 'customer'?; expected a step that runs before this one: "
        "customer",
        "flows/several_problems.yaml:15:5 steps[2].respond: a respond step in a flow without "
        "a synchronous webhook trigger; expected trigger.webhook.mode: sync",
    ]
