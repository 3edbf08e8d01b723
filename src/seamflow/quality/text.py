"""Text cleanup of typed-in business data: full-width to half-width, whitespace collapsed and trimmed.

Chinese input methods type digits, Latin letters and punctuation in full width (`１３８`, `ＡＢＣ`,
`（`), and exports carry ideographic spaces, non-breaking spaces and zero-width characters.
`clean_text` folds the full-width ASCII forms to ASCII and keeps Chinese characters and Chinese
punctuation (`，` `。` `、`) as typed, so a name or an address is not rewritten.
"""

from __future__ import annotations

import re

__all__ = ["clean_text", "to_half_width", "unclean"]

_FULL_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
"""U+FF01..U+FF5E are ASCII ! .. ~ in full width, 0xFEE0 above them."""
_FULL_WIDTH[0x3000] = 0x20  # ideographic space
_KEPT = {ord("，"), ord("。"), ord("、"), ord("；"), ord("："), ord("？"), ord("！"), ord("（"), ord("）")}
_TEXT_FOLD = {code: target for code, target in _FULL_WIDTH.items() if code not in _KEPT}
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
_SPACES = re.compile(r"[\s\u00a0\u2000-\u200a\u202f\u205f]+")
_UNCLEAN = re.compile(r"^\s|\s$|\s\s|[^\S ]|[\u00a0\u00ad\u2000-\u200d\u202f\u205f\u2060\u3000\ufeff\uff01-\uff5e]")
"""Anything `clean_text` would change; most values have none of it and are returned as they are."""
unclean = _UNCLEAN.search
"""The first thing in a text that `clean_text` would change, or None: a clean text is its own clean form."""


def to_half_width(text: str) -> str:
    """Fold every full-width ASCII form (digits, letters, punctuation, the ideographic space) to ASCII."""
    return text.translate(_FULL_WIDTH)


def clean_text(text: str) -> str:
    """Return `text` with full-width letters and digits folded, invisible characters removed and
    runs of whitespace collapsed to one space, trimmed. Chinese punctuation is kept.

    Idempotent: `clean_text(clean_text(s)) == clean_text(s)` for every string.
    """
    if _UNCLEAN.search(text) is None:
        return text
    folded = text.translate(_TEXT_FOLD).translate(_INVISIBLE)
    return _SPACES.sub(" ", folded).strip()
