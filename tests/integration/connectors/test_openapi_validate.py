"""`flow validate` with a local OpenAPI document or declarative connector file: operations, schemas, file:line:column.

A table of broken steps, each with its exact problem: an unknown operation (as an action or as
`call`'s `operation`) with the closest names, literal inputs the operation's schemas refuse, and
values with templates left for run time. A connection whose base URL or server is wrong fails to
open as `connection.invalid`, naming the connection and what was expected.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from seamflow import connectors, errors, flows
from seamflow.connectors.openapi import OpenApiConnector
from seamflow.ids import Json

FIXTURES = Path(__file__).parents[2] / "fixtures" / "openapi"

ERP_DOCUMENT = r"""openapi: 3.0.3
info: {title: 云帆 ERP, version: "3.2"}
servers: [{url: "https://erp.example.cn/api/v3"}]
paths:
  /customers:
    post:
      operationId: PostCustomers
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [name, mobile]
              additionalProperties: false
              properties:
                name: {type: string, maxLength: 50}
                mobile: {type: string, pattern: '^1[3-9]\d{9}$'}
                credit_limit_cents: {type: integer, minimum: 0}
                level: {type: string, enum: [A, B, C]}
                tags: {type: array, items: {type: string, maxLength: 8}}
      responses: {"201": {description: created}}
  /customers/{code}:
    get:
      operationId: GetCustomer
      parameters:
        - {name: code, in: path, required: true, schema: {type: string, pattern: '^C\d{6}$'}}
        - {name: page, in: query, schema: {type: integer, minimum: 1}}
      responses: {"200": {description: the customer}}
"""


def project(root: Path, steps: str) -> Path:
    (root / "apis").mkdir(parents=True, exist_ok=True)
    (root / "apis" / "erp-openapi.yaml").write_text(ERP_DOCUMENT, encoding="utf-8")
    (root / "flows").mkdir(exist_ok=True)
    (root / "connections.yaml").write_text(
        f"""erp:
  connector: openapi
  document: {root / "apis" / "erp-openapi.yaml"}
stripe:
  connector: openapi
  document: {FIXTURES / "stripe.com.json.gz"}
  auth: {{bearerAuth: {{token: "{{{{ secrets.stripe_key }}}}"}}}}
""",
        encoding="utf-8",
    )
    (root / "flows" / "customer.yaml").write_text(
        f"id: customer\ntrigger: {{manual: {{}}}}\nsteps:\n  - id: s\n{steps}", encoding="utf-8"
    )
    return root


def problems_of(root: Path) -> list[str]:
    _, found = flows.validate.check_project(root / "flows", root / "connections.yaml")
    return [str(p).replace(f"{root}/", "").replace(str(FIXTURES) + "/", "") for p in found]


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        pytest.param(
            "    action: erp.post_customer\n    with: {body: {name: 张伟, mobile: '13812345678'}}\n",
            [
                "flows/customer.yaml:5:13 steps[0].action: unknown action 'post_customer' of connection 'erp'"
                " (connector openapi); did you mean 'post_customers'?;"
                " expected one of: call, get_customer, post_customers"
            ],
            id="unknown-action",
        ),
        pytest.param(
            "    action: stripe.call\n    with:\n      operation: PostCustomer\n      body: {name: 杭州云帆}\n",
            [
                "flows/customer.yaml:7:18 steps[0].with.operation: stripe.call: unknown operation 'PostCustomer' of"
                " stripe.com.json.gz; did you mean 'PostCustomers' or 'GetCustomers' or 'PostCustomersCustomer'?;"
                " expected an operationId: DeleteAccountsAccount, DeleteAccountsAccountBankAccountsId, "
            ],
            id="unknown-operation-of-call",
        ),
        pytest.param(
            "    action: erp.post_customers\n    with:\n      body: {name: 张伟, mobile: '123', level: D}\n",
            [
                "flows/customer.yaml:7:32 steps[0].with.body.mobile: erp.post_customers: body.mobile: '123' does not"
                " match '^1[3-9]\\d{9}$'; expected a value the operation's schemas allow",
                "flows/customer.yaml:7:46 steps[0].with.body.level: erp.post_customers: body.level: 'D' is not one of"
                " ['A', 'B', 'C']; expected a value the operation's schemas allow",
            ],
            id="body-pattern-and-enum",
        ),
        pytest.param(
            "    action: erp.call\n    with:\n      operation: PostCustomers\n"
            "      body: {name: 张伟, mobile: '13812345678', credit_limit_cents: -500, fax: '0571'}\n",
            [
                "flows/customer.yaml:8:13 steps[0].with.body: erp.call: body: unknown field 'fax';"
                " expected name, mobile, credit_limit_cents, level, tags",
                "flows/customer.yaml:8:67 steps[0].with.body.credit_limit_cents: erp.call: body.credit_limit_cents:"
                " -500 is less than the minimum of 0; expected a value the operation's schemas allow",
            ],
            id="call-inputs-minimum-and-unknown-field",
        ),
        pytest.param(
            "    action: erp.post_customers\n    with:\n"
            "      body: {name: 张伟, mobile: '13812345678', "
            "tags: [vip, '{{ event.body.tag }}', 华东大客户重点跟进名单]}\n",
            [
                "flows/customer.yaml:7:83 steps[0].with.body.tags[2]: erp.post_customers: body.tags[2]:"
                " '华东大客户重点跟进名单' is too long; expected a value the operation's schemas allow"
            ],
            id="an-item-of-a-list",
        ),
        pytest.param(
            "    action: erp.get_customer\n    with: {code: X42, page: 0}\n",
            [
                "flows/customer.yaml:6:18 steps[0].with.code: erp.get_customer: code: 'X42' does not match"
                " '^C\\d{6}$'; expected a value the operation's schemas allow",
                "flows/customer.yaml:6:29 steps[0].with.page: erp.get_customer: page: 0 is less than the minimum"
                " of 1; expected a value the operation's schemas allow",
            ],
            id="path-and-query-parameters",
        ),
        pytest.param(
            "    action: erp.get_customer\n    with: {code: C000042, pgae: 2}\n",
            [
                "flows/customer.yaml:6:27 steps[0].with.pgae: unknown input 'pgae' of erp.get_customer;"
                " did you mean 'page'?"
            ],
            id="unknown-input",
        ),
        pytest.param(
            "    action: erp.post_customers\n    with:\n"
            "      body: {name: '{{ event.body.name }}', mobile: '{{ event.body.phone }}', level: A}\n",
            [],
            id="templates-wait-for-run-time",
        ),
        pytest.param(
            "    action: stripe.get_customers\n    with: {limit: 20, email: zhang.wei@example.cn}\n",
            [],
            id="a-valid-stripe-step",
        ),
    ],
)
def test_flow_validate_reads_the_local_document(steps: str, expected: list[str], tmp_path: Path) -> None:
    found = problems_of(project(tmp_path, steps))
    assert [problem[: len(want)] for problem, want in zip(found, expected, strict=False)] == expected, found
    assert len(found) == len(expected), found


def test_a_local_document_that_cannot_be_read_is_a_problem_at_the_connection(tmp_path: Path) -> None:
    root = project(tmp_path, "    action: erp.get_customer\n    with: {code: C000042}\n")
    (root / "apis" / "erp-openapi.yaml").write_text(ERP_DOCUMENT.replace("openapi: 3.0.3", "swagger: '2.0'"))
    found = problems_of(root)
    assert len(found) == 1 and found[0].startswith("connections.yaml:3:13 erp.document: OpenAPI document "), found
    assert "got swagger '2.0'; expected OpenAPI 3.0.x or 3.1.x" in found[0]


def test_a_document_given_by_url_is_not_fetched_by_validation(tmp_path: Path) -> None:
    root = project(tmp_path, "    action: crm.anything_goes\n")
    with (root / "connections.yaml").open("a", encoding="utf-8") as file:
        file.write("crm:\n  connector: openapi\n  document: http://127.0.0.1:9/openapi.json\n")
    assert problems_of(root) == []


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        pytest.param(
            {"base_url": "erp.example.cn/api/v3"},
            "connection 'erp' has an invalid openapi config: connections.yaml erp.base_url: Value error,"
            " must start with http:// or https://",
            id="base-url-without-scheme",
        ),
        pytest.param(
            {"base_url": "https://erp.example.cn:99999/api"},
            "connection 'erp': base_url is 'https://erp.example.cn:99999/api'; expected an absolute http(s) URL",
            id="base-url-port-out-of-range",
        ),
        pytest.param(
            {"base_url": "http://"},
            "connection 'erp': base_url is 'http://'; expected an absolute http(s) URL with a host",
            id="base-url-without-host",
        ),
        pytest.param(
            {"servers": "https://{tenant}.erp.example.cn/api"},
            "connection 'erp': the first server of ERP is 'https://{tenant}.erp.example.cn/api'; expected an"
            " absolute http(s) URL with a host",
            id="server-variable-without-default",
        ),
        pytest.param(
            {"servers": "ftp://erp.example.cn/api"},
            "connection 'erp': give base_url: the document ERP is a file and its first server is"
            " 'ftp://erp.example.cn/api'",
            id="server-not-http",
        ),
        pytest.param(
            {"servers": "/api/v3"},
            "connection 'erp': give base_url: the document ERP is a file and its first server is '/api/v3'",
            id="relative-server-of-a-file",
        ),
    ],
)
async def test_a_wrong_base_url_or_server_is_connection_invalid_naming_the_connection(
    config: dict[str, str], expected: str, tmp_path: Path
) -> None:
    text = ERP_DOCUMENT
    if "servers" in config:
        text = text.replace('"https://erp.example.cn/api/v3"', f'"{config.pop("servers")}"')
    document = tmp_path / "erp-openapi.yaml"
    document.write_text(text, encoding="utf-8")
    settings: dict[str, Json] = {"document": str(document), **config}
    connector = OpenApiConnector()
    with pytest.raises(errors.InvalidInput) as caught:
        await connector.open(connectors.Connection("erp", "openapi", settings, timeout=timedelta(seconds=5)))
    assert caught.value.code == "connection.invalid"
    assert expected.replace("ERP", str(document)) in caught.value.message, caught.value.message


async def test_a_file_that_starts_like_gzip_but_is_broken_is_connection_invalid(tmp_path: Path) -> None:
    document = tmp_path / "erp-openapi.json.gz"
    document.write_bytes(b"\x1f\x8b\x08\x00" + b"not really gzip" * 10)
    with pytest.raises(errors.InvalidInput) as caught:
        await OpenApiConnector().open(
            connectors.Connection("erp", "openapi", {"document": str(document)}, timeout=timedelta(seconds=5))
        )
    assert caught.value.code == "connection.invalid"
    assert "starts like gzip but does not decompress" in caught.value.message


DINGTALK_PACK = connectors.PACK_FILES["dingtalk_app"]


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        pytest.param(
            "    action: dingtalk.send_work_notificaton\n    with: {userid_list: manager4220, msg: {msgtype: text}}\n",
            [
                "flows/notify.yaml:5:13 steps[0].action: unknown action 'send_work_notificaton' of connection"
                " 'dingtalk' (connector dingtalk_app); did you mean 'send_work_notification'?"
            ],
            id="unknown-operation",
        ),
        pytest.param(
            "    action: dingtalk.send_work_notification\n"
            "    with: {userid_list: 'manager4220,,zhangsan', msg: {msgtype: txt}}\n",
            [
                "flows/notify.yaml:6:25 steps[0].with.userid_list: dingtalk.send_work_notification:"
                " 'manager4220,,zhangsan' does not match '^[^,]+(,[^,]+){0,99}$'; expected a value the operation's"
                " input schema allows",
                "flows/notify.yaml:6:65 steps[0].with.msg.msgtype: dingtalk.send_work_notification: 'txt' is not"
                " one of ['text', 'markdown', 'link', 'oa', 'action_card']",
            ],
            id="literal-inputs-against-the-input-schema",
        ),
        pytest.param(
            "    action: dingtalk.send_work_notification\n"
            "    with: {userid_list: '{{ event.body.ids }}',\n"
            "           msg: {msgtype: text, text: {content: '{{ event.body.note }}'}}}\n",
            [],
            id="templates-wait-for-run-time",
        ),
    ],
)
def test_flow_validate_checks_steps_against_a_declarative_connector_file(
    step: str, expected: list[str], tmp_path: Path
) -> None:
    (tmp_path / "connectors").mkdir()
    (tmp_path / "connectors" / "dingtalk_app.yaml").write_bytes(DINGTALK_PACK.read_bytes())
    (tmp_path / "flows").mkdir()
    (tmp_path / "connections.yaml").write_text(
        "dingtalk:\n  connector: dingtalk_app\n  appkey: ding-app-key\n  appsecret: ding-app-secret\n"
        "  agent_id: '2876554321'\n",
        encoding="utf-8",
    )
    (tmp_path / "flows" / "notify.yaml").write_text(
        f"id: notify\ntrigger: {{manual: {{}}}}\nsteps:\n  - id: s\n{step}", encoding="utf-8"
    )
    found = problems_of(tmp_path)
    assert [problem[: len(want)] for problem, want in zip(found, expected, strict=False)] == expected, found
    assert len(found) == len(expected), found
