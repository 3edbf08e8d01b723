"""The `approval` step in a flow file: levels, assignees, modes, timers and forms, checked with positions."""

from __future__ import annotations

import textwrap

import pytest

from seamflow import errors
from seamflow.flows import load, spec, validate

PROCURE = """
id: procure-to-pay
trigger: {manual: {}}
steps:
  - id: request
    transform: {no: "{{ event.body.no }}", amount: "{{ event.body.amount }}"}
  - id: approve
    approval:
      requester: "{{ event.body.requester }}"
      subject: "采购申请 {{ steps.request.no }}"
      due: 2d
      remind_after: 1d
      escalate: manager
      form:
        type: object
        properties: {budget_code: {type: string}}
      levels:
        - name: 部门负责人
          assignees: [{department_head: "{{ event.body.department }}"}]
        - name: 财务总监
          when: "{{ steps.request.amount > 5000 }}"
          assignees: [{position: finance_director}, {user: wang.fang}]
          mode: all
        - assignees: [{manager_of_requester: 2}, {expression: "{{ event.body.cc }}"}]
          mode: 1
"""


def check(text: str, filename: str = "flows/bad.yaml") -> spec.Flow:
    data, source_map = load.parse_yaml(textwrap.dedent(text).lstrip("\n"), filename)
    return validate.validate_flow(data, source_map, filename, connections={}, flow_ids=set())


def problems_of(text: str) -> list[str]:
    with pytest.raises(errors.FlowInvalid) as caught:
        check(text)
    return [str(problem) for problem in caught.value.problems]


def test_a_procure_to_pay_approval_is_valid() -> None:
    flow = check(PROCURE)
    step = flow.steps[1]
    assert isinstance(step, spec.ApprovalStep)
    levels = step.approval.levels
    assert [level.mode for level in levels] == ["any", "all", 1]
    assert levels[1].assignees[0].position == "finance_director"
    assert levels[2].assignees[0].manager_of_requester == 2
    assert step.approval.allow_self_approval is False


@pytest.mark.parametrize(
    ("replace", "by", "expected"),
    [
        pytest.param(
            "{position: finance_director}, ",
            "{position: finance_director, user: li.na}, ",
            "flows/bad.yaml:21:23 steps[1].approval.levels[1].assignees[0]: got user, position; "
            "expected exactly one of user, position, department_head, manager_of_requester, expression",
            id="two-assignee-kinds",
        ),
        pytest.param(
            "mode: all",
            "mode: most",
            "flows/bad.yaml:22:17 steps[1].approval.levels[1].mode: got 'most'; "
            "expected any, all, or a number of approvals from 1 to 100",
            id="bad-mode",
        ),
        pytest.param(
            "remind_after: 1d",
            "remind_after: 3d",
            "flows/bad.yaml:8:7 steps[1].approval: remind_after must be shorter than due",
            id="remind-after-due",
        ),
        pytest.param(
            "{{ steps.request.amount > 5000 }}",
            "{{ steps.reqest.amount > 5000 }}",
            "flows/bad.yaml:20:17 steps[1].approval.levels[1].when: reference to undefined step 'reqest'",
            id="undefined-step-in-when",
        ),
        pytest.param(
            "type: object",
            "type: thing",
            "flows/bad.yaml:14:9 steps[1].approval.form: got fields type, properties; "
            "expected a JSON Schema; 'thing' is not valid",
            id="form-not-a-json-schema",
        ),
    ],
)
def test_a_broken_approval_is_reported_where_it_is(replace: str, by: str, expected: str) -> None:
    assert replace in PROCURE
    problems = problems_of(PROCURE.replace(replace, by, 1))
    assert any(problem.startswith(expected) for problem in problems), problems


NOTIFIED = PROCURE.replace("      due: 2d\n", "      due: 2d\n      notify: {connection: CONNECTION}\n", 1)


def notify_problems(connection: str, connections: dict[str, validate.ConnectionInfo]) -> list[str]:
    text = textwrap.dedent(NOTIFIED.replace("CONNECTION", connection)).lstrip("\n")
    data, source_map = load.parse_yaml(text, "flows/bad.yaml")
    try:
        validate.validate_flow(data, source_map, "flows/bad.yaml", connections=connections, flow_ids=set())
    except errors.FlowInvalid as caught:
        return [str(problem) for problem in caught.problems]
    return []


def test_notify_names_a_connection_that_can_reach_people() -> None:
    mail = validate.ConnectionInfo("mail", "email", {})
    erp = validate.ConnectionInfo("erp", "http", {})
    assert "      notify: {connection: CONNECTION}\n" in NOTIFIED
    assert notify_problems("mail", {"mail": mail, "erp": erp}) == []
    [unknown] = notify_problems("mial", {"mail": mail})
    assert unknown.startswith("flows/bad.yaml:11:28 steps[1].approval.notify.connection: unknown connection 'mial'")
    [wrong] = notify_problems("erp", {"mail": mail, "erp": erp})
    assert "steps[1].approval.notify.connection" in wrong and "cannot notify people" in wrong
    assert "expected a connection of connector email, dingtalk, wecom, feishu" in wrong
