"""Resolution files: a broken one is refused with file:line:column and what was expected; the
cluster and unified-ID rules on their own (pure logic)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from seamflow import errors, identity

GOOD = """\
entity: member
fields: {name: name, mobile: phone}
blocking: [[mobile]]
comparisons:
  name: {exact: {m: 0.8, u: 0.001}, pinyin: {m: 0.1, u: 0.01}, similar: {m: 0.05, u: 0.05},
         different: {m: 0.05, u: 0.94}}
"""


def test_a_good_file_is_read() -> None:
    found = identity.parse_resolution(GOOD, "identity/members.yaml")

    assert found.entity == "member" and found.fields["mobile"] is identity.FieldKind.PHONE


def test_a_misspelt_key_is_refused_at_its_line_and_column() -> None:
    text = GOOD.replace("blocking:", "blockin:")

    with pytest.raises(errors.FlowInvalid) as refused:
        identity.parse_resolution(text, "identity/members.yaml")

    assert refused.value.code == "identity.spec_invalid"
    assert "identity/members.yaml:3:1" in str(refused.value)


def test_an_unknown_field_kind_names_the_kinds_expected() -> None:
    with pytest.raises(errors.FlowInvalid) as refused:
        identity.parse_resolution(GOOD.replace("mobile: phone", "mobile: fone"), "m.yaml")

    assert "m.yaml:2:" in str(refused.value) and "'phone'" in str(refused.value)


def test_missing_levels_and_unknown_blocking_keys_are_named() -> None:
    text = GOOD.replace("[[mobile]]", "[[mobile.tail5]]").replace("similar: {m: 0.05, u: 0.05},", "")

    with pytest.raises(errors.FlowInvalid) as refused:
        identity.parse_resolution(text, "m.yaml")

    message = str(refused.value)
    assert "blocking key 'mobile.tail5' is not one of mobile, mobile.tail4, mobile.head7" in message
    assert "comparisons.name must give the levels exact, pinyin, similar, different" in message


def test_yaml_syntax_errors_have_a_position() -> None:
    with pytest.raises(errors.FlowInvalid) as refused:
        identity.parse_resolution("entity: member\nfields: {name: name\n", "m.yaml")

    assert re.search(r"m\.yaml:\d+:\d+", str(refused.value))


def test_a_merge_keeps_the_older_id_and_a_split_leaves_the_larger_part_its_id() -> None:
    clusters = identity.connect(5, [(0, 1), (1, 2), (3, 4)])
    previous = ["M00000002", "M00000002", "M00000001", "M00000002", None]

    ids, next_number = identity.assign_ids(clusters, previous, "M", 3)

    assert ids[:3] == ["M00000001"] * 3  # 0,1,2 merged: the older M00000001 stays
    assert ids[3:] == ["M00000002", "M00000002"]  # M00000002 is free again for 3,4
    assert next_number == 3


def test_a_separation_keeps_two_groups_apart_whatever_links_say() -> None:
    clusters = identity.connect(4, [(0, 1), (1, 2), (2, 3)], [identity.Separation([0], [3])])

    assert clusters[0] != clusters[3]
    assert len(set(clusters.tolist())) == 2


def test_pinyin_folds_traditional_simplified_and_latin_spellings() -> None:
    preparer = identity.Preparer(identity.parse_resolution(GOOD, "m.yaml"))

    forms = [
        preparer.prepare("s", str(i), {"name": n}).forms["name.pinyin"]
        for i, n in enumerate(["陳偉東", "陈伟东", "Chen Weidong"])
    ]

    assert forms == ["chenweidong"] * 3
    assert np.array_equal(identity.connect(1, []), np.array([0]))
