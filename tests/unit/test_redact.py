"""The redactor (`seamflow.redact`): a registered secret is masked in every encoded form, inside longer text too."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, urlencode

import pytest

from seamflow import errors, redact

SECRET = "Zq7/pa55+wörd:42"


@pytest.fixture(autouse=True)
def registered() -> None:
    redact.register(SECRET)


@pytest.mark.parametrize("prefix", ["", "u", "us", "user:", "Basic-user-name:"])
@pytest.mark.parametrize("suffix", ["", "!", "?x=1&y=2"])
@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode], ids=["base64", "base64url"])
def test_a_secret_base64_encoded_inside_a_longer_text_is_masked(prefix: str, suffix: str, encode: object) -> None:
    assert callable(encode)
    encoded = encode(f"{prefix}{SECRET}{suffix}".encode()).decode()
    masked = redact.mask_text(f"Authorization: Basic {encoded}")
    assert "***" in masked
    # At most two characters before and three after the mask still carry bits of the secret.
    secret_chars = len(base64.b64encode(SECRET.encode()).rstrip(b"="))
    assert len(encoded) - (len(masked) - len("Authorization: Basic ***")) >= secret_chars - 5


def test_a_secret_url_encoded_inside_a_query_string_is_masked() -> None:
    for query in (
        urlencode({"user": "ann", "password": SECRET, "next": "/home"}),
        f"user=ann&password={quote(SECRET, safe='')}&next=%2Fhome",
        f"https://erp.example/login/{quote(SECRET)}/go",
    ):
        masked = redact.mask_text(query)
        assert "***" in masked and "pa55" not in masked, query


def test_a_secret_json_escaped_inside_a_document_is_masked() -> None:
    for document in (json.dumps({"pw": SECRET}), json.dumps({"pw": SECRET}, ensure_ascii=False)):
        assert redact.mask_text(document) == '{"pw": "***"}'


def test_a_secret_with_quotes_and_backslashes_is_masked_in_error_messages() -> None:
    tricky = 'it\'s\\a "secret"\n'
    redact.register(tricky)
    assert errors.redact({"got": tricky}) == "{'got': '***'}"
    assert errors.redact(f"said {tricky}") == "'said ***'"


@pytest.mark.parametrize("value", ["", "a", "ab", "abc"])
def test_an_empty_or_short_value_is_not_registered_and_masks_nothing(value: str) -> None:
    redact.register(value)
    assert redact.forms_of(value) == set()
    assert not redact.is_registered(value)
    assert redact.mask_text("abcdef abc, a bc") == "abcdef abc, a bc"


def test_every_form_is_at_least_the_minimum_length() -> None:
    for value in ("abcd", "1234", "x" * 40, SECRET):
        assert all(len(form) >= redact.MIN_SECRET_LENGTH for form in redact.forms_of(value))


def test_a_digest_of_a_secret_is_not_masked_because_it_reveals_nothing() -> None:
    digest = "8c6976e5b5410415bde908bd4dee15dfb167a9c873fc4bb8a81f6f2ab448a918"
    assert redact.mask_text(f"sha256={digest}") == f"sha256={digest}"


def test_mask_keeps_numbers_and_none_and_masks_keys() -> None:
    assert redact.mask({SECRET: [1, 2.5, None, True, f"x{SECRET}"]}) == {"***": [1, 2.5, None, True, "x***"]}


def test_mask_returns_a_value_without_secrets_as_it_is_and_finds_one_deep_inside() -> None:
    secret = "inbox-8f2Kq7ZpL0"
    redact.register(secret)
    clean = [{"subject": "报销单 BX-2026-000123", "data": {"amount": "1280.50", "tags": ["差旅", 3, None]}}]
    assert redact.mask(clean) is clean
    split = [{"a": secret[:8], "b": secret[8:]}]  # halves in two strings are no secret
    assert redact.mask(split) is split
    deep = [{"data": {"lines": [{"note": f"token {secret}."}]}}, {secret: 1}]
    assert redact.mask(deep) == [{"data": {"lines": [{"note": "token ***."}]}}, {"***": 1}]
