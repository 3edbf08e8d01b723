"""Declarative connector files: the loader's problems at file:line:column, packs from entry points,
and `flow validate` knowing a declared connector's operations and input schemas."""

from __future__ import annotations

from pathlib import Path

import pytest

from seamflow import connectors, errors, flows

GOOD = """\
connector: acme_erp
title: 艾克米 ERP
base_url: "{{ config.base_url }}"
settings:
  base_url: {default: "https://erp.acme.cn/api"}
  api_key: {secret: true}
auth:
  api_key: {value: "{{ config.api_key }}", header: X-Api-Key}
operations:
  get_order:
    path: orders/{order_no}
    input: {type: object, required: [order_no], properties: {order_no: {type: string, pattern: "^SO-"}}}
  list_orders:
    path: orders
    query: {status: "{{ input.status }}"}
    input: {type: object, properties: {status: {enum: [open, shipped]}}}
    paginate: {style: page, items: data, size: 50}
"""

BROKEN = [
    (
        "pathh: orders/{order_no}",
        "11:5 operations.get_order.pathh: unknown field 'pathh'; did you mean 'path'?",
    ),
    ("method: FETCH\n    path: orders/{order_no}", "11:13 operations.get_order.method: got 'FETCH'"),
    ("connector: Acme-ERP", "1:12 connector: must be lowercase letters"),
    ('api_key: {value: "{{ config.api_key }}", header: X-Api-Key}', None),  # the unchanged file loads
    (
        'api_key: {value: "{{ config.api_key }}", query: k, header: X-Api-Key}',
        "8:12 auth.api_key: got fields value, query, header; expected header or query, not both",
    ),
    ("input: {type: object, required: [order_no]", "12:12 operations.get_order.input: must be a JSON Schema"),
    ("paginate: {style: page,", "17:23 operations.list_orders.paginate.style: got 'pages'"),
    ("secret: true}", "6:13 settings.api_key.secrett: unknown field 'secrett'; did you mean 'secret'?"),
    ("errors:", "9:9 errors: revoked needs auth: {token_endpoint: …} (the sign-in that can be renewed)"),
    ("config.api_kye", "8:20 auth.api_key.value: unknown setting 'api_kye'; did you mean 'api_key'?"),
    (
        "input.statuss",
        "15:21 operations.list_orders.query.status: unknown input 'statuss' of list_orders; did you mean 'status'?",
    ),
    (
        "secrets.erp_key",
        "8:20 auth.api_key.value: template {{ secrets.erp_key }} is not a name; expected {{ config.NAME }}",
    ),
]
EDITS = {
    0: ("path: orders/{order_no}", "pathh: orders/{order_no}"),
    1: ("    path: orders/{order_no}", "    method: FETCH\n    path: orders/{order_no}"),
    2: ("connector: acme_erp", "connector: Acme-ERP"),
    3: ("", ""),
    4: ("header: X-Api-Key}", "query: k, header: X-Api-Key}"),
    5: ("input: {type: object, required: [order_no]", "input: {type: array, required: [order_no]"),
    6: ("style: page,", "style: pages,"),
    7: ("{secret: true}", "{secrett: true}"),
    8: ("operations:\n", "errors: {code: errcode, revoked: [40014, 42001]}\noperations:\n"),
    9: ("config.api_key", "config.api_kye"),
    10: ("input.status", "input.statuss"),
    11: ("{{ config.api_key }}", "{{ secrets.erp_key }}"),
}


@pytest.mark.parametrize("case", range(len(BROKEN)))
def test_a_broken_connector_file_is_reported_at_its_position(case: int) -> None:
    old, new = EDITS[case]
    text = GOOD.replace(old, new, 1)
    expected = BROKEN[case][1]
    if expected is None:
        assert flows.connector_files.load_connector_text(text, "connectors/acme_erp.yaml").kind == "acme_erp"
        return
    with pytest.raises(errors.FlowInvalid) as invalid:
        flows.connector_files.load_connector_text(text, "connectors/acme_erp.yaml")
    assert f"connectors/acme_erp.yaml:{expected}" in str(invalid.value), str(invalid.value)


def test_a_yaml_mistake_in_a_connector_file_has_its_position() -> None:
    with pytest.raises(errors.FlowInvalid) as invalid:
        flows.connector_files.load_connector_text(GOOD.replace("  get_order:", "  get_order\n"), "c.yaml")
    assert str(invalid.value).startswith("c.yaml:12:9: ")


def test_the_schema_describes_the_file() -> None:
    schema = flows.connector_files.connector_file_schema()
    assert schema["title"] == "Seamflow declarative connector file"
    properties = schema["properties"]
    assert isinstance(properties, dict) and {"connector", "base_url", "auth", "operations", "errors"} <= set(properties)


def _project(root: Path, flow_with: str, action: str = "erp.get_order") -> Path:
    (root / "connectors").mkdir(parents=True)
    (root / "connectors" / "acme_erp.yaml").write_text(GOOD, encoding="utf-8")
    (root / "flows").mkdir()
    (root / "connections.yaml").write_text("erp:\n  connector: acme_erp\n  api_key: not-a-template-here\n")
    (root / "flows" / "order.yaml").write_text(
        f"id: order\ntrigger: {{manual: {{}}}}\nsteps:\n  - id: fetch\n    action: {action}\n    with: {flow_with}\n"
    )
    return root


def test_flow_validate_knows_the_operations_of_a_project_connector(tmp_path: Path) -> None:
    root = _project(tmp_path, "{order_no: SO-20261207-0042}", action="erp.get_ordr")
    _, problems = flows.validate.check_project(root / "flows", root / "connections.yaml")
    assert [str(p) for p in problems] == [
        f"{root}/flows/order.yaml:5:13 steps[0].action: unknown action 'get_ordr' of connection 'erp'"
        " (connector acme_erp); did you mean 'get_order'?; expected one of: get_order, list_orders"
    ]


def test_flow_validate_checks_literal_inputs_against_the_input_schema(tmp_path: Path) -> None:
    root = _project(tmp_path, "{order_no: PO-1}")
    _, problems = flows.validate.check_project(root / "flows", root / "connections.yaml")
    assert [str(p) for p in problems] == [
        f"{root}/flows/order.yaml:6:22 steps[0].with.order_no: erp.get_order: 'PO-1' does not match '^SO-';"
        " expected a value the operation's input schema allows"
    ]
    templated = _project(tmp_path / "t", "{order_no: '{{ event.body.no }}'}")
    assert flows.validate.check_project(templated / "flows", templated / "connections.yaml")[1] == []


PACK_FILE = GOOD.replace("acme_erp", "kingdee_pack_demo")


def test_a_pack_published_through_an_entry_point_is_discovered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real installed distribution: a dist-info folder with entry_points.txt on sys.path."""
    (tmp_path / "acme_pack.py").write_text(
        "from pathlib import Path\nCONNECTOR_FILE = Path(__file__).with_name('kingdee.yaml')\n"
    )
    (tmp_path / "kingdee.yaml").write_text(PACK_FILE, encoding="utf-8")
    info = tmp_path / "acme_pack-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-pack\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[seamflow.connector_packs]\nkingdee = acme_pack:CONNECTOR_FILE\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    project = tmp_path / "project"
    project.mkdir()
    assert flows.connector_files.install_project_connectors(project) == []
    cls = connectors.available_connectors()["kingdee_pack_demo"]
    assert connectors.is_declared("kingdee_pack_demo")
    assert sorted(cls.actions) == ["get_order", "list_orders"]


def test_seamflow_connector_schema_prints_a_schema_the_dingtalk_pack_satisfies() -> None:
    import json

    import jsonschema
    import yaml
    from click.testing import CliRunner

    from seamflow.cli import main

    printed = CliRunner().invoke(main, ["connector", "schema"])
    assert printed.exit_code == 0, printed.output
    schema = json.loads(printed.output)
    pack = connectors.PACK_FILES["dingtalk_app"]
    jsonschema.validate(yaml.safe_load(pack.read_text(encoding="utf-8")), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"connector": "x", "base_url": "https://x", "operations": {"a": {"pathh": "a"}}}, schema)


@pytest.mark.parametrize(
    ("example", "flow_ids"),
    [
        ("dingtalk-app", ["dingtalk-purchase-approved", "notify-east-china-sales", "welcome-new-colleagues"]),
        ("wecom-app", ["wecom-expense-approved"]),
        ("feishu-app", ["feishu-purchase-approved"]),
        ("kingdee-sales-orders", ["kingdee-contract-signed"]),
    ],
)
def test_the_pack_example_projects_are_valid(example: str, flow_ids: list[str]) -> None:
    root = Path(__file__).parents[2] / "examples" / example
    project, problems = flows.validate.check_project(root / "flows", root / "connections.yaml")
    assert problems == []
    assert sorted(project.flows) == flow_ids


def test_a_connector_file_may_not_take_an_installed_kind(tmp_path: Path) -> None:
    (tmp_path / "connectors").mkdir()
    (tmp_path / "connectors" / "http.yaml").write_text(GOOD.replace("acme_erp", "http"), encoding="utf-8")
    problems = flows.connector_files.install_project_connectors(tmp_path)
    assert [str(p) for p in problems] == [
        f"{tmp_path}/connectors/http.yaml: connector 'http' is also an installed connector; expected a unique name"
    ]
    assert connectors.available_connectors()["http"] is connectors.HttpConnector


def test_a_pack_entry_point_that_is_not_a_path_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "odd_pack.py").write_text("CONNECTOR_FILE = 42\n")
    info = tmp_path / "odd_pack-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: odd-pack\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[seamflow.connector_packs]\nodd = odd_pack:CONNECTOR_FILE\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    problems = flows.connector_files.install_project_connectors(tmp_path / "no-project")
    assert [str(p) for p in problems] == [
        "entry point odd (odd_pack:CONNECTOR_FILE): got int; expected the path of a connector file (str or Path)"
    ]


def test_a_project_without_connector_files_does_not_import_them(tmp_path: Path) -> None:
    """Loading connector files needs the http connector (aiohttp): only a project that has some pays for it."""
    import json
    import subprocess
    import sys

    (tmp_path / "flows").mkdir()
    code = (
        "import sys, json\nfrom pathlib import Path\nfrom seamflow.flows import validate\n"
        f"validate.check_project(Path({str(tmp_path / 'flows')!r}), None)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('seamflow.connectors.', 'aiohttp')))))"
    )
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)
    assert loaded == [
        "seamflow.connectors.base",
        "seamflow.connectors.guard",
        "seamflow.connectors.pack",
        "seamflow.connectors.tokens",
    ]
