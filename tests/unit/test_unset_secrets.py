"""A secret that a connection or flow reads but nobody set is a validation problem naming how to set it."""

from __future__ import annotations

from pathlib import Path

import pytest

from seamflow import engine
from seamflow.flows import validate

CONNECTIONS = """orders:
  connector: http
  base_url: http://127.0.0.1:9000
  auth: {bearer: "{{ secrets.orders_token }}"}
"""
FLOW = """id: signed-orders
trigger:
  webhook:
    path: orders
    signature: {secret: "{{ secrets['shop_webhook'] }}", header: X-Signature}
steps:
  - id: forward
    action: orders.post
    with: {path: /orders, json: "{{ event.body }}"}
"""


def _project(root: Path) -> validate.Project:
    (root / "flows").mkdir()
    (root / "flows" / "signed.yaml").write_text(FLOW, encoding="utf-8")
    (root / "connections.yaml").write_text(CONNECTIONS, encoding="utf-8")
    return validate.validate_project(root / "flows", root / "connections.yaml")


def test_each_unset_secret_is_a_problem_at_its_position_naming_the_command_and_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SEAMFLOW_SECRET_ORDERS_TOKEN", raising=False)
    monkeypatch.delenv("SEAMFLOW_SECRET_SHOP_WEBHOOK", raising=False)
    problems = [str(p) for p in engine.unset_secret_problems(tmp_path, _project(tmp_path))]
    assert problems == [
        f"{tmp_path}/connections.yaml:4:18 orders.auth.bearer: connection 'orders' reads secret 'orders_token',"
        " which is not set; expected `seamflow secrets set orders_token` (stored encrypted in secrets.enc.yaml)"
        " or the environment variable SEAMFLOW_SECRET_ORDERS_TOKEN",
        f"{tmp_path}/flows/signed.yaml:5:25 trigger.webhook.signature.secret: flow 'signed-orders' reads secret"
        " 'shop_webhook', which is not set; expected `seamflow secrets set shop_webhook` (stored encrypted in"
        " secrets.enc.yaml) or the environment variable SEAMFLOW_SECRET_SHOP_WEBHOOK",
    ]


def test_a_secret_set_in_the_environment_or_the_encrypted_file_is_no_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(tmp_path)
    monkeypatch.setenv("SEAMFLOW_SECRET_ORDERS_TOKEN", "tok-from-the-environment")
    engine.secrets.create_key_file(tmp_path)
    key = engine.secrets.read_key(tmp_path, {})
    engine.secrets.SecretsFile(tmp_path).store(key, "shop_webhook", "whsec-from-the-file")
    assert engine.unset_secret_problems(tmp_path, project) == []
