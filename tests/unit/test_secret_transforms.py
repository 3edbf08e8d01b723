"""What an expression makes from a secret is masked like the secret: filters, `~`, slices, methods.

Each test reads its own secret value, so the redactor's registry (one per process) cannot make a
test pass because another registered the same text first.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from urllib.parse import quote

import pytest

from seamflow import errors, redact
from seamflow.flows.expressions import Secrets, Template
from seamflow.ids import Json


def render(source: Json, secret: str, **roots: Json) -> Json:
    return Template.compile(source).render({"secrets": Secrets({"pw": secret}), **roots})


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# name -> (template, what it gives for the secret)
TRANSFORMS: dict[str, tuple[str, Callable[[str], str]]] = {
    "upper": ("{{ secrets.pw | upper }}", str.upper),
    "lower": ("{{ secrets.pw | lower }}", str.lower),
    "method": ("{{ secrets.pw.swapcase() }}", str.swapcase),
    "b64encode": ("{{ secrets.pw | b64encode }}", b64),
    "basic header": ("Basic {{ ('li.na:' ~ secrets.pw) | b64encode }}", lambda pw: "Basic " + b64("li.na:" + pw)),
    "urlencode": ("{{ secrets.pw | urlencode }}", lambda pw: quote(pw, safe="/")),
    "replace": ("{{ secrets.pw | replace('-', '') }}", lambda pw: pw.replace("-", "")),
    "slice": ("{{ secrets.pw[3:12] }}", lambda pw: pw[3:12]),
    "reverse": ("{{ secrets.pw | reverse }}", lambda pw: pw[::-1]),
    "plus": ("{{ secrets.pw + '@crm' }}", lambda pw: pw + "@crm"),
    "list and join": ("{{ secrets.pw | list | join('.') }}", lambda pw: ".".join(pw)),
    "loop": ("{% for c in secrets.pw %}{{ c }}|{% endfor %}", lambda pw: "".join(c + "|" for c in pw)),
    "sha256": ("{{ secrets.pw | sha256 }}", lambda pw: hashlib.sha256(pw.encode()).hexdigest()),
    "hash md5": ("{{ secrets.pw | hash('md5') }}", lambda pw: hashlib.md5(pw.encode()).hexdigest()),
    "hmac key": (
        "{{ 'SO-2026-0001' | hmac_sha256(secrets.pw) }}",
        lambda pw: hmac.new(pw.encode(), b"SO-2026-0001", hashlib.sha256).hexdigest(),
    ),
    "tojson": (
        "{{ {'user': 'li.na', 'pw': secrets.pw | upper} | tojson }}",
        lambda pw: json.dumps({"user": "li.na", "pw": pw.upper()}, separators=(",", ":")),
    ),
    "set then filter": ("{% set p = secrets.pw | upper %}{{ p | lower | reverse }}", lambda pw: pw.lower()[::-1]),
}


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_a_transformed_secret_renders_as_it_is_and_is_masked_everywhere(name: str) -> None:
    secret = f"hZ7-{len(name):02d}-{name.replace(' ', '')}-kQ9x"
    template, expected = TRANSFORMS[name]
    value = render(template, secret)
    assert value == expected(secret), "the target gets the real value"
    masked = "Basic ***" if value.startswith("Basic ") else "***"  # the scheme is no secret
    assert redact.mask_text(value) == masked, f"{value!r} is masked whole"
    assert redact.mask({"headers": {"x-token": value}}) == {"headers": {"x-token": masked}}
    assert errors.redact(value) == repr(masked)


def test_a_secret_part_of_a_longer_text_is_masked_and_the_rest_kept() -> None:
    secret = "pArt-of-Longer-5521"
    value = render("order SO-2026-0001 for 王芳 key={{ secrets.pw | upper }} amount=¥1288.00", secret)
    assert value == f"order SO-2026-0001 for 王芳 key={secret.upper()} amount=¥1288.00"
    assert redact.mask_text(value) == "order SO-2026-0001 for 王芳 key=*** amount=¥1288.00"


def test_a_transformed_secret_inside_a_json_body_is_masked_in_place() -> None:
    secret = "jSon-Body-Secret-8830"
    body = render({"mobile": "+86 139 1234 5678", "token": "{{ secrets.pw | lower }}", "n": 3}, secret)
    assert body == {"mobile": "+86 139 1234 5678", "token": secret.lower(), "n": 3}
    assert redact.mask(body) == {"mobile": "+86 139 1234 5678", "token": "***", "n": 3}


def test_short_pieces_of_a_secret_side_by_side_mask_the_whole_text() -> None:
    secret = "sHort-Pieces-7741"
    value = render("{{ secrets.pw[:3] }}-{{ secrets.pw[3:6] }}", secret)
    assert value == f"{secret[:3]}-{secret[3:6]}"
    assert redact.mask_text(f"sent {value} to the CRM") == "sent *** to the CRM"


def test_numbers_and_short_results_made_from_a_secret_are_not_registered() -> None:
    secret = "nUmbers-Stay-4412"
    assert render("{{ secrets.pw | length }}", secret) == len(secret)
    assert render("{{ secrets.pw | length }} characters", secret) == f"{len(secret)} characters"
    assert render("{{ secrets.pw[:2] }}", secret) == secret[:2]
    assert render("{{ secrets.pw.startswith('nU') }}", secret) is True
    assert redact.mask_text(f"{len(secret)} characters, starts with {secret[:2]}") == (
        f"{len(secret)} characters, starts with {secret[:2]}"
    ), "a number, true/false or a 2-character piece would mask ordinary text everywhere"
    assert not redact.is_registered(f"{len(secret)} characters")


def test_text_made_without_secrets_is_not_registered() -> None:
    event = {"body": {"name": "Guangzhou Trading Co-6631", "city": "广州"}}
    value = render("{{ event.body.name | upper }}/{{ event.body.name[0:9] }}", "nOt-Read-Here-1234", event=event)
    assert value == "GUANGZHOU TRADING CO-6631/Guangzhou"
    assert redact.mask_text(value) == value
    assert render("{{ event.body.city ~ secrets.pw[:0] }}", "nOt-Read-Here-1234", event=event) == "广州"


def test_an_error_about_a_transformed_secret_shows_it_masked() -> None:
    secret = "eRror-Shown-Masked-9920"
    with pytest.raises(errors.ExpressionError) as caught:
        render("{{ (secrets.pw | upper) | int }}", secret)
    assert secret.upper() not in caught.value.message
    assert "***" in caught.value.message


@pytest.mark.parametrize(
    "source",
    [
        "{% filter upper %}{{ secrets.pw }}{% endfilter %}",
        "{% set p %}{{ secrets.pw }}{% endset %}{{ p | upper }}",
    ],
)
def test_block_tags_that_would_hide_a_transform_are_refused_when_secrets_are_read(source: str) -> None:
    with pytest.raises(errors.ExpressionError) as caught:
        Template.compile(source, where="steps[0].with.token")
    assert caught.value.code == "expression.forbidden"
    assert "reads secrets" in caught.value.message and "steps[0].with.token" in caught.value.message


def test_block_tags_without_secrets_still_work() -> None:
    assert Template.compile("{% filter upper %}{{ event.x }}{% endfilter %}").render({"event": {"x": "ok"}}) == "OK"


@pytest.mark.parametrize(
    ("source", "message"),
    [("{{ event.n[1:] }}", "cannot slice an int"), ("{{ event.s[1:'a'] }}", "whole-number bounds")],
)
def test_a_bad_slice_is_a_clear_error(source: str, message: str) -> None:
    with pytest.raises(errors.ExpressionError) as caught:
        Template.compile(source).render({"event": {"n": 5, "s": "abc"}})
    assert caught.value.code == "expression.type" and message in caught.value.message


def test_the_example_of_the_reference_is_masked_as_it_says() -> None:
    """docs/reference/expressions.md, "Secrets in expressions"."""
    step_with = {
        "path": "/sessions",
        "headers": {
            "Authorization": "Basic {{ ('zhang.wei:' ~ secrets.crm_password) | b64encode }}",
            "X-Sign": "{{ ('SO-2026-0001' ~ secrets.shop_key) | sha256 | upper }}",
        },
        "json": {"mobile": "+86 138 0013 8000", "note": "order SO-2026-0001 key={{ secrets.crm_password | upper }}"},
    }
    secrets = Secrets({"crm_password": "dOcs-Crm-Pass-3107", "shop_key": "dOcs-Shop-Key-3107"})
    rendered = Template.compile(step_with).render({"secrets": secrets})
    assert rendered["headers"]["Authorization"] == "Basic " + b64("zhang.wei:dOcs-Crm-Pass-3107")  # type: ignore[index]
    assert redact.mask(rendered) == {
        "path": "/sessions",
        "headers": {"Authorization": "Basic ***", "X-Sign": "***"},
        "json": {"mobile": "+86 138 0013 8000", "note": "order SO-2026-0001 key=***"},
    }


def test_lists_made_from_a_secret_keep_their_shape() -> None:
    secret = "gRoup-Keeps-Names-6120"
    source = (
        "{% set lines = " + "[{'sku': 'A-1', 'key': secrets.pw | upper}, {'sku': 'B-2', 'key': secrets.pw | upper}]"
        " %}{% for g in lines | groupby('key') %}{{ g.list | length }}:{{ g.grouper }}{% endfor %}"
    )
    value = render(source, secret)
    assert value == f"2:{secret.upper()}", "groupby's names (grouper, list) still work on marked items"
    assert redact.mask_text(value) == "2:***"
    assert render("{{ secrets.pw | batch(4) | list | length }}", secret) == 6
