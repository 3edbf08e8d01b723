"""The profile's column counters give what their plain forms give: patterns as `str.translate` finds
them, pruned counters as `Counter.most_common` orders them (ties in the order they came)."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from seamflow.quality import profile

TEXTS = st.lists(st.one_of(st.text(max_size=8), st.text(alphabet="aZ9 -,.\n元１王", max_size=8)), max_size=30)


@settings(max_examples=300, deadline=None)
@given(texts=TEXTS)
def test_patterns_of_a_column_are_those_of_each_text_translated(texts: list[str]) -> None:
    assert profile._shapes(texts) == [text.translate(profile._PATTERN) for text in texts]


@settings(max_examples=200, deadline=None)
@given(counts=st.lists(st.tuples(st.text(max_size=3), st.integers(1, 4)), max_size=40), keep=st.integers(1, 12))
def test_a_pruned_counter_keeps_what_most_common_keeps_in_its_order(counts: list[tuple[str, int]], keep: int) -> None:
    counter: Counter[str] = Counter()
    for text, times in counts:
        counter[text] += times
    saved, profile._COUNTER_KEEP = profile._COUNTER_KEEP, keep
    try:
        pruned = profile._pruned(counter)
    finally:
        profile._COUNTER_KEEP = saved
    assert list(pruned.items()) == counter.most_common(keep)


def test_a_halved_hash_sample_keeps_the_hashes_with_zero_low_bits() -> None:
    hashes = set(range(-50, 50))
    assert profile._halved(hashes, 0b11) == {h for h in hashes if not h & 0b11}
