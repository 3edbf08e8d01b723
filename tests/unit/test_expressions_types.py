"""Flow expressions keep the type of data: one `{{ expr }}` gives its value, text stays text."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from seamflow import errors
from seamflow.flows.expressions import ROOTS, Template

CONTEXT: dict[str, object] = {
    "event": {
        "body": {
            "amount": "19.90",
            "price": Decimal("19.90"),
            "qty": 3,
            "paid": True,
            "note": None,
            "none_text": "None",
            "hex": "0x10",
            "list_text": "[1,2]",
            "a": "1",
            "b": "2",
            "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}],
            "_id": "mongo-id",
            "__typename": "Order",
            "phone": "0086-13800138000",
        },
        "headers": {"x-shop": "sz-01"},
    },
    "steps": {"customer": {"id": 42, "name": "深圳华强"}},
    "run": {"id": "run_01"},
}


def render(source: object, context: dict[str, object] | None = None) -> object:
    return Template.compile(source).render(CONTEXT if context is None else context)


TYPE_CASES = [
    pytest.param("{{ event.body.amount }}", "19.90", id="text-stays-text-19.90"),
    pytest.param("{{ event.body.none_text }}", "None", id="text-None-stays-text"),
    pytest.param("{{ event.body.hex }}", "0x10", id="text-0x10-stays-text"),
    pytest.param("{{ event.body.list_text }}", "[1,2]", id="text-list-stays-text"),
    pytest.param("{{ event.body.phone }}", "0086-13800138000", id="leading-zeros-kept"),
    pytest.param("{{ event.body.a ~ event.body.b }}", "12", id="concat-is-text"),
    pytest.param("{{ event.body.qty }}", 3, id="int"),
    pytest.param("{{ event.body.price }}", Decimal("19.90"), id="decimal"),
    pytest.param("{{ event.body.price * 2 }}", Decimal("39.80"), id="decimal-arithmetic"),
    pytest.param("{{ event.body.price + 0.10 }}", Decimal("20.00"), id="decimal-plus-literal"),
    pytest.param("{{ 10 / 4 }}", Decimal("2.5"), id="int-division-is-decimal"),
    pytest.param("{{ 7 // 2 }}", 3, id="floor-division-is-int"),
    pytest.param("{{ 2 ** -1 }}", Decimal("0.5"), id="negative-power-is-decimal"),
    pytest.param("{{ 1.5 }}", Decimal("1.5"), id="fraction-literal-is-decimal"),
    pytest.param("{{ event.body.paid }}", True, id="bool"),
    pytest.param("{{ event.body.qty > 2 }}", True, id="comparison-bool"),
    pytest.param("{{ none }}", None, id="none-literal"),
    pytest.param("{{ event.body.note }}", None, id="none-value"),
    pytest.param("{{ event.body.items[0] }}", {"sku": "A-1", "qty": 2}, id="mapping"),
    pytest.param("{{ event.body.items|map(attribute='sku')|list }}", ["A-1", "B-2"], id="list"),
    pytest.param("{{ event.body.items|map(attribute='qty') }}", [2, 1], id="generator-to-list"),
    pytest.param("{{ (1, 'a') }}", [1, "a"], id="tuple-to-list"),
    pytest.param("{{ range(3) }}", [0, 1, 2], id="range-to-list"),
    pytest.param("{{ {'k': 1}.items() }}", [["k", 1]], id="items-to-lists"),
    pytest.param("  {{ event.body.qty }}\n", 3, id="whitespace-around-single"),
    pytest.param("{{- event.body.qty -}}", 3, id="whitespace-control"),
    pytest.param("{{ '}}' }}", "}}", id="braces-inside-string"),
    pytest.param("{{ event.body.qty }} items", "3 items", id="mixed-text"),
    pytest.param("{{ event.body.a }}{{ event.body.b }}", "12", id="two-expressions"),
    pytest.param("{{ event.body.qty }} {{ event.body.qty }}", "3 3", id="two-with-space"),
    pytest.param("x{{ event.body.note }}y", "xy", id="none-in-text-is-empty"),
    pytest.param("{{ event.body.paid }}!", "True!", id="bool-in-text"),
    pytest.param("p={{ event.body.price }}", "p=19.90", id="decimal-in-text"),
    pytest.param("{{ event.body.items[1] }};", '{"sku":"B-2","qty":1};', id="mapping-in-text-json"),
    pytest.param("{% if event.body.paid %}yes{% endif %}", "yes", id="statement-is-text"),
    pytest.param("{{ event.body._id }}", "mongo-id", id="underscore-key-is-data"),
    pytest.param("{{ event.body.__typename }}", "Order", id="dunder-key-is-data"),
    pytest.param("{{ event.headers['x-shop'] }}", "sz-01", id="subscript"),
    pytest.param("{{ steps.customer.name }}", "深圳华强", id="chinese-text"),
    pytest.param("{% raw %}{{ x }}{% endraw %}", "{{ x }}", id="raw-is-literal-text"),
]


@pytest.mark.parametrize(("source", "expected"), TYPE_CASES)
def test_single_expression_keeps_type_and_text_stays_text(source: str, expected: object) -> None:
    result = render(source)
    assert result == expected
    assert type(result) is type(expected)


STATIC_CASES = [
    "19.90",
    "None",
    "plain text with } and {",
    "{# a comment stays literal #}",
    "",
]


@pytest.mark.parametrize("value", STATIC_CASES)
def test_string_without_expression_is_static_and_unchanged(value: str) -> None:
    template = Template.compile(value)
    assert template.is_static
    assert template.references == frozenset()
    assert template.render({}) == value


def test_static_structure_renders_equal_and_fresh() -> None:
    value = {"a": [1, {"b": "x"}], "c": None, "d": Decimal("1.10"), "e": True}
    template = Template.compile(value)
    first = template.render({})
    assert template.is_static
    assert first == value
    first["a"].append(2)  # type: ignore[index,union-attr]
    assert template.render({}) == value


def test_nested_values_render_recursively_and_keys_stay_literal() -> None:
    value = {
        "{{ not_a_key }}": "{{ event.body.qty }}",
        "lines": [
            {"sku": "{{ line.sku }}", "qty": "{{ line.qty * 2 }}"},
            "fixed",
            7,
        ],
        "total": "{{ event.body.price }}",
        "label": "order {{ run.id }}",
    }
    context = {**CONTEXT, "line": {"sku": "A-1", "qty": 2}}
    template = Template.compile(value, extra_names=frozenset({"line"}))
    assert not template.is_static
    assert template.render(context) == {
        "{{ not_a_key }}": 3,
        "lines": [{"sku": "A-1", "qty": 4}, "fixed", 7],
        "total": Decimal("19.90"),
        "label": "order run_01",
    }


def test_float_input_is_compiled_as_decimal() -> None:
    assert Template.compile({"price": 19.9}).render({}) == {"price": Decimal("19.9")}
    assert type(Template.compile(19.9).render({})) is Decimal


def test_render_shares_nothing_with_the_context() -> None:
    context = copy.deepcopy(CONTEXT)
    result = Template.compile("{{ event.body }}").render(context)
    assert result == context["event"]["body"]  # type: ignore[index]
    assert result is not context["event"]["body"]  # type: ignore[index]
    result["items"][0]["sku"] = "changed"  # type: ignore[index,call-overload]
    assert context == CONTEXT


def test_render_does_not_change_the_context() -> None:
    context = copy.deepcopy(CONTEXT)
    render({"a": "{{ event.body.items|sort(attribute='sku')|list }}", "b": "{{ event }}"}, context)
    assert context == CONTEXT


REFERENCE_CASES = [
    pytest.param("{{ steps.customer.id }}", {("steps", "customer")}, id="steps"),
    pytest.param("{{ event.body.x }}", {("event", "body")}, id="event"),
    pytest.param("{{ secrets.crm }}", {("secrets", "crm")}, id="secrets"),
    pytest.param('{{ steps["customer"].id }}', {("steps", "customer")}, id="constant-subscript"),
    pytest.param("{{ event }}", {("event", "")}, id="bare-root"),
    pytest.param("{{ steps[run.id] }}", {("steps", ""), ("run", "id")}, id="computed-subscript"),
    pytest.param("a {{ steps.a.x }} b {{ steps.b }}", {("steps", "a"), ("steps", "b")}, id="text"),
    pytest.param("{% for l in event.body.lines %}{{ l.sku }}{% endfor %}", {("event", "body")}, id="loop"),
    pytest.param("{{ event.body.x|default(steps.c.y) }}", {("event", "body"), ("steps", "c")}),
    pytest.param({"k": ["{{ item.sku }}", "{{ loop_index }}"]}, {("item", "sku"), ("loop_index", "")}),
    pytest.param("{{ range(3)|list }}", set(), id="globals-are-not-roots"),
    pytest.param("{% set x = 1 %}{{ x }}", set(), id="local-names-are-not-roots"),
    pytest.param("plain", set(), id="static"),
]


@pytest.mark.parametrize(("source", "expected"), REFERENCE_CASES)
def test_references_list_every_root_and_first_attribute(source: object, expected: set[tuple[str, str]]) -> None:
    assert Template.compile(source).references == frozenset(expected)


def test_extra_names_are_references_and_allowed() -> None:
    template = Template.compile("{{ line.sku }}", extra_names=frozenset({"line"}))
    assert template.references == {("line", "sku")}
    assert template.render({"line": {"sku": "A"}}) == "A"


def test_roots_are_the_documented_names() -> None:
    assert frozenset({"event", "steps", "run", "env", "secrets", "item", "result", "loop_index"}) == ROOTS


def test_unknown_name_is_a_compile_error_with_a_suggestion() -> None:
    with pytest.raises(errors.ExpressionError) as caught:
        Template.compile({"with": {"amount": "{{ evnt.body.amount }}"}}, where="steps[1]")
    assert caught.value.code == "expression.undefined"
    message = str(caught.value)
    assert message.startswith("steps[1].with.amount: ")
    assert "unknown name 'evnt'" in message
    assert "did you mean 'event'" in message
    assert "expected one of" in message


@pytest.mark.parametrize(
    "source",
    [
        "{% for x in event.body.items %}{{ x.sku }}{{ loop.index }}{% endfor %}",
        "{% set total = event.body.qty * 2 %}{{ total }}",
        "{% with n = 2 %}{{ n }}{% endwith %}",
        "{{ now() }} {{ dict(a=1) }} {{ range(2)|list }}",
    ],
)
def test_names_bound_inside_the_expression_and_globals_are_allowed(source: str) -> None:
    assert isinstance(render(source), str)


def test_syntax_error_names_where_line_and_expectation() -> None:
    source = "first line\n{{ event.body.amount + }}"
    with pytest.raises(errors.ExpressionError) as caught:
        Template.compile({"amount": source}, where="steps[1].with")
    assert caught.value.code == "expression.syntax"
    message = str(caught.value)
    assert message.startswith("steps[1].with.amount: ")
    assert "syntax error at line 2" in message
    assert "expected" in message


def test_compile_error_in_a_list_names_the_index() -> None:
    with pytest.raises(errors.ExpressionError, match=r"^steps\[0\]\.args\[1\]: "):
        Template.compile(["ok", "{{ ( }}"], where="steps[0].args")


@pytest.mark.parametrize("value", [object(), {1: "int key"}, b"bytes"])
def test_compile_refuses_values_that_are_not_json_like(value: object) -> None:
    with pytest.raises(errors.ExpressionError) as caught:
        Template.compile(value, where="x")
    assert caught.value.code == "expression.type"


def test_missing_attribute_is_an_error_naming_it() -> None:
    with pytest.raises(errors.ExpressionError) as caught:
        Template.compile("{{ event.body.missing }}", where="steps[2].with.x").render(CONTEXT)
    assert caught.value.code == "expression.undefined"
    message = str(caught.value)
    assert message.startswith("steps[2].with.x: ")
    assert "'missing'" in message
    assert "'amount'" in message  # what was there instead


@pytest.mark.parametrize(
    "source",
    [
        "{{ event.body.missing or 'x' }}",
        "{% if event.body.missing %}x{% endif %}",
        "{{ event.body.missing ~ 'x' }}",
        "{{ event.body.missing.deeper }}",
        "{{ item }}",
        "{{ []|first }}",
    ],
)
def test_using_a_missing_value_is_an_error(source: str) -> None:
    with pytest.raises(errors.ExpressionError) as caught:
        render(source)
    assert caught.value.code == "expression.undefined"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ event.body.missing|default('d') }}", "d"),
        ("{{ event.body.missing.deeper|default('d') }}", "d"),
        ("{{ event.body.missing|d(0) }}", 0),
        ("{{ event.body.missing|coalesce(event.body.note, 'c') }}", "c"),
        ("{{ event.body.missing is defined }}", False),
        ("{{ event.body.amount is defined }}", True),
        ("{{ item is undefined }}", True),
    ],
)
def test_missing_values_can_be_replaced_or_tested(source: str, expected: object) -> None:
    assert render(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ event.body.qty > 2 }}", True),
        ("{{ event.body.qty > 5 }}", False),
        ("{{ event.body.paid }}", True),
        ("{{ event.body.qty > 2 }} ", True),
        ("{% if event.body.paid %}true{% else %}false{% endif %}", True),
        ("False", False),
        (True, True),
    ],
)
def test_is_true_accepts_booleans_and_their_text(source: object, expected: bool) -> None:
    assert Template.compile(source).is_true(CONTEXT) is expected


@pytest.mark.parametrize("source", ["{{ event.body.amount }}", "{{ event.body.note }}", "yes"])
def test_is_true_refuses_anything_but_a_boolean(source: str) -> None:
    with pytest.raises(errors.ExpressionError) as caught:
        Template.compile(source, where="when").is_true(CONTEXT)
    assert caught.value.code == "expression.type"
    assert str(caught.value).startswith("when: ")
    assert "expected true or false" in str(caught.value)


@pytest.mark.parametrize(
    ("source", "code"),
    [
        ("{{ 'a' + 1 }}", "expression.type"),
        ("{{ 1 / 0 }}", "expression.value"),
        ("{{ event.body.qty|first }}", "expression.type"),
        ("{{ event.body.items|map('int')|list }}", "expression.type"),
        ("{{ 'abc'.upper }}", "expression.type"),
    ],
)
def test_errors_inside_an_expression_have_a_code_and_no_traceback(source: str, code: str) -> None:
    with pytest.raises(errors.ExpressionError) as caught:
        render(source)
    assert caught.value.code == code
    assert type(caught.value) is errors.ExpressionError
    assert "Traceback" not in str(caught.value)


def test_function_value_is_refused_with_a_hint() -> None:
    with pytest.raises(errors.ExpressionError, match=r"not data \(a function needs its \(\)\)"):
        render("{{ 'abc'.upper }}")


def test_loop_object_is_not_data() -> None:
    with pytest.raises(errors.ExpressionError) as caught:
        render("{% for x in [1, 2] %}{{ loop }}{% endfor %}")
    assert caught.value.code == "expression.type"
    assert render("{% for x in [5, 6] %}{{ loop.index }}{% endfor %}") == "12"


def test_an_extra_name_may_be_any_identifier() -> None:
    template = Template.compile("{{ type.code }}", extra_names=frozenset({"type"}))
    assert template.render({"type": {"code": "A"}}) == "A"
    with pytest.raises(errors.ExpressionError) as caught:
        Template.compile("{{ type }}")
    assert caught.value.code == "expression.forbidden"
