"""The filters integrators use: money, text, hashing, choosing values, Jinja's kept builtins."""

from __future__ import annotations

import hashlib
import hmac
import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seamflow import errors
from seamflow.flows import filters
from seamflow.flows.expressions import Template

CONTEXT: dict[str, object] = {
    "event": {
        "body": {
            "amount": "19.90",
            "price": Decimal("19.90"),
            "lines": [
                {"sku": "A", "amount": Decimal("1.10"), "qty": 2},
                {"sku": "B", "amount": Decimal("2.25"), "qty": 1},
            ],
            "status": "paid",
            "empty": "",
            "none": None,
        }
    }
}


def render(source: str) -> object:
    return Template.compile(source).render(CONTEXT)


EXAMPLES = [
    ('{{ "19.90"|cents }}', 1990),
    ('{{ "19.9"|cents }}', 1990),
    ('{{ "19.900"|cents }}', 1990),
    ('{{ "¥1,234.50"|cents }}', 123450),
    ('{{ "￥1,234.50"|cents }}', 123450),
    ('{{ "1,234.50"|cents }}', 123450),
    ('{{ "1234.5 元"|cents }}', 123450),
    ('{{ "-0.05"|cents }}', -5),
    ("{{ 12|cents }}", 1200),
    ("{{ event.body.price|cents }}", 1990),
    ('{{ "19.995"|cents(round=True) }}', 2000),
    ('{{ "19.994"|cents(round=True) }}', 1999),
    ('{{ "0.125"|cents(round=True) }}', 13),
    ('{{ "-19.995"|cents(round=True) }}', -2000),
    ("{{ 1990|from_cents }}", Decimal("19.90")),
    ('{{ "-5"|from_cents }}', Decimal("-0.05")),
    ('{{ "1,234.5"|decimal }}', Decimal("1234.5")),
    ('{{ "2.345"|decimal(2) }}', Decimal("2.35")),
    ('{{ "2.345"|decimal(2, "half_even") }}', Decimal("2.34")),
    ('{{ "2.349"|decimal(2, "down") }}', Decimal("2.34")),
    ("{{ 3|decimal(2) }}", Decimal("3.00")),
    ('{{ "2.345"|round(2) }}', Decimal("2.35")),
    ('{{ "2.5"|round }}', Decimal("3")),
    ('{{ "2.341"|round(2, "ceil") }}', Decimal("2.35")),
    ('{{ "2.349"|round(2, "floor") }}', Decimal("2.34")),
    ("{{ 7|round }}", 7),
    ("{{ event.body.lines|sum(attribute='amount') }}", Decimal("3.35")),
    ("{{ [1, 2, 3]|sum }}", 6),
    ("{{ [0.1, 0.2]|sum }}", Decimal("0.3")),
    ('{{ "42"|int }}', 42),
    ('{{ " 42 "|int }}', 42),
    ('{{ "19.00"|int }}', 19),
    ("{{ true|int }}", 1),
    ('{{ "abc"|int(default=-1) }}', -1),
    ('{{ "+86 138-0013-8000"|digits }}', "8613800138000"),
    ("{{ 12345|digits }}", "12345"),
    ('{{ "+86 138 0013 8000"|phone_cn }}', "13800138000"),
    ('{{ "0086-13800138000"|phone_cn }}', "13800138000"),
    ('{{ "13800138000"|phone_cn }}', "13800138000"),
    ('{{ "(+86) 199.0000.1111"|phone_cn }}', "19900001111"),
    ("{{ 13800138000|phone_cn }}", "13800138000"),
    ('{{ "深圳 华强北 店"|slugify }}', "shen-zhen-hua-qiang-bei-dian"),
    ('{{ "Café Déjà-vu"|slugify(separator="_") }}', "cafe_deja_vu"),
    ('{{ "abc"|sha256 }}', hashlib.sha256(b"abc").hexdigest()),
    ('{{ "abc"|md5 }}', hashlib.md5(b"abc").hexdigest()),
    ('{{ "abc"|hash }}', hashlib.sha256(b"abc").hexdigest()),
    ('{{ "abc"|hash("sha512") }}', hashlib.sha512(b"abc").hexdigest()),
    ('{{ "订单"|sha256 }}', hashlib.sha256("订单".encode()).hexdigest()),
    ('{{ "msg"|hmac_sha256("key") }}', hmac.new(b"key", b"msg", "sha256").hexdigest()),
    ('{{ event.body.status|lookup({"paid": "已付款", "refunded": "已退款"}) }}', "已付款"),
    ('{{ "x"|lookup({"paid": 1}, default="?") }}', "?"),
    ('{{ 1|lookup({"1": "one"}) }}', "one"),
    ('{{ event.body.none|coalesce(event.body.empty, event.body.missing, "c") }}', "c"),
    ('{{ event.body.status|coalesce("c") }}', "paid"),
    ("{{ event.body.none|coalesce(event.body.empty) }}", None),
    ("{{ 0|coalesce(1) }}", 0),
    (
        "{{ event.body.lines|tojson }}",
        '[{"sku":"A","amount":1.10,"qty":2},{"sku":"B","amount":2.25,"qty":1}]',
    ),
    ('{{ {"a": "<&>"}|tojson }}', '{"a":"<&>"}'),
    ("{{ event.body.lines|map(attribute='sku')|join(', ') }}", "A, B"),
    ("{{ [1, none, 'x']|join('-') }}", "1--x"),
    ("{{ event.body.price|string }}", "19.90"),
    ("{{ event.body.none|string }}", ""),
    ("{{ ' Ab '|trim|upper }}", "AB"),
    ("{{ 'Ab'|lower }}", "ab"),
    ("{{ [3, 1, 2]|sort }}", [1, 2, 3]),
    ("{{ [1, 1, 2]|unique|list }}", [1, 2]),
    ("{{ event.body.lines|selectattr('qty', 'gt', 1)|map(attribute='sku')|list }}", ["A"]),
    ("{{ event.body.lines|rejectattr('qty', 'gt', 1)|map(attribute='sku')|list }}", ["B"]),
    ("{{ [1, 2, 3, 4]|select('even')|list }}", [2, 4]),
    ("{{ event.body.lines|max(attribute='qty') }}", CONTEXT["event"]["body"]["lines"][0]),  # type: ignore[index]
    ("{{ [4, 2]|min }}", 2),
    ("{{ [1, 2, 3]|batch(2)|list }}", [[1, 2], [3]]),
    ("{{ 'a b c'|wordcount }}", 3),
    ("{{ 'abcdefghij'|truncate(5, end='…', leeway=0) }}", "abcd…"),
    ("{{ [1, 2]|length }}", 2),
    ("{{ [1, 2]|first }}", 1),
    ("{{ [1, 2]|last }}", 2),
    ("{{ 'a b'|replace(' ', '_') }}", "a_b"),
    ("{{ {'b': 1, 'a': 2}|dictsort }}", [["a", 2], ["b", 1]]),
    ("{{ 'a&b'|urlencode }}", "a%26b"),
    ("{{ '<b>'|escape }}", "&lt;b&gt;"),
    ("{{ -3|abs }}", 3),
]


@pytest.mark.parametrize(("source", "expected"), EXAMPLES)
def test_filter_examples(source: str, expected: object) -> None:
    result = render(source)
    assert result == expected
    assert type(result) is type(expected)


ERRORS = [
    ('{{ "19.999"|cents }}', "expression.value", "fraction of a cent"),
    ('{{ "abc"|cents }}', "expression.value", "not an amount"),
    ('{{ "1,2,3"|cents }}', "expression.value", "not an amount"),
    ('{{ "1.234,50"|cents }}', "expression.value", "not an amount"),
    ("{{ true|cents }}", "expression.type", "expected an amount"),
    ("{{ none|cents }}", "expression.type", "expected an amount"),
    ('{{ "1.5"|from_cents }}', "expression.type", "whole number of cents"),
    ('{{ "1.5"|decimal(2, "sideways") }}', "expression.value", "unknown rounding"),
    ('{{ "19.90"|int }}', "expression.value", "not whole"),
    ('{{ "abc"|int }}', "expression.value", "not an amount"),
    ("{{ none|int }}", "expression.type", "expected"),
    ("{{ ['a']|sum }}", "expression.type", "numbers to add"),
    ('{{ "12800138000"|phone_cn }}', "expression.value", "11 digits starting with 13-19"),
    ('{{ "1380013800"|phone_cn }}', "expression.value", "not a mainland China mobile"),
    ('{{ "+1 415 555 0100"|phone_cn }}', "expression.value", "not a mainland China mobile"),
    ('{{ "x"|lookup({"paid": 1, "open": 2}) }}', "expression.value", "'paid', 'open'"),
    ('{{ "x"|lookup("not a table") }}', "expression.type", "a table"),
    ('{{ "x"|hash("sha3") }}', "expression.value", "unknown algorithm"),
    ("{{ [1]|digits }}", "expression.type", "expected text"),
    ("{{ 'x'|bogus }}", "expression.syntax", "unknown filter 'bogus'"),
    ("{{ 'x'|float }}", "expression.forbidden", "use decimal"),
]


@pytest.mark.parametrize(("source", "code", "text"), ERRORS)
def test_filter_refuses_bad_input_clearly(source: str, code: str, text: str) -> None:
    with pytest.raises(errors.ExpressionError) as caught:
        Template.compile(source, where="steps[0].with.v").render(CONTEXT)
    assert caught.value.code == code
    assert text in str(caught.value)
    assert str(caught.value).startswith("steps[0].with.v: ")


# --- properties -------------------------------------------------------------------------

amounts = st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=2, allow_nan=False)


@given(amounts)
def test_cents_and_from_cents_round_trip(amount: Decimal) -> None:
    cents = filters.cents(amount)
    assert isinstance(cents, int)
    assert filters.from_cents(cents) == amount
    assert filters.cents(str(amount)) == cents


@given(amounts)
def test_cents_reads_grouped_text_with_currency_signs(amount: Decimal) -> None:
    text = f"¥{amount:,.2f} 元"
    assert filters.cents(text) == int(amount * 100)


@given(st.decimals(min_value=-(10**9), max_value=10**9, places=3, allow_nan=False))
def test_cents_refuses_a_fraction_of_a_cent_unless_asked_to_round(amount: Decimal) -> None:
    if amount * 100 == (amount * 100).to_integral_value():
        assert filters.cents(amount) == int(amount * 100)
    else:
        with pytest.raises(errors.ExpressionError):
            filters.cents(amount)
        rounded = filters.cents(amount, round=True)
        assert abs(Decimal(rounded) - amount * 100) <= Decimal("0.5")


@given(st.text())
def test_digits_keeps_only_ascii_digits_in_order(text: str) -> None:
    result = filters.digits(text)
    assert re.fullmatch(r"[0-9]*", result)
    assert result == "".join(ch for ch in text if ch in "0123456789")


mobiles = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)
prefixes = st.sampled_from(["", "+86", "0086", "86", "+86 ", "0086-", "(+86) "])
separators = st.sampled_from(["", " ", "-", "."])


@given(mobiles, prefixes, separators)
def test_phone_cn_accepts_every_valid_mobile_with_prefixes_and_separators(
    number: str, prefix: str, separator: str
) -> None:
    written = prefix + separator.join([number[:3], number[3:7], number[7:]])
    assert filters.phone_cn(written) == number


@given(st.from_regex(r"(1[0-2][0-9]{9}|[02-9][0-9]{10}|1[3-9][0-9]{8,8})", fullmatch=True))
def test_phone_cn_refuses_numbers_that_are_not_mainland_mobiles(number: str) -> None:
    with pytest.raises(errors.ExpressionError):
        filters.phone_cn(number)


json_scalars = st.one_of(st.none(), st.just(""), st.text(), st.integers(), st.booleans())


@given(json_scalars, st.lists(json_scalars, max_size=5))
def test_coalesce_returns_the_first_non_empty_value(value: object, alternatives: list[object]) -> None:
    candidates = [value, *alternatives]
    expected = next((c for c in candidates if c is not None and c != ""), None)
    result = filters.coalesce(value, *alternatives)
    assert result == expected
    assert type(result) is type(expected)


def test_coalesce_skips_missing_values_in_a_template() -> None:
    source = "{{ event.body.nope|coalesce(event.body.also_nope, event.body.status) }}"
    assert render(source) == "paid"


@given(st.decimals(min_value=-(10**6), max_value=10**6, places=4, allow_nan=False), st.integers(0, 4))
def test_decimal_rounds_half_up_to_places(value: Decimal, places: int) -> None:
    result = filters.to_decimal(str(value), places)
    assert result.as_tuple().exponent == -places
    assert abs(result - value) <= Decimal(1).scaleb(-places) / 2
