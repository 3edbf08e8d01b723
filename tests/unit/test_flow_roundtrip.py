"""A flow changed as data is written back into its file like an engineer would: comments, key
order, quoting and line breaks outside the change are kept byte for byte."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from seamflow import errors
from seamflow.flows import load, roundtrip

EXAMPLE = Path(__file__).parents[2] / "examples" / "lead-to-cash" / "flows" / "contract-signed.yaml"


def _data(text: str) -> dict:  # type: ignore[type-arg]
    data, _ = load.parse_yaml(text, "flow.yaml")
    assert isinstance(data, dict)
    return data


def _changed_lines(before: str, after: str) -> list[str]:
    return [line for line in roundtrip.diff_sources(before, after).splitlines() if line[:1] in "+-"][2:]


def test_an_unchanged_flow_is_written_back_byte_for_byte() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert roundtrip.apply_to_source(text, _data(text)) == text


def test_one_changed_value_changes_one_line_and_keeps_its_flow_style_mapping() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    data = _data(text)
    data["steps"][0]["retry"]["attempts"] = 9
    after = roundtrip.apply_to_source(text, data)
    assert _changed_lines(text, after) == [
        "-    retry: {attempts: 8, max_delay: 30s}",
        "+    retry: {attempts: 9, max_delay: 30s}",
    ]
    assert _data(after) == data


def test_a_change_next_to_a_wrapped_mapping_rewrites_at_most_that_mapping() -> None:
    """ruamel writes a `{…}` mapping on one line; the file's own wrapping survives everywhere
    except in a wrapped mapping that touches the changed line (here `customer:` below `contract:`)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    data = _data(text)
    data["steps"][6]["emit"]["objects"]["contract"]["id"] = "{{ event.body.data.contract_no }}"
    after = roundtrip.apply_to_source(text, data)
    removed = [line[1:].strip() for line in _changed_lines(text, after) if line.startswith("-")]
    assert [line.split(":")[0] for line in removed] == ["contract", "customer", "region"]
    assert _data(after) == data
    far = _data(text)
    far["steps"][6]["emit"]["activity"] = "Contract signed (CRM)"
    assert _changed_lines(text, roundtrip.apply_to_source(text, far)) == [
        "-      activity: Contract signed",
        "+      activity: Contract signed (CRM)",
    ]


def test_a_new_step_is_inserted_where_it_belongs_and_comments_stay_with_their_steps() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    data = _data(text)
    data["steps"].insert(2, {"id": "log", "transform": {"contract": "{{ event.body.data.number }}"}})
    after = roundtrip.apply_to_source(text, data)
    assert _changed_lines(text, after) == [
        "+  - id: log",
        "+    transform:",
        '+      contract: "{{ event.body.data.number }}"',
    ]
    assert "# business events for process insight" in after and _data(after) == data


def test_removing_a_step_and_a_key_removes_only_their_lines() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    data = _data(text)
    del data["steps"][1]["retry"]
    removed = data["steps"].pop(4)
    assert removed["id"] == "lines"
    after = roundtrip.apply_to_source(text, data)
    assert all(line.startswith("-") for line in _changed_lines(text, after))
    assert _data(after) == data


def test_a_changed_text_keeps_its_quotes_and_types_keep_their_type() -> None:
    text = "id: a\ntrigger: {manual: {}}\nsteps:\n  - id: x\n    transform: {n: \"{{ 1 }}\", code: '0086', k: 1}\n"
    data = copy.deepcopy(_data(text))
    data["steps"][0]["transform"] |= {"n": "{{ 2 }}", "code": "0087", "k": "1"}
    after = roundtrip.apply_to_source(text, data)
    assert after.endswith("transform: {n: \"{{ 2 }}\", code: '0087', k: '1'}\n")
    assert _data(after)["steps"][0]["transform"] == {"n": "{{ 2 }}", "code": "0087", "k": "1"}


def test_a_new_flow_is_written_in_the_usual_key_order_with_double_quoted_templates() -> None:
    data = {
        "steps": [{"id": "order", "transform": {"no": "{{ event.body.no }}", "note": "第一行\n第二行\n"}}],
        "trigger": {"manual": {}},
        "id": "order-to-erp",
    }
    assert roundtrip.new_source(data) == (
        "id: order-to-erp\ntrigger:\n  manual: {}\nsteps:\n  - id: order\n    transform:\n"
        '      no: "{{ event.body.no }}"\n      note: |\n        第一行\n        第二行\n'
    )


def test_a_file_that_is_not_yaml_is_a_problem_with_its_position() -> None:
    with pytest.raises(errors.FlowInvalid) as caught:
        roundtrip.apply_to_source("id: a\nsteps: [\n", {"id": "a"}, filename="flows/a.yaml")
    assert str(caught.value.problems[0].where).startswith("flows/a.yaml:3:")


def test_the_etag_is_the_flow_version_of_the_text() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert roundtrip.source_etag(text) == f'"{load.flow_version(text.encode())}"'
