"""The redactor: one registry of secret values, masked with `***` wherever text leaves Seamflow.

Every secret a project resolves (`SEAMFLOW_SECRET_<NAME>`, `secrets.enc.yaml`) and every
credential a connector reads from its connection is registered here once. Logs, error
messages (`errors.redact`), API answers, journal entries and CLI output pass their text
through `mask_text` or `mask`, so a secret never shows, neither as it is nor in the encoded
forms a flow, a connector or a log line may give it:

- as it is, and as Python's `repr` shows it (`errors.redact` renders values with `repr`);
- URL-encoded: `quote` with nothing safe (`%2F`), with `/` safe (Jinja's `urlencode` filter)
  and `quote_plus` (form bodies, query strings: space as `+`);
- JSON-escaped, with `\\u` escapes (`\\u5f20` for 张) and with UTF-8 kept (`ensure_ascii=False`);
- base64 and base64url, padded and unpadded (basic auth, tokens, e-mail AUTH), and also the
  part of the encoding that is fixed when the secret sits *inside* a longer encoded text
  (`user:secret` encoded whole for HTTP basic auth): base64 turns 3 bytes into 4 characters,
  so a secret starting at byte offset 0, 1 or 2 of the encoded text has three encodings whose
  middle characters do not depend on the bytes around it; that middle is registered for each.

Not registered, on purpose: hexadecimal. Nothing in Seamflow sends or logs a secret in hex;
the hex a flow makes is a digest (`sha256`, `md5`, `hmac_sha256`), which reveals nothing of
the secret, and the hex of a short secret is a run of digits that would mask amounts and ids.

A value shorter than `MIN_SECRET_LENGTH` (4) characters is not registered: masking "ab" or
"" would blank out text in every log line, and such a value protects nothing anyway. A
base64 middle shorter than `_MIN_INSIDE_LENGTH` characters is left out for the same reason.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from urllib.parse import quote, quote_plus

from seamflow.ids import Json

__all__ = ["MASK", "MIN_SECRET_LENGTH", "forms_of", "is_registered", "mask", "mask_text", "register"]

MASK = "***"
"""What a secret is replaced with."""
MIN_SECRET_LENGTH = 4
"""Values shorter than this are not registered (they would mask ordinary text everywhere)."""
_MIN_INSIDE_LENGTH = 6
"""A base64 middle (the secret inside a longer encoded text) shorter than this is not registered."""

_forms: set[str] = set()
_by_length: tuple[str, ...] = ()
"""Every registered form, longest first, replaced as a whole tuple so readers need no lock."""
_shortest = 0
"""The length of the shortest registered form: a shorter text holds none (0: none registered)."""
_has_separator_form = False
"""Whether a registered form holds `_SEPARATOR` (then `mask` cannot search the joined strings)."""


def register(value: str) -> None:
    """Register a secret value, and every encoded form of it, so that `mask_text` masks them.

    Args:
        value: the secret as a connection or flow uses it. Values shorter than
            `MIN_SECRET_LENGTH` characters are ignored.
    """
    global _by_length, _shortest, _has_separator_form
    if len(value) < MIN_SECRET_LENGTH:
        return
    new = forms_of(value) - _forms
    if new:
        _forms.update(new)
        _shortest = min(len(form) for form in _forms)  # before the forms: a reader never skips a new one
        _has_separator_form = any(_SEPARATOR in form for form in _forms)
        _by_length = tuple(sorted(_forms, key=len, reverse=True))


def is_registered(value: str) -> bool:
    """Return whether `value` is masked as it is (a registered secret or one of its forms)."""
    return value in _forms


def forms_of(value: str) -> set[str]:
    """Return the forms of `value` that the redactor masks (see the module docstring).

    Args:
        value: a secret value.

    Returns:
        The value and its encodings; empty when `value` is shorter than `MIN_SECRET_LENGTH`.
    """
    if len(value) < MIN_SECRET_LENGTH:
        return set()
    shown = repr(value)[1:-1].replace("\\'", "'")
    forms = {
        value,
        shown,
        shown.replace("'", "\\'"),
        quote(value, safe=""),
        quote(value, safe="/"),
        quote_plus(value, safe=""),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
    }
    raw = value.encode()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        forms |= _base64_forms(raw, encode)
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


def _base64_forms(raw: bytes, encode: Callable[[bytes], bytes]) -> set[str]:
    whole = encode(raw).decode()
    forms = {whole, whole.rstrip("=")}
    for offset in (0, 1, 2):
        # The characters before `skip` carry bits of the bytes in front of the secret, and
        # those from `end` on carry bits of the bytes after it: only the middle is fixed.
        encoded = encode(bytes(offset) + raw).decode()
        skip = (8 * offset + 5) // 6
        end = 8 * (offset + len(raw)) // 6
        inside = encoded[skip:end]
        if len(inside) >= _MIN_INSIDE_LENGTH:
            forms.add(inside)
    return forms


def mask_text(text: str) -> str:
    """Return `text` with every registered secret, in every registered form, replaced by `***`.

    Longer forms go first, so that a padded base64 form is masked whole, not as its unpadded
    prefix plus a stray `=`.
    """
    if len(text) < _shortest:  # most texts are short (logins, ids, addresses): no form fits in them
        return text
    for form in _by_length:
        if form in text:
            text = text.replace(form, MASK)
    return text


def mask(value: Json) -> Json:
    """Return `value` (JSON-like) with every registered secret masked in its strings, keys included.

    The shape and the other types are kept: numbers stay numbers, `None` stays `None`. A value
    with no secret in it is returned as it is (not copied).
    """
    forms = _by_length
    if not forms:
        return value
    texts: list[str] = []
    _collect_texts(value, texts)
    # One search per form through all the strings at once, instead of one per form and string (an
    # inbox answer has thousands of strings): a form without the separator cannot match across two.
    joined = _SEPARATOR.join(texts)
    if _has_separator_form:
        return _masked(value)
    for form in forms:  # a plain loop: `any()` over a generator cost twice as much per form
        if form in joined:
            return _masked(value)
    return value


_SEPARATOR = "\x00"


def _collect_texts(value: Json, into: list[str]) -> None:
    if isinstance(value, str):
        into.append(value)
    elif isinstance(value, dict):
        into.extend(value)
        for inner in value.values():
            _collect_texts(inner, into)
    elif isinstance(value, list):
        for inner in value:
            _collect_texts(inner, into)


def _masked(value: Json) -> Json:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {mask_text(k): _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value
