"""The unified social credit code (统一社会信用代码, GB 32100-2015): the 18-character tax id of a Chinese organisation.

python-stdnum's `stdnum.cn.uscc` is used when it is installed (`pip install seamflow-crm[uscc]`);
otherwise the same checks run here: the alphabet (digits and upper-case letters without I, O,
S, V, Z), six digits of administrative division code at positions 3-8, and the check digit
(weighted sum modulo 31).
"""

from __future__ import annotations

import re

__all__ = ["calc_check_character", "is_valid", "validator"]

_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_FORMAT = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$")

try:  # pragma: no cover - depends on the environment
    from stdnum.cn import uscc as _stdnum_uscc  # type: ignore[import-not-found]  # optional dependency
except ImportError:
    _stdnum_uscc = None

validator = "python-stdnum" if _stdnum_uscc is not None else "seamflow_crm.uscc"
"""Which implementation `is_valid` uses."""


def calc_check_character(first17: str) -> str:
    """The 18th character of a code whose first 17 characters are given."""
    total = sum(_ALPHABET.index(char) * weight for char, weight in zip(first17, _WEIGHTS, strict=True))
    return _ALPHABET[(31 - total % 31) % 31]


def is_valid(code: str) -> bool:
    """Whether `code` is a well-formed unified social credit code with a correct check character."""
    if _stdnum_uscc is not None:
        return bool(_stdnum_uscc.is_valid(code)) and code == code.strip().upper()
    return bool(_FORMAT.match(code)) and calc_check_character(code[:17]) == code[17]
