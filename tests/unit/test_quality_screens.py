"""A column screen accepts a text only when the type's validator accepts its clean form and gives the
same value, and it accepts the common shapes of the customer export."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from seamflow import quality
from seamflow.quality import screens
from seamflow.quality.text import clean_text
from tests.support import customers_cn

ALPHABETS = {
    "mobile_cn": "0123456789０１２３４５６７８９ +-86",
    "phone_cn": "0123456789０１２３４５６７８９ +-86",
    "resident_id": "0123456789Xx ",
    "amount": "0123456789,.¥￥元- ",
}
SHAPES = {
    "mobile_cn": ["13800138000", "138-0013-8000", "+86 138 0013 8000", "008613800138000", "１３８００１３８０００"],
    "phone_cn": ["+8613800138000", "0086 138 0013 8000", "12345678901", "138 0013 8000 "],
    "resident_id": ["11010519491231002X", "110105194912310021", "11010519491231002x"],
    "amount": ["1288.50", "-5", "￥1288.50", "1,288.50元", "¥1,234,567.8", "1,28.50", "0.001"],
}


def _agrees(kind: str, texts: list[str]) -> list[str]:
    """The texts the screen accepts, each checked against the validator's verdict on its clean form."""
    positions, accepted, values = screens.SCREENS[kind](list(range(len(texts))), texts)
    assert [texts[at] for at in positions] == accepted
    validator = quality.VALIDATORS[kind]
    for text, value in zip(accepted, values, strict=True):
        expected = validator(clean_text(text))
        assert value == expected and type(value) is type(expected), (text, value, expected)
        assert str(value) == str(expected)
    return accepted


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(sorted(ALPHABETS)), data=st.data())
def test_a_screen_accepts_only_what_the_validator_accepts_with_the_same_value(kind: str, data: st.DataObject) -> None:
    texts = data.draw(
        st.lists(st.one_of(st.text(alphabet=ALPHABETS[kind], max_size=20), st.sampled_from(SHAPES[kind])), max_size=8)
    )
    quality.VALIDATORS["resident_id"]("11010519491231002X")  # its birth date and region are now known
    _agrees(kind, texts)


def test_the_screens_accept_the_good_cells_of_the_customer_export() -> None:
    rows = list(customers_cn.rows(2000))
    for row in rows:  # the validator has seen each number once: birth dates and regions are known
        try:
            quality.VALIDATORS["resident_id"](row[3])
        except ValueError:
            pass
    good = [row for number, row in enumerate(rows, 1) if not customers_cn.is_bad(number)]
    assert len(_agrees("mobile_cn", [row[2] for row in good])) == len(good)
    assert len(_agrees("resident_id", [row[3] for row in good])) == len(good)
    assert len(_agrees("amount", [row[4] for row in good])) == len(good)
    bad_ids = [row[3] for number, row in enumerate(rows, 1) if number % 25 == 3]
    assert _agrees("resident_id", bad_ids) == []


def test_text_of_no_type_is_accepted_when_it_is_clean_and_not_empty() -> None:
    texts = ["M00000001", "", " 王伟", "王\u3000伟", "ＡＢＣ", "王伟"]
    positions, accepted, values = screens.screen_text(list(range(len(texts))), texts)
    assert positions == [0, 5] and accepted == values == ["M00000001", "王伟"]
