"""Checking rows column by column gives what checking them one by one gives, and the validators' fast
ways for the common shapes give what their general way gives."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum.cn import ric

from seamflow import quality
from seamflow.quality import amounts, phones
from tests.support import customers_cn

RULES = """\
id: members
fields:
  member_no: {required: true, regex: 'M\\d{8}'}
  mobile: {type: mobile_cn, required: true}
  balance: {type: amount, min: 0, max: 1000000}
  joined: {type: date, min: 2000-01-01}
  level: {enum: [普通会员, 银卡会员, 金卡会员]}
  points: {type: integer, min: 0}
  store_code: {max_length: 5}
checks:
  - id: gold_has_balance
    if: "{{ row.level == '金卡会员' }}"
    assert: "{{ row.balance is not none and row.balance >= 1000 }}"
references:
  - {field: store_code, connection: erp, action: list_stores, key: code}
"""


def _same_as_row_by_row(rules: quality.RuleSet, rows: list[dict[str, Any]], names: list[str]) -> None:
    columns = {name: [row.get(name) for row in rows] for name in names}
    batch = rules.check_batch(columns, len(rows))
    assert list(batch.violations) == sorted(batch.violations)
    for index, row in enumerate(rows):
        one = rules.check(row)
        assert batch.violations.get(index, []) == one.violations, (row, one.violations)
        assert (index in batch.fixed) == bool(one.fixed), row
        for name in names:
            assert batch.values[name][index] == one.values.get(name), (name, row)
            assert type(batch.values[name][index]) is type(one.values.get(name)), (name, row)
    bare = rules.check_batch(columns, len(rows), values=False)
    assert bare.violations == batch.violations and bare.fixed == set() and bare.values == {}


def test_a_batch_of_the_customer_export_gets_the_verdicts_of_row_by_row_checks() -> None:
    rules = quality.parse_rules(customers_cn.RULES, "rules/members.yaml")
    names = list(customers_cn.FIELDS)
    rows = [{name: cell or None for name, cell in zip(names, row, strict=True)} for row in customers_cn.rows(3000)]
    _same_as_row_by_row(rules, rows, names)
    bad = rules.check_batch({name: [row[name] for row in rows] for name in names}, len(rows), values=False)
    assert set(bad.violations) == {n - 1 for n in range(1, 3001) if customers_cn.is_bad(n)}


CELLS = st.one_of(
    st.none(),
    st.sampled_from(["", " ", "M00000001", "13800138000", "＋86 138 0013 8000", "1,288.50元", "-5", "2026年12月7日"]),
    st.sampled_from(["金卡会员", "普通会员", "SZ001", "BJ999", "1", "1.0", "True", "0"]),
    st.integers(-3, 3),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False, width=16),
    st.sampled_from([Decimal("1288.5"), Decimal("1")]),
    st.text(max_size=12),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])  # a busy machine
@given(rows=st.lists(st.fixed_dictionaries({}, optional={n: CELLS for n in ("member_no", "mobile", "balance",
    "joined", "level", "points", "store_code", "note")}), min_size=1, max_size=12))  # fmt: skip
def test_any_batch_gets_the_verdicts_of_row_by_row_checks(rows: list[dict[str, Any]]) -> None:
    rules = quality.parse_rules(RULES, "rules/members.yaml")
    rules.set_reference_values("store_code", ["SZ001", "1", "True"])
    _same_as_row_by_row(rules, rows, ["member_no", "mobile", "balance", "joined", "level", "points", "store_code"])


def _general_amount(text: str) -> Decimal | str:
    saved, amounts._COMMON = amounts._COMMON, re.compile(r"(?!)")
    try:
        return amounts.normalise_amount(text)
    except ValueError as exc:
        return str(exc)
    finally:
        amounts._COMMON = saved


def _general_phone(text: str, kind: str) -> str:
    saved, phones._COMMON_MOBILE = phones._COMMON_MOBILE, re.compile(r"(?!)")
    try:
        return phones.normalise_phone_cn(text, kind)
    except ValueError as exc:
        return str(exc)
    finally:
        phones._COMMON_MOBILE = saved


FIGURES = st.builds(
    lambda fen, style, sign, word: sign + [f"{fen // 100:,}.{fen % 100:02d}", f"{fen // 100}.{fen % 100:02d}",
                                           f"{fen // 100:,}", f"{fen // 100}.{fen % 10}"][style] + word,
    st.integers(0, 10**17), st.integers(0, 3), st.sampled_from(["", "¥", "￥", "-"]), st.sampled_from(["", "元"]),
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(text=st.one_of(FIGURES, st.text(alphabet="0123456789,.¥￥元-", max_size=22)))
def test_the_fast_way_for_common_amounts_gives_what_the_general_way_gives(text: str) -> None:
    try:
        fast: Decimal | str = amounts.normalise_amount(text)
    except ValueError as exc:
        fast = str(exc)
    general = _general_amount(text)
    assert fast == general and str(fast) == str(general)


MOBILES = st.builds(
    lambda prefix, digits, first, second: f"{prefix}{digits[:3]}{first}{digits[3:7]}{second}{digits[7:]}",
    st.sampled_from(["", "+86", "+86 ", "0086", "0086 ", "86"]),
    st.text(alphabet="0123456789", min_size=11, max_size=11),
    st.sampled_from(["", " ", "-"]),
    st.sampled_from(["", " ", "-"]),
)


@settings(max_examples=500, deadline=None)
@given(text=st.one_of(MOBILES, st.text(alphabet="0123456789+- ", max_size=18)), kind=st.sampled_from(["any", "mobile"]))
def test_the_fast_way_for_common_mobiles_gives_what_the_general_way_gives(text: str, kind: str) -> None:
    try:
        fast = phones.normalise_phone_cn(text, kind)
    except ValueError as exc:
        fast = str(exc)
    assert fast == _general_phone(text, kind)


@settings(max_examples=500)
@given(body=st.text(alphabet="0123456789", min_size=17, max_size=17))
def test_the_resident_id_check_digit_is_the_one_python_stdnum_computes(body: str) -> None:
    digit = ric.calc_check_digit(body + "0")
    number = body + digit
    try:
        quality.VALIDATORS["resident_id"](number)
    except ValueError as exc:
        assert "check digit" not in str(exc), number
    wrong = body + ("0" if digit != "0" else "1")
    with pytest.raises(ValueError, match=r"check digit"):
        quality.VALIDATORS["resident_id"](wrong)
