"""Flow expressions cannot reach Python internals, change data, or reveal secrets."""

from __future__ import annotations

import copy

import pytest

from seamflow import errors
from seamflow.flows.expressions import Secrets, Template

SECRET = "sk-live-9f8e7d6c5b4a"


def make_context() -> dict[str, object]:
    return {
        "event": {"body": {"name": "Ada", "lines": [1, 2], "meta": {"k": "v"}}},
        "steps": {"customer": {"id": 7}},
        "secrets": Secrets({"crm": SECRET, "shop": "shop-secret-value"}),
    }


FORBIDDEN = "expression.forbidden"
SYNTAX = "expression.syntax"

ESCAPES = [
    pytest.param("{{ '{0.__class__}'.format(event) }}", FORBIDDEN, id="CVE-2016-10745-str-format"),
    pytest.param(
        "{{ '{0.__class__.__mro__}'.format_map({'0': event}) }}",
        FORBIDDEN,
        id="CVE-2019-10906-str-format_map",
    ),
    pytest.param(
        "{% set f = 'x{0.__class__}'.format %}{{ f(event) }}",
        FORBIDDEN,
        id="CVE-2024-56326-stored-format-reference",
    ),
    pytest.param("{% set f = event|attr('format') %}{{ f }}", FORBIDDEN, id="CVE-2025-27516-attr-filter"),
    pytest.param(
        "{{ event.body.lines|map('attr', 'format')|list }}",
        FORBIDDEN,
        id="CVE-2025-27516-attr-through-map",
    ),
    pytest.param("{{ ''.__class__ }}", FORBIDDEN, id="str-class"),
    pytest.param("{{ ''.__class__.__mro__[1].__subclasses__() }}", FORBIDDEN, id="subclasses"),
    pytest.param("{{ event.__class__.__mro__ }}", FORBIDDEN, id="mro-dunder"),
    pytest.param("{{ dict.mro() }}", FORBIDDEN, id="type-mro"),
    pytest.param("{{ now.__globals__ }}", FORBIDDEN, id="function-globals"),
    pytest.param("{{ range.__init__ }}", FORBIDDEN, id="init"),
    pytest.param("{{ 'a'.upper.__self__ }}", FORBIDDEN, id="method-self"),
    pytest.param("{{ event['__class__'] }}", FORBIDDEN, id="subscript-dunder"),
    pytest.param("{{ event.body.lines|sort(attribute='__class__') }}", FORBIDDEN, id="attr-arg"),
    pytest.param("{{ event.body.lines|map(attribute='__class__')|list }}", FORBIDDEN),
    pytest.param("{{ cycler.__init__.__globals__.os }}", FORBIDDEN, id="cycler"),
    pytest.param("{{ joiner().__init__ }}", FORBIDDEN, id="joiner"),
    pytest.param("{{ namespace(a=1) }}", FORBIDDEN, id="namespace"),
    pytest.param("{{ lipsum.__globals__['os'] }}", FORBIDDEN, id="lipsum"),
    pytest.param("{{ range.__self__ }}", FORBIDDEN, id="range-abuse"),
    pytest.param("{{ self }}", FORBIDDEN, id="self"),
    pytest.param("{{ self._TemplateReference__context }}", FORBIDDEN, id="self-context"),
    pytest.param("{{ config.items() }}", FORBIDDEN, id="config"),
    pytest.param("{{ request.environ }}", FORBIDDEN, id="request"),
    pytest.param("{{ context() }}", FORBIDDEN, id="context-call"),
    pytest.param("{{ __builtins__ }}", FORBIDDEN, id="builtins"),
    pytest.param("{{ import }}", FORBIDDEN, id="import-name"),
    pytest.param("{% for x in [1] %}{{ loop.__class__ }}{% endfor %}", FORBIDDEN, id="loop"),
    pytest.param("{% for x in [1] %}{{ loop.cycle('a') }}{% endfor %}", FORBIDDEN, id="loop-call"),
    pytest.param("{% include 'secrets.yaml' %}", FORBIDDEN, id="include"),
    pytest.param("{% extends 'base.html' %}", FORBIDDEN, id="extends"),
    pytest.param("{% import 'os' as os %}", FORBIDDEN, id="import-tag"),
    pytest.param("{% from 'os' import system %}", FORBIDDEN, id="from-import"),
    pytest.param("{% macro m() %}x{% endmacro %}{{ m() }}", FORBIDDEN, id="macro"),
    pytest.param("{% block b %}x{% endblock %}", FORBIDDEN, id="block"),
    pytest.param("{% for x in [1] recursive %}{{ loop([]) }}{% endfor %}", FORBIDDEN),
    pytest.param("{% debug %}", SYNTAX, id="debug"),
    pytest.param("{% do event.body.lines.append(3) %}", SYNTAX, id="do"),
    pytest.param("{{ dict.fromkeys([1]) }}", FORBIDDEN, id="classmethod-call"),
    pytest.param("{{ event.body.name.center(100) }}", FORBIDDEN, id="non-whitelisted-method"),
    pytest.param("{{ '%s' % event }}", FORBIDDEN, id="percent-format"),
    pytest.param("{{ event.body|pprint }}", FORBIDDEN, id="pprint"),
    pytest.param("{{ event.body|xmlattr }}", FORBIDDEN, id="xmlattr"),
    pytest.param("{{ 'x'|format(1) }}", FORBIDDEN, id="format-filter"),
    pytest.param("{{ [1, 2]|random }}", FORBIDDEN, id="random-filter"),
    pytest.param("{{ '1.5'|float }}", FORBIDDEN, id="float-filter"),
]


@pytest.mark.parametrize(("source", "code"), ESCAPES)
def test_escape_attempt_is_refused_with_a_clear_error(source: str, code: str) -> None:
    context = make_context()
    with pytest.raises(errors.ExpressionError) as caught:
        Template.compile(source, where="steps[0].with.x").render(context)
    error = caught.value
    assert type(error) is errors.ExpressionError  # never a SecurityError or a Python error
    assert error.code == code
    message = str(error)
    assert message.startswith("steps[0].with.x: ")
    for leak in (SECRET, "Traceback", "object at 0x", "<class", "__globals__ of", "jinja2."):
        assert leak not in message


@pytest.mark.parametrize(
    "source",
    [
        "{{ event.body.lines.append(3) }}",
        "{{ event.body.lines.pop() }}",
        "{{ event.body.meta.update({'k': 'changed'}) }}",
        "{{ event.body.meta.clear() }}",
        "{{ event.body.meta.setdefault('x', 1) }}",
        "{% set x = event.body.lines %}{{ x.extend([9]) }}",
        "{% set event.body = 1 %}",
        "{% set ns = dict() %}{% set ns.k = 1 %}",
    ],
)
def test_mutating_data_is_refused(source: str) -> None:
    with pytest.raises(errors.ExpressionError) as caught:
        Template.compile(source).render(make_context())
    assert caught.value.code == FORBIDDEN


def test_context_is_unchanged_after_hostile_templates() -> None:
    context = make_context()
    before = copy.deepcopy({k: v for k, v in context.items() if k != "secrets"})
    hostile = [
        "{{ event.body.lines.append(3) }}",
        "{{ event.body.meta.update({'k': 'changed'}) }}",
        "{{ event.body.lines.pop() }}",
        "{{ event.body.lines.sort(reverse=true) }}",
        "{% set event = {'body': 1} %}{{ event }}",
        "{% set lines = event.body.lines %}{{ lines.remove(1) }}",
        "{% for l in event.body.lines %}{% set l = 0 %}{% endfor %}",
        "{{ event.body.lines|reverse|list }}",
        "{{ event.body.meta|dictsort }}",
    ]
    for source in hostile:
        try:
            Template.compile(source).render(context)
        except errors.ExpressionError:
            pass
    assert {k: v for k, v in context.items() if k != "secrets"} == before
    assert Template.compile("{{ secrets.crm }}").render(context) == SECRET


def test_set_inside_a_template_rebinds_locally_only() -> None:
    context = make_context()
    source = "{% set event = {'body': {'name': 'Eve'}} %}{{ event.body.name }}"
    assert Template.compile(source).render(context) == "Eve"
    assert Template.compile("{{ event.body.name }}").render(context) == "Ada"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ event.body.name.upper() }}", "ADA"),
        ("{{ ' a '.strip() }}", "a"),
        ("{{ 'a,b'.split(',') }}", ["a", "b"]),
        ("{{ 'a-b'.replace('-', '+') }}", "a+b"),
        ("{{ event.body.name.startswith('A') }}", True),
        ("{{ '-'.join(['a', 'b']) }}", "a-b"),
        ("{{ event.body.meta.get('k') }}", "v"),
        ("{{ event.body.meta.get('missing', 'd') }}", "d"),
        ("{{ event.body.meta.keys()|list }}", ["k"]),
        ("{{ event.body.meta.values()|list }}", ["v"]),
        ("{{ event.body.lines.index(2) }}", 1),
        ("{{ dict(a=1) }}", {"a": 1}),
    ],
)
def test_whitelisted_pure_methods_work(source: str, expected: object) -> None:
    assert Template.compile(source).render(make_context()) == expected


def test_data_key_wins_over_a_method_of_the_same_name() -> None:
    context = {"event": {"body": {"items": [1], "keys": "k", "get": "g"}}}
    assert Template.compile("{{ event.body.items }}").render(context) == [1]
    assert Template.compile("{{ event.body.keys }}{{ event.body.get }}").render(context) == "kg"


# --- secrets ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [("{{ secrets.crm }}", SECRET), ("{{ secrets['shop'] }}", "shop-secret-value")],
)
def test_a_secret_is_read_by_name(source: str, expected: str) -> None:
    assert Template.compile(source).render(make_context()) == expected


def test_a_secret_can_be_used_in_text() -> None:
    result = Template.compile("Bearer {{ secrets.crm }}").render(make_context())
    assert result == f"Bearer {SECRET}"


@pytest.mark.parametrize(
    "source",
    [
        "{{ secrets }}",
        "x {{ secrets }}",
        "{{ secrets|list }}",
        "{{ secrets.items() }}",
        "{{ secrets.keys() }}",
        "{{ secrets.values() }}",
        "{{ secrets|dictsort }}",
        "{{ secrets|tojson }}",
        "{{ secrets|string }}",
        "{{ secrets|length }}",
        "{{ 'crm' in secrets }}",
        "{% for s in secrets %}{{ s }}{% endfor %}",
        "{{ secrets._values }}",
        "{{ secrets['_values'] }}",
        "{{ secrets.__class__ }}",
        "{{ secrets ~ '' }}",
        "{{ [secrets] }}",
        "{{ {'all': secrets} }}",
    ],
)
def test_secrets_can_only_be_read_one_by_name(source: str) -> None:
    with pytest.raises(errors.ExpressionError) as caught:
        Template.compile(source).render(make_context())
    assert caught.value.code == FORBIDDEN
    assert "secrets can only be read one by name" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_a_missing_secret_names_the_environment_variable() -> None:
    with pytest.raises(errors.ExpressionError) as caught:
        Template.compile("{{ secrets['erp-main'] }}").render(make_context())
    assert caught.value.code == "expression.undefined"
    assert "'erp-main'" in str(caught.value)
    assert "SEAMFLOW_SECRET_ERP_MAIN" in str(caught.value)


@pytest.mark.parametrize(
    "source",
    [
        "{{ secrets.crm|phone_cn }}",
        "{{ secrets.crm|cents }}",
        "{{ secrets.crm|int }}",
        "{{ secrets.crm + 1 }}",
        "{{ [secrets.crm].index('nope') }}",
        "{{ {'a': 1}|lookup(secrets.crm) }}",
        "{{ secrets.crm|lookup({'a': 1}) }}",
        "{{ secrets.crm|parse_datetime }}",
        "{{ secrets.crm > 1 }}",
        "{% if secrets.crm %}{{ secrets.crm.missing }}{% endif %}",
    ],
)
def test_a_secret_never_appears_in_an_error(source: str) -> None:
    with pytest.raises(errors.ExpressionError) as caught:
        Template.compile(source).render(make_context())
    assert SECRET not in str(caught.value)


def test_secrets_repr_shows_no_value() -> None:
    assert SECRET not in repr(Secrets({"crm": SECRET}))
    assert SECRET not in errors.redact(Secrets({"crm": SECRET}))


def test_secrets_can_be_read_by_name_from_python() -> None:
    assert Secrets({"crm": SECRET})["crm"] == SECRET
    with pytest.raises(errors.ExpressionError):
        list(Secrets({"crm": SECRET}))
    with pytest.raises(errors.ExpressionError):
        str(Secrets({"crm": SECRET}))
