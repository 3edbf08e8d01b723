"""The validators for Chinese business data against tables of valid and invalid values, each table
checked against the published algorithm (written out here, independently of the code under test),
and property tests: every normaliser is idempotent and fails only with ValueError, whatever the text.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seamflow import quality

V = quality.VALIDATORS

# -- the published algorithms, written from the standards ---------------------------------------


def gb11643_check(body: str) -> str:
    """GB 11643-1999: weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2; the sum mod 11 picks from 1 0 X 9 8 7 6 5 4 3 2."""
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


def gb32100_check(body: str) -> str:
    """GB 32100-2015: 31 characters, weights 3^i mod 31, check = 31 - sum mod 31 (31 -> 0)."""
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    weights = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
    total = sum(alphabet.index(c) * w for c, w in zip(body, weights, strict=True))
    return alphabet[(31 - total % 31) % 31]


def luhn_check(body: str) -> str:
    """ISO/IEC 7812: the check digit of `body`; every second digit from the right of the full number is doubled."""
    total = 0
    for i, digit in enumerate(reversed(body)):
        n = int(digit) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return str((10 - total % 10) % 10)


# -- resident identity number -------------------------------------------------------------------

RESIDENT_BODIES = ["11010519491231002", "31010419850615123", "11010820000229456", "12010119790101876"]


@pytest.mark.parametrize("body", RESIDENT_BODIES)
def test_a_resident_id_with_the_gb11643_check_digit_is_valid_and_every_other_digit_is_not(body: str) -> None:
    right = gb11643_check(body)
    assert V["resident_id"](body + right) == body + right
    for wrong in "0123456789X":
        if wrong != right:
            with pytest.raises(ValueError, match="check digit"):
                V["resident_id"](body + wrong)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1101051949123100", "16 characters"),
        ("11010519491231002XX", "19 characters"),
        ("1101051949123A002X", "17 digits followed by a digit or X"),
        ("110105" + "20230230" + "123", "check digit"),  # completed below with its right check digit
        ("990000" + "19900101" + "123", "check digit"),
    ],
)
def test_a_resident_id_with_a_wrong_shape_date_or_region_is_refused_with_its_reason(text: str, reason: str) -> None:
    if len(text) == 17:  # a right check digit, so the date or the region is what fails
        text += gb11643_check(text)
        reason = "birth date" if text.startswith("110105") else "region code"
    with pytest.raises(ValueError, match=reason):
        V["resident_id"](text)


def test_a_resident_id_is_stored_with_an_upper_case_x_and_without_spaces() -> None:
    assert V["resident_id"]("110105 19491231 002x") == "11010519491231002X"
    assert V["resident_id"]("１１０１０５１９４９１２３１００２Ｘ") == "11010519491231002X"


# -- unified social credit code -----------------------------------------------------------------

USCC_BODIES = ["91110000600037341", "91350211M000100Y4", "91310115MA1H7B9K7", "12100000400000624"]


@pytest.mark.parametrize("body", USCC_BODIES)
def test_a_uscc_with_the_gb32100_check_character_is_valid_and_others_are_not(body: str) -> None:
    right = gb32100_check(body)
    assert V["uscc"](body.lower() + right) == body + right
    for wrong in "0AX":
        if wrong != right:
            with pytest.raises(ValueError, match="check character"):
                V["uscc"](body + wrong)


@pytest.mark.parametrize("text", ["9111000060003734", "91110000600037341LL", "9111000060003734IO", "91110000-6000373"])
def test_a_uscc_of_the_wrong_length_or_alphabet_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        V["uscc"](text)


# -- bank card, postcode ------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["622202020011223344", "621700123456789012", "436742000000000", "62258800112233445"])
def test_a_bank_card_with_the_luhn_check_digit_is_valid_and_others_are_not(body: str) -> None:
    right = luhn_check(body)
    assert V["bank_card"](f"{body[:4]} {body[4:]}{right}") == body + right
    wrong = str((int(right) + 1) % 10)
    with pytest.raises(ValueError, match="Luhn"):
        V["bank_card"](body + wrong)


@pytest.mark.parametrize(("text", "expected"), [("100020", "100020"), ("518000", "518000"), ("２００００１", "200001")])
def test_a_six_digit_postcode_is_valid(text: str, expected: str) -> None:
    assert V["postcode"](text) == expected


@pytest.mark.parametrize("text", ["10002", "1000200", "900000", "10a020"])
def test_a_postcode_that_is_not_six_digits_from_0_to_8_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="postcode"):
        V["postcode"](text)


# -- phones --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "13800138000",
        "138-0013-8000",
        "+86 138 0013 8000",
        "0086 13800138000",
        "(+86)13800138000",
        "１３８００１３８０００",
        "86 13800138000",
        "138 0013 8000",
    ],
)
def test_a_mobile_typed_five_ways_is_one_e164_number(text: str) -> None:
    assert V["mobile_cn"](text) == "+8613800138000"
    assert V["phone_cn"](text) == "+8613800138000"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("010-65529988", "+861065529988"),
        ("(021)64370000", "+862164370000"),
        ("0755 8376 5566", "+8675583765566"),
        ("+86 10 6552 9988", "+861065529988"),
    ],
)
def test_a_landline_with_its_area_code_is_e164(text: str, expected: str) -> None:
    assert V["landline_cn"](text) == expected
    assert V["phone_cn"](text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "12345678901",
        "1380013800",
        "138001380001",
        "+1 415 555 0100",
        "1234-13800",
        "电话13800138000",
        "010-6552",
        "010-65529988转123",
    ],
)
def test_text_that_is_no_mainland_number_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        V["phone_cn"](text)


def test_a_landline_is_not_a_mobile_and_a_mobile_is_not_a_landline() -> None:
    with pytest.raises(ValueError, match="mobile"):
        V["mobile_cn"]("010-65529988")
    with pytest.raises(ValueError, match="landline"):
        V["landline_cn"]("13800138000")


def test_e164_goes_back_to_the_national_form() -> None:
    from seamflow.quality import phones  # the module under test; a unit test of its own package

    assert phones.format_phone_cn("+8613800138000") == "138 0013 8000"
    assert phones.format_phone_cn("+861065529988") == "010 6552 9988"


# -- amounts, dates, regions, text --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,288.50元", "1288.50"),
        ("￥1288.5", "1288.50"),
        ("¥1,288.50", "1288.50"),
        ("RMB 1,288.50", "1288.50"),
        ("1288.50 CNY", "1288.50"),
        ("壹仟贰佰捌拾捌元伍角", "1288.50"),
        ("人民币壹万零伍元整", "10005.00"),
        ("一千二百八十八元五角三分", "1288.53"),
        ("1.2万", "12000.00"),
        ("伍角", "0.50"),
        ("-35.00", "-35.00"),
        ("贰拾亿元整", "2000000000.00"),
        ("１２８８．５０元", "1288.50"),
    ],
)
def test_amounts_in_figures_and_chinese_numerals_are_decimal_yuan(text: str, expected: str) -> None:
    value = V["amount"](text)
    assert isinstance(value, Decimal) and value == Decimal(expected) and str(value) == expected


@pytest.mark.parametrize("text", ["1.234元", "abc", "", "12,34", "壹仟元伍", "1288.50美元", "NaN"])
def test_text_that_is_no_amount_of_yuan_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        V["amount"](text)


@pytest.mark.parametrize(
    "text",
    [
        "2026年12月7日",
        "2026/12/7",
        "2026-12-07",
        "2026.12.07",
        "20261207",
        "二〇二六年十二月七日",
        "2026年12月7号",
        "2026-12-07T10:30:00+08:00",
        "2026-12-07 10:30",
    ],
)
def test_dates_in_chinese_and_iso_forms_are_one_date(text: str) -> None:
    assert V["date"](text) == "2026-12-07"


@pytest.mark.parametrize("text", ["2026-02-30", "07/12/2026", "2026年13月1日", "昨天", "2026-1"])
def test_text_that_is_no_date_or_an_ambiguous_one_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        V["date"](text)


def test_the_table_holds_the_34_provincial_level_divisions() -> None:
    from seamflow.quality import regions

    names = [official for official, _, _ in regions.PROVINCES]
    assert len(set(names)) == 34
    assert sum(name.endswith("省") for name in names) == 23
    assert sum(name.endswith("自治区") for name in names) == 5
    assert sum(name.endswith("特别行政区") for name in names) == 2
    for official, abbreviation, short in regions.PROVINCES:
        assert V["province"](abbreviation) == V["province"](short) == V["province"](official) == official


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("粤", "广东省"),
        ("广东", "广东省"),
        (" 广东省 ", "广东省"),
        ("内蒙", "内蒙古自治区"),
        ("广西", "广西壮族自治区"),
        ("上海", "上海市"),
    ],
)
def test_provinces_written_any_common_way_get_their_official_name(text: str, expected: str) -> None:
    assert V["province"](text) == expected


def test_cities_get_their_official_name_and_unknown_places_are_refused() -> None:
    assert V["city"]("深圳") == V["city"]("深圳市") == "深圳市"
    for text in ("火星省", "Gotham"):
        with pytest.raises(ValueError):
            V["province"](text)
    with pytest.raises(ValueError):
        V["city"]("哥谭")


def test_full_width_text_is_folded_and_whitespace_collapsed_but_chinese_punctuation_is_kept() -> None:
    assert V["string"]("　ＡＢＣ１２３\u200b  北京，朝阳区（望京）\t") == "ABC123 北京，朝阳区（望京）"


def test_resident_id_facts_give_birth_date_and_sex() -> None:
    from seamflow.quality import documents

    assert documents.resident_id_facts("11010519491231002X") == {
        "birth_date": "1949-12-31",
        "sex": "female",
        "region_code": "110105",
    }


# -- properties ---------------------------------------------------------------------------------

NORMALISERS = [
    "string",
    "amount",
    "date",
    "phone_cn",
    "mobile_cn",
    "landline_cn",
    "resident_id",
    "uscc",
    "bank_card",
    "postcode",
    "province",
    "city",
    "integer",
    "decimal",
    "email",
    "boolean",
]
TEXT = st.one_of(
    st.text(),
    st.text(alphabet="0123456789０１２３４５６７８９+-() .,元￥¥年月日号壹贰叁拾佰仟万亿零一二三十Xx省市"),
    st.from_regex(r"1[3-9]\d{9}", fullmatch=True),
    st.from_regex(r"\d{17}[\dX]", fullmatch=True),
)


@pytest.mark.parametrize("name", NORMALISERS)
@settings(max_examples=120, deadline=None)
@given(text=TEXT)
def test_every_normaliser_fails_only_with_a_reason_and_is_idempotent(name: str, text: str) -> None:
    try:
        once = V[name](text)
    except ValueError as exc:
        assert str(exc), "a refusal says why"
        return
    assert V[name](str(once)) == once


@settings(max_examples=120, deadline=None)
@given(text=st.text())
def test_cleanup_is_idempotent_on_any_string(text: str) -> None:
    cleaned = V["string"](text)
    assert V["string"](cleaned) == cleaned
    assert cleaned == cleaned.strip() and "  " not in cleaned


def test_the_date_of_an_iso_string_is_that_date() -> None:
    assert V["date"](date(2026, 12, 7).isoformat()) == "2026-12-07"
