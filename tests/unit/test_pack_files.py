"""The connector pack that ships with Seamflow, and the file fields it brought: sessions, rate limits, signing.

Every shipped file loads, satisfies `seamflow connector schema` and is read only when its kind is
first used; a project's file of the same kind replaces it. Broken uses of the new fields are
reported at their exact file:line:column. The signature of a request is computed exactly as the
documented algorithm, at a fixed time.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from pathlib import Path

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml
import yarl

from seamflow import clock, connectors, errors, flows
from seamflow.connectors.http.signing import Signing, sign_request  # the algorithm itself, beside its caller

ERP = """\
connector: acme_k3
settings:
  base_url: {}
  password: {secret: true}
base_url: "{{ config.base_url }}"
auth:
  token_endpoint:
    request:
      url: "{{ config.base_url }}/login"
      json: {user: api, password: "{{ config.password }}"}
    token_cookie: kdservice-sessionid
    send: {cookie: kdservice-sessionid}
sign:
  secret: "{{ config.password }}"
  algorithm: md5
errors:
  code: [Result.MsgCode, 0.0.Result.MsgCode]
  statuses: [400]
  revoked: [1]
rate_limit:
  per_second: 10
  codes: [14]
operations:
  query:
    method: POST
    path: query
    body: {data: {FormId: SAL_SaleOrder}}
    page_in: body
    paginate: {style: offset, offset_param: data.StartRow, size_param: data.Limit, size: 100}
"""

BROKEN = [
    (
        "send: {cookie: kdservice-sessionid}",
        "send: {cookie: k, query: k}",
        "12:11 auth.token_endpoint.send: got fields cookie, query; expected exactly one of header, query or cookie",
    ),
    ("per_second: 10", "per_second: 0", "21:15 rate_limit.per_second: got 0; expected a number from 0.01 to 100000"),
    ("codes: [14]", "codez: [14]", "22:3 rate_limit.codez: unknown field 'codez'; did you mean 'codes'?"),
    ("algorithm: md5", "algorithm: sha1", "15:14 sign.algorithm: got 'sha1'; expected one of 'md5' or 'hmac_sha256'"),
    ("statuses: [400]", "statuses: 400", "18:13 errors.statuses: got 400; expected a list"),
    ("code: [Result.MsgCode, 0.0.Result.MsgCode]", "code: {path: x}", "17:9 errors.code"),
    (
        '"{{ config.password }}"\n  algorithm',
        '"{{ config.pasword }}"\n  algorithm',
        "14:11 sign.secret: unknown setting 'pasword'; did you mean 'password'?",
    ),
]


def test_the_unchanged_erp_file_loads() -> None:
    cls = flows.connector_files.load_connector_text(ERP, "connectors/acme_k3.yaml")
    assert cls.kind == "acme_k3" and sorted(cls.actions) == ["query"]


@pytest.mark.parametrize(("old", "new", "expected"), BROKEN, ids=[b[2].split(" ")[1] for b in BROKEN])
def test_a_broken_use_of_the_new_fields_is_reported_at_its_position(old: str, new: str, expected: str) -> None:
    assert old in ERP
    with pytest.raises(errors.FlowInvalid) as invalid:
        flows.connector_files.load_connector_text(ERP.replace(old, new, 1), "connectors/acme_k3.yaml")
    assert f"connectors/acme_k3.yaml:{expected}" in str(invalid.value), str(invalid.value)
    assert len(invalid.value.problems) == (2 if "errors.code" in expected else 1), "one mistake, one problem"


@pytest.mark.parametrize("kind", sorted(connectors.PACK_FILES))
def test_each_shipped_file_loads_and_satisfies_the_schema(kind: str) -> None:
    path = connectors.PACK_FILES[kind]
    assert path.name == f"{kind}.yaml"
    assert flows.connector_files.load_connector_file(path).kind == kind
    jsonschema.validate(yaml.safe_load(path.read_text("utf-8")), flows.connector_files.connector_file_schema())


def test_the_pack_ships_four_connectors() -> None:
    assert sorted(connectors.PACK_FILES) == ["dingtalk_app", "feishu_app", "kingdee_k3cloud", "wecom_app"]


def test_a_project_without_files_can_use_the_shipped_kinds(tmp_path: Path) -> None:
    assert flows.connector_files.install_project_connectors(tmp_path) == []
    installed = connectors.available_connectors()
    assert {"dingtalk_app", "wecom_app", "feishu_app", "kingdee_k3cloud"} <= set(installed)
    assert connectors.is_declared("kingdee_k3cloud")
    assert sorted(installed["kingdee_k3cloud"].actions) == ["query_bills", "save_sales_order"]


def test_a_projects_file_of_a_shipped_kind_replaces_it(tmp_path: Path) -> None:
    text = connectors.PACK_FILES["wecom_app"].read_text("utf-8")
    mine = text.replace("operations:\n", "operations:\n  list_agents:\n    path: cgi-bin/agent/list\n", 1)
    (tmp_path / "connectors").mkdir()
    (tmp_path / "connectors" / "wecom_app.yaml").write_text(mine, encoding="utf-8")
    try:
        assert flows.connector_files.install_project_connectors(tmp_path) == []
        assert "list_agents" in connectors.available_connectors()["wecom_app"].actions
    finally:  # the next test's project has its own files: put the shipped one back
        connectors.add_declared(flows.connector_files.load_connector_file(connectors.PACK_FILES["wecom_app"]))


def test_md5_signature_of_sorted_parameters_and_the_body_at_a_fixed_time() -> None:
    clock.set_fixed(datetime(2026, 12, 7, 1, 30, tzinfo=UTC))
    try:
        signing = Signing.model_validate(
            {"secret": "s3cr3t-app", "params": {"app_key": "12345678", "v": "2.0"}, "timestamp_param": "timestamp",
             "timestamp_format": "datetime", "body": True}
        )  # fmt: skip
        url, headers = sign_request(
            yarl.URL("https://eco.example.cn/router/rest?method=trade.get"), b'{"tid":"1"}', signing
        )
    finally:
        clock.use_real()
    text = 'app_key12345678methodtrade.gettimestamp2026-12-07 09:30:00v2.0{"tid":"1"}'
    assert url.query["sign"] == hashlib.md5(f"s3cr3t-app{text}s3cr3t-app".encode()).hexdigest().upper()
    assert url.query["timestamp"] == "2026-12-07 09:30:00" and headers == {}


def test_hmac_signature_in_headers_covers_the_query_the_timestamp_the_nonce_and_the_body() -> None:
    clock.set_fixed(datetime(2026, 12, 7, 1, 30, tzinfo=UTC))
    try:
        signing = Signing.model_validate(
            {"secret": "s3cr3t-app", "algorithm": "hmac_sha256", "timestamp_param": "X-Ca-Timestamp",
             "timestamp_format": "milliseconds", "nonce_param": "X-Ca-Nonce", "param": "X-Ca-Signature",
             "pair": "{key}={value}", "separator": "&", "upper": False, "body": True, "place": "header"}
        )  # fmt: skip
        url, headers = sign_request(yarl.URL("https://api.example.cn/orders?shop_id=80211"), b'{"n":1}', signing)
    finally:
        clock.use_real()
    assert str(url) == "https://api.example.cn/orders?shop_id=80211", "nothing of the signature in the query"
    assert headers["X-Ca-Timestamp"] == "1796607000000" and len(headers["X-Ca-Nonce"]) == 16
    text = f"X-Ca-Nonce={headers['X-Ca-Nonce']}&X-Ca-Timestamp=1796607000000&shop_id=80211" + '{"n":1}'
    assert headers["X-Ca-Signature"] == hmac.new(b"s3cr3t-app", text.encode(), hashlib.sha256).hexdigest()
