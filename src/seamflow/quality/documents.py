"""Chinese document numbers: resident identity number, unified social credit code, bank card, postcode.

The check algorithms are python-stdnum's implementations of the published standards: GB 11643-1999
(resident identity number: an ISO 7064 MOD 11-2 check digit, a birth date, a region code),
GB 32100-2015 (unified social credit code: a MOD 31 check character over its alphabet) and the
Luhn algorithm (ISO/IEC 7812) for bank cards. A validator returns the number in its one stored
form (upper case, no spaces) or raises `DocumentInvalid` saying what is wrong.
"""

from __future__ import annotations

import re
from datetime import date

from seamflow.quality.text import to_half_width

__all__ = [
    "DocumentInvalid",
    "normalise_bank_card",
    "normalise_postcode",
    "normalise_resident_id",
    "normalise_uscc",
    "resident_id_facts",
]

_SPACES = re.compile(r"[\s\-]+")
_POSTCODE = re.compile(r"[0-8]\d{5}")


class DocumentInvalid(ValueError):
    """The text is not a valid number of that kind; the message says why."""


def _compact(text: str) -> str:
    return _SPACES.sub("", to_half_width(text)).upper()


def normalise_resident_id(text: str) -> str:
    """Return an 18-character resident identity number (upper-case `X`), checked by GB 11643.

    Raises:
        DocumentInvalid: wrong length or characters, an impossible birth date, an unknown region
            or a wrong check digit.
    """
    from stdnum import exceptions
    from stdnum.cn import ric

    number = _compact(text)
    if len(number) != 18:
        raise DocumentInvalid(f"has {len(number)} characters; expected 18 (17 digits and a check digit)")
    try:
        return str(ric.validate(number))
    except exceptions.InvalidChecksum:
        raise DocumentInvalid("has a wrong check digit (GB 11643 MOD 11-2)") from None
    except exceptions.InvalidComponent:
        raise DocumentInvalid("has an impossible birth date or an unknown region code") from None
    except exceptions.ValidationError:
        raise DocumentInvalid("is not 17 digits followed by a digit or X") from None


def resident_id_facts(number: str) -> dict[str, str]:
    """Return what a valid resident identity number says: `birth_date` (ISO), `sex`, `region_code`."""
    from stdnum.cn import ric

    born: date = ric.get_birth_date(number)
    return {
        "birth_date": born.isoformat(),
        "sex": "male" if int(number[16]) % 2 else "female",
        "region_code": number[:6],
    }


def normalise_uscc(text: str) -> str:
    """Return an 18-character unified social credit code, checked by GB 32100.

    Raises:
        DocumentInvalid: wrong length, a character outside the code's alphabet or a wrong check character.
    """
    from stdnum import exceptions
    from stdnum.cn import uscc

    code = _compact(text)
    if len(code) != 18:
        raise DocumentInvalid(f"has {len(code)} characters; expected 18")
    try:
        return str(uscc.validate(code))
    except exceptions.InvalidChecksum:
        raise DocumentInvalid("has a wrong check character (GB 32100 MOD 31)") from None
    except exceptions.ValidationError:
        raise DocumentInvalid("has characters outside the code's alphabet (digits and A-Y without I, O, S, V, Z)") from None


def normalise_bank_card(text: str) -> str:
    """Return a bank card number of 16 to 19 digits whose Luhn check digit is right.

    Raises:
        DocumentInvalid: not 16-19 digits, or the Luhn check fails.
    """
    from stdnum import luhn

    number = _compact(text)
    if not (number.isascii() and number.isdigit() and 16 <= len(number) <= 19):
        raise DocumentInvalid("is not 16 to 19 digits")
    if not luhn.is_valid(number):
        raise DocumentInvalid("has a wrong check digit (Luhn)")
    return number


def normalise_postcode(text: str) -> str:
    """Return a six-digit mainland postcode (the first digit 0-8).

    Raises:
        DocumentInvalid: not six digits starting 0-8.
    """
    code = _compact(text)
    if not _POSTCODE.fullmatch(code):
        raise DocumentInvalid("is not a mainland postcode; expected six digits, the first 0 to 8")
    return code
