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
from functools import lru_cache

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
_PLAIN_ID = re.compile(r"\d{17}[\dX]")


class DocumentInvalid(ValueError):
    """The text is not a valid number of that kind; the message says why."""


def _compact(text: str) -> str:
    return _SPACES.sub("", to_half_width(text)).upper()


def normalise_resident_id(text: str) -> str:
    """Return an 18-character resident identity number (upper-case `X`), checked by GB 11643.

    The check digit is computed here (weights 2^(17-i) mod 11, ISO 7064 MOD 11-2) and the birth date
    parsed; the region code is looked up in python-stdnum's table of county codes, once per region
    and birth year (a county code is valid only in the years it was assigned).

    Raises:
        DocumentInvalid: wrong length or characters, an impossible birth date, an unknown region
            or a wrong check digit.
    """
    number = text if _PLAIN_ID.fullmatch(text) else _compact(text)
    if len(number) != 18:
        raise DocumentInvalid(f"has {len(number)} characters; expected 18 (17 digits and a check digit)")
    body = number[:17]
    if not (body.isascii() and body.isdigit()) or number[17] not in CHECK_CHARACTERS:
        raise DocumentInvalid("is not 17 digits followed by a digit or X")
    # sum of d_i * 2^(17-i) mod 11 = 2 * (the digits read in base 13) mod 11, as 13 = 2 mod 11: one C call
    if CHECK_CHARACTERS[(12 - 2 * int(body, 13) % 11) % 11] != number[17]:
        raise DocumentInvalid("has a wrong check digit (GB 11643 MOD 11-2)")
    problem = _birth_problem(number[6:14])
    if problem is not None:
        raise DocumentInvalid(problem)
    if not _is_region(number[:6], int(number[6:10])):
        raise DocumentInvalid("has a region code that was not assigned in its birth year")
    if len(REGION_YEARS) < 1 << 16:
        REGION_YEARS[number[:10]] = None
    return number


REGION_YEARS: dict[str, None] = {}
"""Region codes with a birth year (the first 10 characters of a number) found assigned: a column
screen (`screens.py`) accepts numbers whose region and year are in here without asking python-stdnum."""


BIRTH_DATES: dict[str, None] = {}
"""Birth dates (YYYYMMDD) already found to exist and to be past: a column repeats them."""


def _birth_problem(digits: str) -> str | None:
    """What is wrong with the birth date YYYYMMDD of an identity number; None if nothing."""
    if digits in BIRTH_DATES:
        return None
    try:
        born = date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return "has a birth date that does not exist"
    if born.year < 1900 or born > date.today():
        return "has a birth date before 1900 or in the future"
    if len(BIRTH_DATES) < 1 << 16:  # a past date stays past: only those are remembered
        BIRTH_DATES[digits] = None
    return None


CHECK_CHARACTERS = "0123456789X"
"""Indexed by (12 - sum mod 11) mod 11: the digits 1 0 X 9 8 7 6 5 4 3 2 of GB 11643 for sums 0..10."""


@lru_cache(maxsize=1 << 16)
def _is_region(code: str, year: int) -> bool:
    from stdnum import exceptions
    from stdnum.cn import ric

    try:
        ric.get_birth_place(f"{code}{year}0101000X")
    except (exceptions.ValidationError, KeyError):  # KeyError: a known province, an unknown county (stdnum 1.20)
        return False
    return True


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
        raise DocumentInvalid(
            "has characters outside the code's alphabet (digits and A-Y without I, O, S, V, Z)"
        ) from None


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
