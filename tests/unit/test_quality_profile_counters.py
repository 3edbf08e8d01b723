"""The patterns of a column are those `str.translate` finds for each text, however they are found."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from seamflow.quality import profile

TEXTS = st.lists(st.one_of(st.text(max_size=8), st.text(alphabet="aZ9 -,.\n元１王", max_size=8)), max_size=30)


@settings(max_examples=300, deadline=None)
@given(texts=TEXTS)
def test_patterns_of_a_column_are_those_of_each_text_translated(texts: list[str]) -> None:
    assert profile._shapes(texts) == [text.translate(profile._PATTERN) for text in texts]
