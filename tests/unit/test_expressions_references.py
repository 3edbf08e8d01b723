"""A template that is one reference (`{{ event.body.order_no }}`) is read without Jinja, with the same results."""

from __future__ import annotations

from decimal import Decimal

import pytest

from seamflow import errors
from seamflow.flows.expressions import Secrets, Template

BODY: dict[str, object] = {
    "order_no": "0086-42",
    "amount": "19.90",
    "price": Decimal("19.90"),
    "qty": 3,
    "paid": False,
    "note": None,
    "items": [{"sku": "A-1"}, {"sku": "B-2"}],
    "nested": {"a": {"b": [1, {"c": "deep"}]}},
}
CONTEXT: dict[str, object] = {"event": {"body": BODY}, "steps": {"order": {"number": "N-1"}}}

REFERENCES = [
    "event",
    "event.body",
    "event.body.order_no",
    "event['body']['amount']",
    "event.body.price",
    "event.body.qty",
    "event.body.paid",
    "event.body.note",
    "event.body.items",
    "event.body.items[1].sku",
    "event.body.nested.a.b[1].c",
    "steps.order",
    "steps.order.number",
]


def through_jinja(reference: str) -> str:
    """The same reference inside a conditional expression, which is evaluated by Jinja."""
    return "{{ " + reference + " if true else none }}"


@pytest.mark.parametrize("reference", REFERENCES)
def test_a_reference_gives_what_jinja_gives_with_its_type(reference: str) -> None:
    fast = Template.compile("{{ " + reference + " }}").render(CONTEXT)
    slow = Template.compile(through_jinja(reference)).render(CONTEXT)
    assert fast == slow
    assert type(fast) is type(slow)


def test_a_reference_gives_a_fresh_copy() -> None:
    items = Template.compile("{{ event.body.items }}").render(CONTEXT)
    assert items == BODY["items"]
    assert items is not BODY["items"]
    assert items[0] is not BODY["items"][0]  # type: ignore[index]


@pytest.mark.parametrize(
    ("reference", "code"),
    [
        ("event.body.missing", "expression.undefined"),
        ("event.body.items[5]", "expression.undefined"),
        ("event.body.order_no.upper", "expression.type"),  # a method, not data
        ("event.body.items.append", "expression.forbidden"),  # the sandbox refuses it
        ("event.body.order_no.format", "expression.forbidden"),
        ("run.id", "expression.undefined"),  # a root the context does not hold
    ],
)
def test_what_is_not_a_plain_key_goes_through_the_sandbox(reference: str, code: str) -> None:
    with pytest.raises(errors.ExpressionError) as fast:
        Template.compile("{{ " + reference + " }}", where="steps[0].with.x").render(CONTEXT)
    assert fast.value.code == code, str(fast.value)
    assert str(fast.value).startswith("steps[0].with.x: in '{{ " + reference + " }}': ")


def test_data_keys_named_like_methods_are_data() -> None:
    context = {"event": {"body": {"items": "the key", "keys": 3}}}
    assert Template.compile("{{ event.body.items }}").render(context) == "the key"
    assert Template.compile("{{ event.body.keys }}").render(context) == 3


def test_secrets_are_still_read_one_by_name_only() -> None:
    context = {"secrets": Secrets({"crm": "s3cr3t-value"})}
    assert Template.compile("{{ secrets.crm }}").render(context) == "s3cr3t-value"
    with pytest.raises(errors.ExpressionError) as caught:
        Template.compile("{{ secrets }}").render(context)
    assert caught.value.code == "expression.forbidden"


def test_a_number_past_the_digit_limit_is_refused_as_before() -> None:
    with pytest.raises(errors.ExpressionError) as caught:
        Template.compile("{{ event.body.n }}").render({"event": {"body": {"n": 10**1200}}})
    assert caught.value.code == "expression.limit"
