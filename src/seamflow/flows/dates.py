"""The date and time filters of flow expressions: `parse_datetime`, `to_timezone`, `format_datetime` and the rest.

Dates go in and out as ISO-8601 text, because text is what the data model keeps; text without an offset
is read in Asia/Shanghai unless told. `filters.FILTERS` lists these filters by the name used in expressions.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final

from seamflow import clock, errors
from seamflow.flows.refusals import type_error, value_error

DEFAULT_TZ: Final = "Asia/Shanghai"
"""Time zone that date filters assume for naive inputs and use for output."""

_NAIVE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]+(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,6}))?)?)?")
_CHINESE_UNITS: Final = (("年", "-"), ("月", "-"), ("日", " "), ("时", ":"), ("点", ":"))
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones() | {"UTC"})


def _zone(name: object) -> zoneinfo.ZoneInfo:
    if not isinstance(name, str) or name not in _zone_names():
        raise value_error(f"unknown time zone {errors.redact(name)}", "an IANA name such as Asia/Shanghai")
    return zoneinfo.ZoneInfo(name)


def _parse(value: object, tz: object) -> datetime:
    """Read an instant from ISO, slashed or Chinese text, or epoch seconds; naive → `tz`."""
    zone = _zone(tz)
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        seconds = Decimal(value)
        try:
            since = timedelta(seconds=int(seconds), microseconds=int(seconds % 1 * 1_000_000))
            return (_EPOCH + since).astimezone(zone)
        except (OverflowError, ValueError):
            raise value_error(f"{errors.redact(value)} is out of range", "epoch seconds") from None
    if not isinstance(value, str):
        raise type_error(value, "a date/time as text or epoch seconds")
    result = _read_text(value.strip())
    if result is None:
        raise value_error(
            f"{errors.redact(value)} is not a date/time",
            "ISO 8601, 2026/11/24, 2026年11月24日 10:05 or epoch seconds",
        )
    return result if result.tzinfo else result.replace(tzinfo=zone)


def _read_text(text: str) -> datetime | None:
    if not text.isdigit():
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    for unit, ascii_unit in _CHINESE_UNITS:
        text = text.replace(unit, ascii_unit)
    text = text.replace("分", ":").replace("秒", "").replace("/", "-").strip().rstrip(":")
    match = _NAIVE.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(part or 0) for part in match.groups()[:6])
    micro = int((match.group(7) or "").ljust(6, "0"))
    try:
        return datetime(year, month, day, hour, minute, second, micro)
    except ValueError:
        return None


def parse_datetime(value: object, tz: str = DEFAULT_TZ) -> str:
    """Read a date/time and give ISO-8601 text with its offset.

    Accepts "2026-11-24T10:00:00+08:00", "2026-11-24 10:00:00", "2026/11/24",
    "2026年11月24日", "2026年11月24日 10时05分", "2026年11月24日 10:05" and epoch seconds.
    Text without an offset is read in `tz` (default Asia/Shanghai); text with an offset
    keeps it. `{{ "2026年11月24日"|parse_datetime }}` gives "2026-11-24T00:00:00+08:00".
    """
    return _parse(value, tz).isoformat()


def to_timezone(value: object, tz: str = DEFAULT_TZ) -> str:
    """The same instant as ISO-8601 text in `tz`: "2026-11-24T02:00:00Z" → "...T10:00:00+08:00"."""
    return _parse(value, tz).astimezone(_zone(tz)).isoformat()


def format_datetime(value: object, fmt: str = "%Y-%m-%d %H:%M:%S", tz: str = DEFAULT_TZ) -> str:
    """Format an instant in `tz`: "2026-11-24T02:00:00Z" gives "2026-11-24 10:00:00".

    `{{ event.body.paid_at|format_datetime("%Y/%m/%d") }}`; the default format is
    "%Y-%m-%d %H:%M:%S" and the default zone Asia/Shanghai.
    """
    if not isinstance(fmt, str):
        raise type_error(fmt, "a strftime format such as '%Y-%m-%d'")
    return _parse(value, tz).astimezone(_zone(tz)).strftime(fmt)


def format_date_cn(value: object, tz: str = DEFAULT_TZ) -> str:
    """The date in `tz` written the Chinese way, without zero padding: "2026年11月24日"."""
    moment = _parse(value, tz).astimezone(_zone(tz))
    return f"{moment.year}年{moment.month}月{moment.day}日"


def now(tz: str = DEFAULT_TZ) -> str:
    """The current instant (from `seamflow.clock`) as ISO-8601 text in `tz`."""
    return clock.now().astimezone(_zone(tz)).isoformat()
