"""Text encodings of CSV files: the declared one checked, or one detected from the file's first bytes.

Detection: a UTF-8 byte order mark → `utf-8` (the mark is skipped); text that decodes as
UTF-8 → `utf-8`; otherwise GB18030, the superset of GBK and GB2312 that Chinese Excel and
most POS and ERP exports write. Every encoding used must write a newline as the byte `\\n`
and never use that byte inside a character, so rows can be found (and resumed) by byte offset.
"""

from __future__ import annotations

import codecs

from seamflow import errors

__all__ = ["BOM", "DETECT_BYTES", "check_encoding", "detect"]

BOM = codecs.BOM_UTF8
DETECT_BYTES = 1 << 20
"""How much of a file detection looks at."""

_UNSUITABLE = ("utf_16", "utf_32", "utf_7")
"""Encodings whose characters may hold the byte `\\n` (or that need state across lines)."""


def check_encoding(name: str, where: str) -> str:
    """Return the codec name of a declared encoding (`gbk`, `utf-8-sig`, …).

    `utf-8-sig` reads like `utf-8` (a byte order mark is always skipped) but writes the mark,
    which Excel needs to show UTF-8 text correctly.

    Raises:
        errors.Permanent: the encoding is unknown or cannot be read line by line.
    """
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        raise errors.Permanent(
            f"encoding {errors.redact(name)} is unknown; expected auto, utf-8, utf-8-sig, gbk or gb18030", where=where
        ) from None
    if codec.replace("-", "_").startswith(_UNSUITABLE):
        raise errors.Permanent(
            f"encoding {errors.redact(name)} is not supported; expected an encoding that keeps a newline "
            "one byte (utf-8, utf-8-sig, gbk, gb18030, big5, latin-1)",
            where=where,
        )
    return codec


def detect(head: bytes, shown: str, where: str) -> str:
    """Return the codec of a file whose first bytes are `head` (at most `DETECT_BYTES`).

    Raises:
        errors.Permanent: the bytes are neither UTF-8 nor GB18030; the file needs `encoding:`.
    """
    if head.startswith(BOM):
        return "utf-8"
    if _decodes(head, "utf-8"):
        return "utf-8"
    if _decodes(head, "gb18030"):
        return "gb18030"
    raise errors.Permanent(
        f"file {shown}: the text is neither UTF-8 nor GBK/GB18030; expected encoding: to name its encoding",
        where=where,
    )


def _decodes(head: bytes, codec: str) -> bool:
    """True if `head` decodes; a character cut at the end of `head` is not held against it."""
    decoder = codecs.getincrementaldecoder(codec)()
    try:
        decoder.decode(head, final=len(head) < DETECT_BYTES)
    except UnicodeDecodeError:
        return False
    return True
