"""Date filters read ISO, slashed, Chinese and epoch inputs and give ISO-8601 text."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seamflow import clock, errors
from seamflow.flows import dates, filters
from seamflow.flows.expressions import Template


def render(source: str) -> object:
    return Template.compile(source).render({})


PARSE_EXAMPLES = [
    ("2026-11-24T10:00:00+08:00", "2026-11-24T10:00:00+08:00"),
    ("2026-11-24T02:00:00Z", "2026-11-24T02:00:00+00:00"),
    ("2026-11-24 10:00:00", "2026-11-24T10:00:00+08:00"),
    ("2026-11-24", "2026-11-24T00:00:00+08:00"),
    ("2026/11/24", "2026-11-24T00:00:00+08:00"),
    ("2026/1/5 9:05", "2026-01-05T09:05:00+08:00"),
    ("2026年11月24日", "2026-11-24T00:00:00+08:00"),
    ("2026年1月5日", "2026-01-05T00:00:00+08:00"),
    ("2026年11月24日 10时05分", "2026-11-24T10:05:00+08:00"),
    ("2026年11月24日 10时05分30秒", "2026-11-24T10:05:30+08:00"),
    ("2026年11月24日10点05分", "2026-11-24T10:05:00+08:00"),
    ("2026年11月24日 10:05", "2026-11-24T10:05:00+08:00"),
    (" 2026-11-24 10:00:00.250 ", "2026-11-24T10:00:00.250000+08:00"),
]


@pytest.mark.parametrize(("text", "expected"), PARSE_EXAMPLES)
def test_parse_datetime_reads_common_formats(text: str, expected: str) -> None:
    assert render(f"{{{{ {text!r}|parse_datetime }}}}") == expected


def test_parse_datetime_reads_epoch_seconds() -> None:
    assert render("{{ 1764000000|parse_datetime }}") == "2025-11-25T00:00:00+08:00"
    assert render("{{ 0|parse_datetime(tz='UTC') }}") == "1970-01-01T00:00:00+00:00"
    assert dates.parse_datetime(filters.to_decimal("1.5"), "UTC") == ("1970-01-01T00:00:01.500000+00:00")


def test_naive_input_takes_the_given_zone() -> None:
    assert render("{{ '2026-11-24 10:00'|parse_datetime(tz='Europe/Berlin') }}") == ("2026-11-24T10:00:00+01:00")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ '2026-11-24T02:00:00Z'|to_timezone }}", "2026-11-24T10:00:00+08:00"),
        ("{{ '2026-11-24T10:00:00+08:00'|to_timezone('UTC') }}", "2026-11-24T02:00:00+00:00"),
        ("{{ '2026-11-24T02:00:00Z'|format_datetime }}", "2026-11-24 10:00:00"),
        ("{{ '2026-11-24T02:00:00Z'|format_datetime('%Y/%m/%d') }}", "2026/11/24"),
        ("{{ '2026-11-24T02:00:00Z'|format_datetime('%H:%M', tz='UTC') }}", "02:00"),
        ("{{ '2026-11-24T02:00:00Z'|format_datetime('%Y年%m月%d日') }}", "2026年11月24日"),
        ("{{ '2026-11-24T02:00:00Z'|format_date_cn }}", "2026年11月24日"),
        ("{{ '2026-01-05'|format_date_cn }}", "2026年1月5日"),
        ("{{ '2026-11-23T20:00:00Z'|format_date_cn }}", "2026年11月24日"),
        ("{{ '2026-11-23T20:00:00Z'|format_date_cn(tz='UTC') }}", "2026年11月23日"),
    ],
)
def test_format_and_convert(source: str, expected: str) -> None:
    assert render(source) == expected


@pytest.mark.parametrize(
    ("source", "text"),
    [
        ("{{ 'tomorrow'|parse_datetime }}", "not a date/time"),
        ("{{ '2026-13-01'|parse_datetime }}", "not a date/time"),
        ("{{ '2026年2月30日'|parse_datetime }}", "not a date/time"),
        ("{{ '1764000000'|parse_datetime }}", "not a date/time"),
        ("{{ '2026-11-24'|parse_datetime(tz='Mars/Olympus') }}", "unknown time zone"),
        ("{{ '2026-11-24'|parse_datetime(tz='../../etc/passwd') }}", "unknown time zone"),
        ("{{ '2026-11-24'|to_timezone('/etc/localtime') }}", "unknown time zone"),
        ("{{ (10 ** 20)|parse_datetime }}", "out of range"),
    ],
)
def test_bad_dates_and_zones_are_value_errors(source: str, text: str) -> None:
    with pytest.raises(errors.ExpressionError) as caught:
        render(source)
    assert caught.value.code == "expression.value"
    assert text in str(caught.value)


@pytest.mark.parametrize("source", ["{{ none|parse_datetime }}", "{{ [1]|format_date_cn }}"])
def test_non_dates_are_type_errors(source: str) -> None:
    with pytest.raises(errors.ExpressionError) as caught:
        render(source)
    assert caught.value.code == "expression.type"


@pytest.fixture
def fixed_clock() -> Iterator[datetime]:
    instant = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    clock.set_fixed(instant)
    yield instant
    clock.use_real()


def test_now_reads_the_engine_clock(fixed_clock: datetime) -> None:
    assert render("{{ now() }}") == "2026-11-24T10:00:00+08:00"
    assert render("{{ now('UTC') }}") == "2026-11-24T02:00:00+00:00"
    assert render("{{ now()|format_date_cn }}") == "2026年11月24日"


zones = st.sampled_from(["Asia/Shanghai", "UTC", "Asia/Tokyo", "Asia/Kolkata"])
instants = st.datetimes(min_value=datetime(1992, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)).map(
    lambda moment: moment.replace(microsecond=0)
)


@given(instants, zones)
def test_format_then_parse_round_trips_the_instant(moment: datetime, zone: str) -> None:
    text = dates.format_datetime(moment.isoformat(), tz=zone)
    parsed = dates.parse_datetime(text, tz=zone)
    assert datetime.fromisoformat(parsed) == moment
    assert datetime.fromisoformat(parsed).utcoffset() == moment.astimezone(ZoneInfo(zone)).utcoffset()


@given(instants, zones)
def test_parse_keeps_the_instant_of_iso_text(moment: datetime, zone: str) -> None:
    written = moment.astimezone(ZoneInfo(zone)).isoformat()
    assert dates.parse_datetime(written) == written
    assert datetime.fromisoformat(dates.to_timezone(written, "UTC")) == moment


@given(instants)
def test_chinese_date_round_trips_the_day(moment: datetime) -> None:
    day = dates.format_date_cn(moment.isoformat())
    parsed = datetime.fromisoformat(dates.parse_datetime(day))
    local = moment.astimezone(ZoneInfo("Asia/Shanghai"))
    assert parsed.date() == local.date()
    assert parsed - local.replace(hour=0, minute=0, second=0) == timedelta(0)


@given(st.integers(min_value=0, max_value=4_102_444_800))
def test_epoch_seconds_match_python(seconds: int) -> None:
    expected = datetime.fromtimestamp(seconds, ZoneInfo("Asia/Shanghai")).isoformat()
    assert dates.parse_datetime(seconds) == expected
