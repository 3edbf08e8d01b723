"""Flow expressions are bounded in time, output size, integer size and nesting."""

from __future__ import annotations

import time

import pytest

from seamflow import errors
from seamflow.flows import filters, sandbox
from seamflow.flows.expressions import MAX_SOURCE_CHARS, RENDER_TIME_LIMIT, Template

CONTEXT: dict[str, object] = {
    "event": {"body": {"text": "x" * 1000, "lines": list(range(1000)), "n": 7}},
}

LIMIT = "expression.limit"

EXHAUSTION = [
    pytest.param("{{ 10 ** 5000 }}", id="power"),
    pytest.param("{{ 9 ** (9 ** 9) }}", id="power-tower"),
    pytest.param("{{ 2 ** 3400 }}", id="power-just-over"),
    pytest.param("{{ (2 ** 3000) * (2 ** 3000) }}", id="multiply"),
    pytest.param("{{ " + "9" * 1001 + " }}", id="literal-1001-digits"),
    pytest.param("{{ " + "9" * 5000 + " }}", id="literal-5000-digits"),
    pytest.param("{{ event.body.n ** 100000 }}", id="power-of-data"),
    pytest.param("{{ 10.5 ** 100000000 }}", id="decimal-power-overflow"),
    pytest.param("{{ 'a' * 10 ** 9 }}", id="text-repetition"),
    pytest.param("{{ 10 ** 9 * 'a' }}", id="text-repetition-reversed"),
    pytest.param("{{ [1] * 10 ** 8 }}", id="list-repetition"),
    pytest.param("{{ event.body.text * 2000 }}", id="data-repetition"),
    pytest.param("{% set a = 'x' * 1000000 %}{{ a ~ a }}", id="concat-doubling"),
    pytest.param("{% set a = 'x' * 1000000 %}{{ a + a }}", id="plus-doubling"),
    pytest.param("{% set a = ['x' * 1000000] * 1000 %}{{ a|join }}", id="join-of-repeated-references"),
    pytest.param("{% set a = ['x' * 1000000] * 1000 %}{{ a|tojson }}", id="tojson-of-references"),
    pytest.param("{% set a = ['x' * 1000000] * 1000 %}{{ a }}", id="render-of-references"),
    pytest.param("{{ ','.join(['x' * 100000] * 20) }}", id="str-join"),
    pytest.param("{{ ('x' * 1000).replace('x', 'y' * 10000) }}", id="str-replace"),
    pytest.param("{{ ('x' * 1000)|replace('x', 'y' * 10000) }}", id="replace-filter"),
    pytest.param("{{ 'ab'|center(10 ** 9) }}", id="center"),
    pytest.param("{{ ('a\n' * 1000)|indent(10 ** 6) }}", id="indent"),
    pytest.param("{{ event.body.text|wordwrap(1, wrapstring='y' * 100000) }}", id="wordwrap"),
    pytest.param("{{ [1]|batch(10 ** 9, 0)|list }}", id="batch"),
    pytest.param("{{ range(10 ** 9)|list }}", id="range"),
    pytest.param("{{ range(2 ** 100) }}", id="range-huge"),
    pytest.param("{{ range(10001)|list }}", id="range-just-over"),
    pytest.param(
        "{% for i in range(10000) %}{% for j in range(10000) %}x{% endfor %}{% endfor %}",
        id="nested-loops-output",
    ),
    pytest.param(
        "{% set r = range(10000) %}{% for i in r %}{% for j in r %}{% for k in r %}"
        "{% endfor %}{% endfor %}{% endfor %}",
        id="nested-loops-silent",
    ),
    pytest.param(
        "{% for i in event.body.lines %}{% for j in event.body.lines %}{% for k in"
        " event.body.lines %}{{ k }}{% endfor %}{% endfor %}{% endfor %}",
        id="nested-loops-over-data",
    ),
    pytest.param("{% for i in range(10000) %}{{ event.body.text }}{% endfor %}", id="loop-output-size"),
    pytest.param("{{ event.body.lines|map('string')|join('x' * 5000) }}", id="join-separator"),
    pytest.param("{{ ('%' * 1000000)|urlencode|urlencode }}", id="urlencode-growth"),
    pytest.param("{{ " + "(" * 300 + "1" + ")" * 300 + " }}", id="deep-parentheses"),
    pytest.param("{{ 1" + " + 1" * 200 + " }}", id="long-chain"),
    pytest.param("{{ " + "[" * 100 + "]" * 100 + " }}", id="deep-lists"),
    pytest.param("{{ '2026-01-01'|format_datetime('%c' * 60000) }}", id="strftime-growth"),
]


@pytest.mark.parametrize("source", EXHAUSTION)
def test_resource_exhaustion_is_stopped_quickly(source: str) -> None:
    started = time.monotonic()
    with pytest.raises(errors.ExpressionError) as caught:
        Template.compile(source, where="steps[0].with.x").render(CONTEXT)
    assert time.monotonic() - started < 2
    assert caught.value.code == LIMIT, str(caught.value)
    assert str(caught.value).startswith("steps[0].with.x: ")


def test_integer_error_says_digits() -> None:
    with pytest.raises(errors.ExpressionError, match="integer larger than 1000 digits"):
        Template.compile("{{ 10 ** 5000 }}").render({})


def test_time_limit_error_says_the_limit() -> None:
    source = "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}"
    started = time.monotonic()
    with pytest.raises(errors.ExpressionError, match="longer than 100 ms"):
        Template.compile(source).render({})
    elapsed = time.monotonic() - started
    # The loop is 10^8 iterations (minutes); stopping at all is what the limit promises. The bound is
    # loose on purpose: a busy machine can delay the check by seconds, never by the whole loop.
    assert elapsed < RENDER_TIME_LIMIT.total_seconds() + 30


@pytest.mark.parametrize(
    ("source", "expected_length"),
    [
        ("{{ range(10000)|list|length }}", None),
        ("{{ 'x' * 1000000 }}", 1000000),
        ("{{ range(10000)|map('string')|join(',')|length }}", None),
        ("{{ 10 ** 999 }}", None),
        ("{{ 2 ** 3000 }}", None),
        ("{% for i in range(1000) %}{{ i }}{% endfor %}", None),
    ],
)
def test_large_but_bounded_work_is_allowed(source: str, expected_length: int | None) -> None:
    result = Template.compile(source).render({})
    if expected_length is not None:
        assert isinstance(result, str)
        assert len(result) == expected_length


def test_integer_of_exactly_1000_digits_is_allowed() -> None:
    context = {"event": {"body": {"n": 10**1000 - 1}}}
    assert Template.compile("{{ event.body.n }}").render(context) == 10**1000 - 1
    with pytest.raises(errors.ExpressionError) as caught:
        Template.compile("{{ event.body.n + 1 }}").render(context)
    assert caught.value.code == LIMIT


def test_integer_from_data_past_the_limit_is_refused_in_output() -> None:
    with pytest.raises(errors.ExpressionError) as caught:
        Template.compile("{{ event.body.n }}").render({"event": {"body": {"n": 10**1200}}})
    assert caught.value.code == LIMIT


def test_template_source_is_bounded() -> None:
    text = "{{ 1 }}" + "x" * MAX_SOURCE_CHARS
    with pytest.raises(errors.ExpressionError) as caught:
        Template.compile({"a": text}, where="steps[3].with")
    assert caught.value.code == LIMIT
    assert str(caught.value).startswith("steps[3].with.a: ")


def test_value_nesting_is_bounded() -> None:
    value: object = "{{ 1 }}"
    for _ in range(100):
        value = [value]
    with pytest.raises(errors.ExpressionError) as caught:
        Template.compile(value)
    assert caught.value.code == LIMIT


def test_output_size_is_bounded_across_all_values_of_one_render() -> None:
    half = "{{ 'x' * 600000 }}"
    assert len(Template.compile(half).render({})) == 600000  # type: ignore[arg-type]
    with pytest.raises(errors.ExpressionError) as caught:
        Template.compile({"a": half, "b": half}).render({})
    assert caught.value.code == LIMIT


def test_output_of_data_larger_than_the_limit_is_refused() -> None:
    big = {"event": {"body": {"blob": "x" * (filters.MAX_OUTPUT_CHARS + 1)}}}
    with pytest.raises(errors.ExpressionError) as caught:
        Template.compile("{{ event.body.blob }}").render(big)
    assert caught.value.code == LIMIT


def test_the_deadline_applies_per_render() -> None:
    template = Template.compile("{% for i in range(10000) %}{{ i }}{% endfor %}")
    for _ in range(3):
        assert isinstance(template.render({}), str)


def test_a_short_render_reads_no_cpu_clock_and_a_long_one_reads_it_every_few_hooks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads: list[float] = []
    real = time.thread_time

    def counted() -> float:
        reads.append(real())
        return reads[-1]

    monkeypatch.setattr(time, "thread_time", counted)
    transform = Template.compile({"n": "{{ event.body.n }}", "text": "{{ event.body.text|upper|length }}"})
    assert transform.render(CONTEXT) == {"n": 7, "text": 1000}
    assert reads == []
    Template.compile("{% for i in event.body.lines %}{{ i }}{% endfor %}").render(CONTEXT)
    assert 1000 // sandbox.CHECK_EVERY <= len(reads) <= 3000 // sandbox.CHECK_EVERY
