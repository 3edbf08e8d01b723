"""The shadow report's field diff: exactly the request fields that differ, with both values and their types."""

from __future__ import annotations

from decimal import Decimal

from seamflow import lifecycle


def test_only_the_changed_fields_are_listed_with_their_paths() -> None:
    live = {"path": "/orders", "json": {"customer": {"mobile": "+86 138 0013 8000", "name": "张伟"}, "lines": [1, 2]}}
    candidate = {"path": "/orders", "json": {"customer": {"mobile": "13800138000", "name": "张伟"}, "lines": [1, 3]}}
    assert lifecycle.diff_requests(live, candidate) == [
        {"field": "json.customer.mobile", "live": "+86 138 0013 8000", "candidate": "13800138000"},
        {"field": "json.lines[1]", "live": 2, "candidate": 3},
    ]


def test_a_field_on_one_side_only_and_a_changed_type_are_changes() -> None:
    live = {"amount": "19.90", "remark": "加急"}
    candidate = {"amount": Decimal("19.90"), "channel": "web"}
    assert lifecycle.diff_requests(live, candidate) == [
        {"field": "amount", "live": "19.90", "candidate": Decimal("19.90")},
        {"field": "remark", "live": "加急", "candidate": None},
        {"field": "channel", "live": None, "candidate": "web"},
    ]


def test_equal_requests_have_no_changes_and_lists_of_other_lengths_differ_whole() -> None:
    same = {"json": {"a": [1, {"b": None}]}}
    assert lifecycle.diff_requests(same, {"json": {"a": [1, {"b": None}]}}) == []
    assert lifecycle.diff_requests({"a": [1]}, {"a": [1, 2]}) == [{"field": "a", "live": [1], "candidate": [1, 2]}]
