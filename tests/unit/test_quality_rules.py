"""Rule files: what a row must be, and broken rule files reported with file:line:column."""

from __future__ import annotations

from decimal import Decimal

import pytest

from seamflow import errors, quality

RULES = """\
id: members
fields:
  member_no: {required: true, regex: 'M\\d{8}'}
  mobile: {type: mobile_cn, required: true}
  balance: {type: amount, min: 0, max: 1000000}
  joined: {type: date, min: 2000-01-01}
  level: {enum: [普通会员, 银卡会员, 金卡会员]}
  store_code: {}
checks:
  - id: gold_has_balance
    if: "{{ row.level == '金卡会员' }}"
    assert: "{{ row.balance is not none and row.balance >= 1000 }}"
    message: 金卡会员储值余额不少于 1000 元
references:
  - {field: store_code, connection: erp, action: list_stores, key: code}
"""


def _rules() -> quality.RuleSet:
    return quality.parse_rules(RULES, "rules/members.yaml")


def test_a_good_row_is_normalised_and_the_changed_fields_are_named() -> None:
    outcome = _rules().check(
        {
            "member_no": "M00000001",
            "mobile": "138-0013-8000",
            "balance": "￥1,288.50",
            "joined": "2026年12月7日",
            "level": "金卡会员",
            "other": "kept",
        }
    )
    assert outcome.is_valid, outcome.violations
    assert outcome.values["mobile"] == "+8613800138000"
    assert outcome.values["balance"] == Decimal("1288.50")
    assert outcome.values["joined"] == "2026-12-07"
    assert outcome.values["other"] == "kept"
    assert set(outcome.fixed) == {"mobile", "balance", "joined"}


def test_every_broken_rule_of_a_row_is_reported_with_its_name() -> None:
    outcome = _rules().check(
        {"member_no": "X1", "mobile": None, "balance": "-5元", "joined": "1999-12-31", "level": "铜牌会员"}
    )
    assert [v.rule for v in outcome.violations] == [
        "member_no.regex",
        "mobile.required",
        "balance.min",
        "joined.min",
        "level.enum",
    ]


def test_a_cross_field_check_applies_only_when_its_condition_holds() -> None:
    rules = _rules()
    poor_gold = rules.check({"member_no": "M00000001", "mobile": "13800138000", "balance": "10", "level": "金卡会员"})
    assert [(v.rule, v.message) for v in poor_gold.violations] == [
        ("checks.gold_has_balance", "金卡会员储值余额不少于 1000 元")
    ]
    poor_silver = rules.check({"member_no": "M00000001", "mobile": "13800138000", "balance": "10", "level": "银卡会员"})
    assert poor_silver.is_valid


def test_a_reference_check_refuses_a_value_the_other_system_does_not_hold() -> None:
    rules = _rules()
    rules.set_reference_values("store_code", ["SZ001", "SH002"])
    row = {"member_no": "M00000001", "mobile": "13800138000", "level": "普通会员"}
    assert rules.check({**row, "store_code": "SZ001"}).is_valid
    assert [v.rule for v in rules.check({**row, "store_code": "BJ999"}).violations] == ["store_code.reference"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("id: r\nfields:\n  mobile: {type: mobyle}\n", "rules/r.yaml:3:18 fields.mobile.type: unknown type 'mobyle'"),
        ("id: r\nfields:\n  name: {type: string, min: 3}\n", "rules/r.yaml:3:29 fields.name.min: min does not apply"),
        (
            "id: r\nfields:\n  n: {type: integer, max: lots}\n",
            "rules/r.yaml:3:27 fields.n.max: got 'lots'; expected a number",
        ),
        ("id: r\nfields:\n  n: {regex: '(['}\n", "rules/r.yaml:3:14 fields.n.regex: bad pattern"),
        ("id: r\nfields:\n  n: {requird: true}\n", "rules/r.yaml:3:7 fields.n.requird: Extra inputs are not permitted"),
        ("id: r\nfields:\n  n: {}\nchecks:\n  - {id: c, assert: '{{ row.n >'}\n", "rules/r.yaml:5:5 checks[0]"),
        ("id: r\nfields: [\n", "rules/r.yaml:3:1"),
    ],
)
def test_a_broken_rule_file_is_reported_with_file_line_and_column(text: str, expected: str) -> None:
    with pytest.raises(errors.FlowInvalid) as caught:
        quality.parse_rules(text, "rules/r.yaml")
    assert expected in str(caught.value), str(caught.value)
