"""Connections and secrets as a user runs them: `seamflow secrets`, `seamflow connections`, the REST API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.server import free_port, make_project, serve
from tests.support.sink import RemoteSink, Sink, spawn
from tests.support.wait import eventually

TOKEN = "conn-t0ken-4e7a91"

POST_WITH_TOKEN = """id: post-with-token
trigger: {manual: {}}
steps:
  - id: post
    action: api.post
    with: {path: /orders, json: {n: 1}}
on_error: dead_letter
"""


def connections_yaml(sink_url: str, *, closed_port: int) -> str:
    return f"""
api:
  connector: http
  base_url: {sink_url}
  auth: {{bearer: "{{{{ secrets.api_token }}}}"}}
  concurrency: 4
  timeout: 5s
down:
  connector: http
  base_url: http://127.0.0.1:{closed_port}/v1
"""


def seamflow(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seamflow", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
async def remote_sink() -> AsyncIterator[RemoteSink]:
    async with spawn() as running:  # its own process: the CLI calls below block this one
        yield running


def project_with_secret(project_dir: Path, sink: RemoteSink | Sink) -> Path:
    make_project(project_dir, {"post": POST_WITH_TOKEN}, connections_yaml(sink.url, closed_port=free_port()))
    stored = seamflow("secrets", "set", "api_token", "-p", str(project_dir), stdin=TOKEN + "\n")
    assert stored.returncode == 0, stored.stderr
    return project_dir


async def test_secrets_set_list_delete_never_show_the_value(project_dir: Path, remote_sink: RemoteSink) -> None:
    project = str(project_with_secret(project_dir, remote_sink))
    key = project_dir / ".seamflow" / "secret.key"
    assert key.stat().st_mode & 0o777 == 0o600, "secrets set creates a missing key file owner-only"
    assert TOKEN not in (project_dir / "secrets.enc.yaml").read_text()
    listed = seamflow("secrets", "list", "-p", project)
    assert listed.stdout.split() == ["NAME", "SOURCE", "OVERRIDES", "FILE", "api_token", "file", "-"]
    overridden = seamflow("secrets", "list", "-p", project, env={"SEAMFLOW_SECRET_API_TOKEN": "other-value-1"})
    assert overridden.stdout.splitlines()[1].split() == ["api_token", "env", "(SEAMFLOW_SECRET_API_TOKEN)", "yes"]
    as_json = seamflow("secrets", "list", "--json", "-p", project).stdout
    assert json.loads(as_json) == [{"name": "api_token", "source": "file", "overrides_file": False}]
    assert seamflow("secrets", "delete", "api_token", "-p", project).returncode == 0
    again = seamflow("secrets", "delete", "api_token", "-p", project)
    assert again.returncode == 2 and "not stored" in again.stderr
    for result in (listed, overridden):
        assert TOKEN not in result.stdout + result.stderr


async def test_secrets_set_refuses_an_empty_value_and_a_bad_name(project_dir: Path) -> None:
    make_project(project_dir, {})
    empty = seamflow("secrets", "set", "x_token", "-p", str(project_dir), stdin="")
    assert empty.returncode == 2 and "is empty" in empty.stderr
    bad = seamflow("secrets", "set", "Bad-Name", "-p", str(project_dir), stdin="value-1234")
    assert bad.returncode == 2 and "expected lower-case letters" in bad.stderr


async def test_a_key_file_readable_by_others_stops_the_cli_with_a_clear_error(
    project_dir: Path, remote_sink: RemoteSink
) -> None:
    project = project_with_secret(project_dir, remote_sink)
    (project / ".seamflow" / "secret.key").chmod(0o644)
    result = seamflow("connections", "test", "api", "-p", str(project))
    assert result.returncode == 2
    assert "permissions 0644" in result.stderr and "chmod 600" in result.stderr


async def test_connections_list_shows_secret_names_and_sources_with_values_masked(
    project_dir: Path, remote_sink: RemoteSink
) -> None:
    project = str(project_with_secret(project_dir, remote_sink))
    table = seamflow("connections", "list", "-p", project)
    assert table.returncode == 0, table.stderr
    api_line = next(line for line in table.stdout.splitlines() if line.startswith("api "))
    assert api_line.split() == ["api", "http", "4", "5s", "api_token=***", "(file)"]
    listed = json.loads(seamflow("connections", "list", "--json", "-p", project).stdout)
    assert listed[0] == {
        "name": "api",
        "connector": "http",
        "concurrency": 4,
        "timeout_s": 5.0,
        "secrets": [{"name": "api_token", "source": "file", "value": "***"}],
        "checks": True,
        "authorizes": False,
        "status": "ok",
    }
    assert TOKEN not in table.stdout


async def test_connections_test_exits_0_when_the_target_accepts_and_1_when_refused(
    project_dir: Path, remote_sink: RemoteSink
) -> None:
    project = str(project_with_secret(project_dir, remote_sink))
    ok = seamflow("connections", "test", "api", "-p", project)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("ok: api: reached GET http://127.0.0.1:")
    down = seamflow("connections", "test", "down", "-p", project)
    assert down.returncode == 1
    assert "failed: down: down.check: the connection to 127.0.0.1:" in down.stderr and "refused" in down.stderr
    await remote_sink.set_behaviour(fail_next=-1, fail_status=401, echo_headers=True)
    refused = seamflow("connections", "test", "api", "-p", project)
    assert refused.returncode == 1 and "credentials refused" in refused.stderr
    unknown = seamflow("connections", "test", "nope", "-p", project)
    assert unknown.returncode == 2 and "'nope' is not defined in connections.yaml; defined: api, down" in unknown.stderr


async def test_the_server_uses_the_encrypted_secret_and_the_environment_wins(project_dir: Path, sink: Sink) -> None:
    project = project_with_secret(project_dir, sink)
    async with serve(project) as server, server.client() as client:
        started = await client.post("/api/v1/flows/post-with-token/runs", json={"input": {}})
        assert started.status_code == 202, started.text
        await eventually(lambda: _arrived(sink, 1), timeout=20)
    async with serve(project, env={"SEAMFLOW_SECRET_API_TOKEN": "env-t0ken-wins"}) as server, server.client() as client:
        await client.post("/api/v1/flows/post-with-token/runs", json={"input": {}})
        await eventually(lambda: _arrived(sink, 2), timeout=20)
    assert [r.headers.get("authorization") for r in sink.requests] == [f"Bearer {TOKEN}", "Bearer env-t0ken-wins"]


async def _arrived(sink: Sink, count: int) -> None:
    assert len(sink.requests) >= count


async def test_a_wrong_key_stops_the_server_naming_the_secret_not_its_ciphertext(
    project_dir: Path, remote_sink: RemoteSink
) -> None:
    from cryptography.fernet import Fernet

    project = project_with_secret(project_dir, remote_sink)
    token = (project / "secrets.enc.yaml").read_text().split("api_token: ")[1].strip()
    with pytest.raises(RuntimeError) as failure:
        async with serve(project, env={"SEAMFLOW_SECRET_KEY": Fernet.generate_key().decode()}):
            pass
    text = str(failure.value)
    assert "secret 'api_token' in" in text and "could not be decrypted with the key from SEAMFLOW_SECRET_KEY" in text
    assert token[:16] not in text


async def test_api_lists_and_tests_connections_and_answers_404_as_a_problem(
    project_dir: Path, remote_sink: RemoteSink
) -> None:
    project = project_with_secret(project_dir, remote_sink)
    async with serve(project) as server, server.client() as client:
        listed = (await client.get("/api/v1/connections")).json()
        assert [c["name"] for c in listed] == ["api", "down"]
        assert listed[0]["secrets"] == [{"name": "api_token", "source": "file", "value": "***"}]
        ok = (await client.post("/api/v1/connections/api/test")).json()
        assert ok["ok"] is True and ok["checked"] is True and ok["message"].startswith("reached GET")
        down = (await client.post("/api/v1/connections/down/test")).json()
        assert down["ok"] is False and "was refused" in down["message"]
        missing = await client.post("/api/v1/connections/nope/test")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert missing.json()["code"] == "connection.not_found"
        anonymous = await client.get("/api/v1/connections", headers={"Authorization": ""})
        assert anonymous.status_code == 401


async def test_a_connector_without_a_check_says_only_the_config_was_validated(project_dir: Path) -> None:
    robot = "robot:\n  connector: wecom\n  webhook: https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k-123456\n"
    make_project(project_dir, {}, robot)
    result = seamflow("connections", "test", "robot", "-p", str(project_dir))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "ok: robot: config is valid; the wecom connector cannot test a connection (only the config was validated)"
    )
    broken = "robot:\n  connector: wecom\n  webhook: not-a-url\n"
    make_project(project_dir, {}, broken)
    failed = seamflow("connections", "test", "robot", "-p", str(project_dir))
    assert failed.returncode == 1 and "failed: robot: " in failed.stderr and "webhook" in failed.stderr
