"""Reading flow and connections files: YAML 1.2 scalars, positions, refusals, versions."""

from __future__ import annotations

from pathlib import Path

import pytest

from seamflow import errors
from seamflow.flows import load, spec


def problems_of(text: str | bytes, filename: str = "f.yaml") -> list[str]:
    with pytest.raises(errors.FlowInvalid) as caught:
        load.parse_yaml(text, filename)
    return [str(problem) for problem in caught.value.problems]


def test_scalars_keep_their_text_unless_plainly_numbers_booleans_or_null() -> None:
    data, _ = load.parse_yaml(
        "a: yes\nb: on\nc: 12:30\nd: '0086'\ne: 0086\nf: 2024-01-01\ng: 19.90\nh: 42\n"
        "i: true\nj: ~\nk: null\nl: 1e3\nm: -0\nn: 0x1F\no: .inf\np: NO\nq:\n",
        "f.yaml",
    )
    assert data == {
        "a": "yes",
        "b": "on",
        "c": "12:30",
        "d": "0086",
        "e": "0086",
        "f": "2024-01-01",
        "g": 19.90,
        "h": 42,
        "i": True,
        "j": None,
        "k": None,
        "l": 1000.0,
        "m": 0,
        "n": "0x1F",
        "o": ".inf",
        "p": "NO",
        "q": None,
    }


def test_mapping_keys_are_always_text() -> None:
    data, _ = load.parse_yaml("200: ok\ntrue: yes\n1.5: x\n", "f.yaml")
    assert data == {"200": "ok", "true": "yes", "1.5": "x"}


def test_source_map_gives_line_and_column_of_values_and_keys() -> None:
    _, source_map = load.parse_yaml(
        "id: x\nsteps:\n  - id: a\n    retry: {attempts: 3}\n    with: {Content-Type: j}\n",
        "f.yaml",
    )
    assert source_map.values[("steps", 0, "retry", "attempts")] == (4, 23)
    assert source_map.keys[("steps", 0, "retry")] == (4, 5)
    where = source_map.locate(("steps", 0, "with", "Content-Type"))
    assert str(where) == 'f.yaml:5:26 steps[0].with["Content-Type"]'
    assert str(source_map.locate(("steps", 0, "missing", "deeper"))) == ("f.yaml:3:5 steps[0].missing.deeper")


def test_explicit_standard_tags_are_accepted() -> None:
    data, _ = load.parse_yaml("a: !!str 0123\nb: !!int '12'\nc: !!float 1\nd: !!bool true\n", "f")
    assert data == {"a": "0123", "b": 12, "c": 1.0, "d": True}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "a: !!binary aGk=\n",
            "f.yaml:1:4 a: tag !!binary is not allowed; "
            "expected plain YAML: text, numbers, true/false, null, lists and mappings",
        ),
        (
            "a: !!python/object:os.system {}\n",
            "f.yaml:1:4 a: tag !!python/object:os.system is not allowed; "
            "expected plain YAML: text, numbers, true/false, null, lists and mappings",
        ),
        ("a: !!int twelve\n", "f.yaml:1:4 a: got 'twelve'; expected a finite int"),
        ("a: !!bool maybe\n", "f.yaml:1:4 a: got 'maybe'; expected true or false"),
        ("a: 1e999\n", "f.yaml:1:4 a: got '1e999'; expected a finite float"),
        ("? [a, b]\n: c\n", "f.yaml:1:3: a list or mapping used as a key; expected a text key"),
        (
            "a: &x 1\nb: *x\n",
            "f.yaml:2:4: aliases (*name) are not allowed; expected each value written out",
        ),
        (
            "a: 1\n---\nb: 2\n",
            "f.yaml:2:1: a second document (after ---): a flow file holds one flow; expected one flow per file",
        ),
        (
            "a: \x07\n",
            "f.yaml:1:4: character U+0007 is not allowed in YAML; expected printable text",
        ),
        ("[" * 150, "f.yaml:1:101: nesting is too deep; expected at most 100 levels"),
    ],
)
def test_yaml_that_a_flow_file_must_not_contain_is_refused(text: str, expected: str) -> None:
    assert problems_of(text) == [expected]


def test_every_duplicate_key_is_reported() -> None:
    assert problems_of("a: 1\nb: 2\na: 3\nc: {x: 1, x: 2}\n") == [
        "f.yaml:3:1 a: duplicate key 'a' (first at line 1:1); expected each key once in a mapping",
        "f.yaml:4:11 c.x: duplicate key 'x' (first at line 4:5); expected each key once in a mapping",
    ]


def test_utf8_byte_order_mark_is_accepted() -> None:
    data, _ = load.parse_yaml("\ufeffid: x\n".encode(), "f.yaml")
    assert data == {"id": "x"}


def test_flow_version_is_a_content_hash() -> None:
    assert load.flow_version(b"id: x\n") == load.flow_version(b"id: x\n")
    assert load.flow_version(b"id: x\n") != load.flow_version(b"id: y\n")
    assert len(load.flow_version(b"")) == 16
    assert load.flow_version(b"") == "e3b0c44298fc1c14"


def test_load_flow_file_checks_the_shape_and_returns_the_spec(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text("id: x\ntrigger: {manual: {}}\nsteps:\n  - {id: a, transform: 1}\n")
    flow, source_map = load.load_flow_file(path)
    assert isinstance(flow, spec.Flow)
    assert source_map.file == str(path)
    assert source_map.values[("steps", 0, "transform")] == (4, 24)


def test_load_flow_file_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(errors.FlowInvalid) as caught:
        load.load_flow_file(tmp_path / "nope.yaml")
    assert str(caught.value) == f"{tmp_path / 'nope.yaml'}: cannot read the file: No such file or directory"


def test_empty_flow_file_is_reported() -> None:
    with pytest.raises(errors.FlowInvalid) as caught:
        load.load_flow_text("# nothing yet\n", "f.yaml")
    assert str(caught.value) == "f.yaml:1:1: the file is empty; expected a flow with id, trigger and steps"


def test_flow_that_is_not_a_mapping_is_reported() -> None:
    with pytest.raises(errors.FlowInvalid) as caught:
        load.load_flow_text("- id: x\n", "f.yaml")
    assert str(caught.value) == "f.yaml:1:1: got [{'id': 'x'}]; expected a mapping"


CONNECTIONS = """\
# connections.yaml
sink:
  connector: http            # required: the connector kind
  base_url: http://127.0.0.1:8080
  auth: {bearer: "{{ secrets.sink_token }}"}
  concurrency: 16            # optional: max calls in flight
  timeout: 10s               # optional
"""


def test_connections_file_gives_raw_settings_and_positions() -> None:
    connections, source_map = load.load_connections_text(CONNECTIONS, "connections.yaml")
    assert connections == {
        "sink": {
            "connector": "http",
            "base_url": "http://127.0.0.1:8080",
            "auth": {"bearer": "{{ secrets.sink_token }}"},
            "concurrency": 16,
            "timeout": "10s",
        }
    }
    assert source_map.values[("sink", "connector")] == (3, 14)


def test_empty_connections_file_has_no_connections() -> None:
    assert load.load_connections_text("", "connections.yaml")[0] == {}


def test_every_problem_of_a_connections_file_is_reported() -> None:
    text = (
        "Sink: {connector: http}\n"
        "erp: {base_url: x}\n"
        "crm: {connector: http, concurrency: 0, timeout: soon}\n"
        "mail: smtp\n"
    )
    with pytest.raises(errors.FlowInvalid) as caught:
        load.load_connections_text(text, "connections.yaml")
    assert [str(p) for p in caught.value.problems] == [
        "connections.yaml:1:1 Sink: got connection name 'Sink'; expected lowercase letters, digits and _",
        "connections.yaml:2:6 erp: missing field 'connector'; expected the connector kind, e.g. http",
        "connections.yaml:3:37 crm.concurrency: got 0; expected an integer from 1 to 10000",
        "connections.yaml:3:49 crm.timeout: got 'soon'; expected a duration such as 30s, 5m, 2h or 3d",
        "connections.yaml:4:7 mail: got 'smtp'; expected a mapping",
    ]


def test_connections_file_that_is_not_a_mapping_is_reported() -> None:
    with pytest.raises(errors.FlowInvalid) as caught:
        load.load_connections_text("- sink\n", "connections.yaml")
    assert str(caught.value) == "connections.yaml:1:1: got ['sink']; expected a mapping of connection names"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "id: a\nsteps:\n  - id: a\n    transform: total: 1\n",
            "f.yaml:4:21: a ': ' inside a value: YAML reads it as the start of a mapping;"
            " expected the value in quotes, e.g. transform: 'a: b'",
        ),
        ("id: a\n\ttrigger: x\n", "f.yaml:2:1: a tab character: YAML indents with spaces only; expected spaces"),
        ("id: 'abc\ntrigger: x\n", "f.yaml:3:1: the quote opened at 1:5 is never closed; expected a closing quote"),
        ("steps: [a, b\nid: x\n", "f.yaml:2:3: the [ opened at 1:8 is not closed before this point"),
        (
            "trigger:\n  webhook:\n    path: x\n   mode: sync\n",
            "f.yaml:4:4: this line is indented differently from the lines of its block (which starts at 2:3)",
        ),
        ("id: a\ntrigger\nsteps: 1\n", "f.yaml:3:1: the line at 2:1 has no ':' after its key; expected key: value"),
    ],
    ids=["colon-in-value", "tab", "open-quote", "open-bracket", "indentation", "no-colon"],
)
def test_yaml_syntax_errors_say_in_plain_words_what_is_wrong(text: str, expected: str) -> None:
    with pytest.raises(errors.FlowInvalid) as caught:
        load.parse_yaml(text, "f.yaml")
    message = str(caught.value)
    assert message.startswith(expected)
    assert "<" not in message and "expected valid YAML" not in message and not message.endswith("expected ")
