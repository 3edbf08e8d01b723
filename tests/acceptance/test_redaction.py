"""A planted secret appears nowhere: not in API answers, server logs, CLI output or the store.

An http connection's bearer token is the planted secret and its target answers 401 echoing the
headers back, among them the token upper-cased and inside a Basic header the step builds; an
sql connection's URL carries another planted password, which a step also passes as a statement
parameter to a failing query. Both runs become dead letters.
Tokens obtained at run time — a DingTalk token endpoint's, and the OAuth2 access and refresh
tokens of an `http` and an `openapi` connection authorized with `connections authorize` — are
planted the same way: APIs that echo them back, and every place searched for them.
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support import db
from tests.support.oauth_server import CLIENT_ID, CLIENT_SECRET, AuthServer, authorize_by_loopback
from tests.support.open_platforms import APPS, OpenPlatforms
from tests.support.runs import run_in_status
from tests.support.server import make_project, serve
from tests.support.sink import RemoteSink, spawn

TOKEN = "s3cr3t-Planted-9f1c"
DB_PASSWORD = "Db-pa55-Planted-7e2a"
TRANSFORMED = (  # what the call-api step makes from the token: sent in headers the target echoes
    TOKEN.upper(),
    base64.b64encode(f"ops.li:{TOKEN}".encode()).decode(),
    DB_PASSWORD[::-1].lower(),
)
PLANTED = (TOKEN, DB_PASSWORD, *TRANSFORMED)

FLOWS = {
    "call_api": """id: call-api
trigger: {manual: {}}
steps:
  - id: call
    action: api.post
    with:
      path: /orders
      json: {order: 1, check: "{{ secrets.db_password | reverse | lower }}"}
      headers:
        X-Token-Upper: "{{ secrets.api_token | upper }}"
        X-Basic: "Basic {{ ('ops.li:' ~ secrets.api_token) | b64encode }}"
on_error: dead_letter
""",
    "query_db": """id: query-db
trigger: {manual: {}}
steps:
  - id: lookup
    action: erp.query
    with:
      sql: "SELECT * FROM no_such_table_planted WHERE name = :name"
      params: {name: "{{ secrets.db_password }}"}
    retry: {attempts: 1}
on_error: dead_letter
""",
}


def connections_yaml(sink_url: str) -> str:
    return f"""
api:
  connector: http
  base_url: {sink_url}
  auth: {{bearer: "{{{{ secrets.api_token }}}}"}}
erp:
  connector: sql
  url: "postgresql+psycopg://postgres:{{{{ secrets.db_password }}}}@127.0.0.1:5432/postgres"
  timeout: 5s
"""


def seamflow(*args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "seamflow", *args], capture_output=True, text=True, input=stdin, timeout=60
    )
    return result.stdout + result.stderr


def assert_no_secret(text: str, where: str) -> None:
    for value in PLANTED:
        for form in (value, base64.b64encode(value.encode()).decode()):
            assert form not in text, f"{where} shows {form!r}:\n{text[:2000]}"


@pytest.fixture
async def echoing_target() -> AsyncIterator[RemoteSink]:
    async with spawn() as sink:  # its own process: the CLI calls below block this one
        await sink.set_behaviour(fail_next=-1, fail_status=401, fail_body={"error": "bad token"}, echo_headers=True)
        yield sink


async def test_a_planted_secret_appears_in_no_answer_log_output_or_row(
    project_dir: Path, echoing_target: RemoteSink, database: db.Database
) -> None:
    if reason := db.postgres_unavailable():
        pytest.skip(f"the sql connection needs PostgreSQL: {reason}")
    make_project(project_dir, FLOWS, connections_yaml(echoing_target.url))
    project = str(project_dir)
    for name, value in (("api_token", TOKEN), ("db_password", DB_PASSWORD)):
        assert "stored secret" in seamflow("secrets", "set", name, "-p", project, stdin=value)

    async with serve(project_dir) as server, server.client() as client:
        run_ids = []
        for flow in ("call-api", "query-db"):
            started = await client.post(f"/api/v1/flows/{flow}/runs", json={"input": {"note": "planted"}})
            assert started.status_code == 202, started.text
            run_ids.append(started.json()["run_id"])
        runs = [await run_in_status(client, run_id, "dead_letter") for run_id in run_ids]
        assert "HTTP 401" in str(runs[0]["steps"][-1]["error"]), "the echoed body is shown, masked"
        assert "Bearer ***" in str(runs[0]["steps"][-1]["error"])
        assert "Basic ***" in str(runs[0]["steps"][-1]["error"]), "the echoed transformed token is masked"
        assert "no_such_table_planted" in str(runs[1]["steps"][-1]["error"])
        answers = await api_answers(client, run_ids)
    log = server.log_path.read_text()

    for where, text in answers.items():
        assert_no_secret(text, f"GET/POST {where}")
    assert_no_secret(log, "the server log")
    for args in cli_commands(run_ids, ("api", "erp")):
        output = seamflow(*args, "-p", project)
        assert_no_secret(output, "seamflow " + " ".join(args))
    assert "credentials refused" in seamflow("connections", "test", "api", "-p", project)
    assert_no_secret(dump_store(database), "the store")


async def api_answers(
    client: httpx.AsyncClient, run_ids: list[str], connections: tuple[str, ...] = ("api", "erp")
) -> dict[str, str]:
    paths = [
        "/api/v1/runs",
        "/api/v1/dead-letters",
        "/api/v1/events?limit=5000",
        "/api/v1/connections",
        "/api/v1/flows",
        "/api/v1/audit?limit=1000",
        *(f"/api/v1/runs/{run_id}" for run_id in run_ids),
        *(f"/api/v1/events?run={run_id}" for run_id in run_ids),
    ]
    answers = {path: (await client.get(path)).text for path in paths}
    for name in connections:
        answers[f"/api/v1/connections/{name}/test"] = (await client.post(f"/api/v1/connections/{name}/test")).text
    assert '"code":"connector' not in answers["/api/v1/connections"]
    assert '"action":"secret.set"' in answers["/api/v1/audit?limit=1000"], "setting the secrets was audited"
    return answers


def cli_commands(run_ids: list[str], connections: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The commands whose output must hold no secret."""
    return [
        ("runs", "list", "--json"),
        ("runs", "dead-letters", "--json"),
        ("runs", "dead-letters"),
        *(("runs", "show", run_id, "--json") for run_id in run_ids),
        *(("runs", "show", run_id) for run_id in run_ids),
        ("connections", "list", "--json"),
        *(("connections", "test", name) for name in connections),
        ("secrets", "list"),
        ("audit", "export"),
        ("audit", "verify"),
    ]


def dump_store(database: db.Database) -> str:
    """Every row of every table, as text."""
    if database.backend == "sqlite":
        tables = [r[0] for r in database.query("SELECT name FROM sqlite_master WHERE type = 'table'")]
    else:
        tables = [r[0] for r in database.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    assert tables, "the store has tables"
    return "\n".join(repr(database.query(f'SELECT * FROM "{table}"')) for table in tables)  # names from the catalog


SIGNIN_FLOWS = {
    "echo_token": """id: echo-token
trigger: {manual: {}}
steps:
  - id: echo
    action: dingtalk.post
    with: {path: topapi/echo, json: {userid: manager4220}}
""",
    "oauth2_me": """id: oauth2-me
trigger: {manual: {}}
steps:
  - id: me
    action: crm.get
    with: {path: me}
  - id: echo
    action: crm.get
    with: {path: echo}
on_error: dead_letter
""",
    "openapi_me": """id: openapi-me
trigger: {manual: {}}
steps:
  - id: me
    action: crm_api.get_me
  - id: echo
    action: crm_api.get_echo
on_error: dead_letter
""",
    "refuse_token": """id: refuse-token
trigger: {manual: {}}
steps:
  - id: refuse
    action: dingtalk.post
    with: {path: topapi/refuse, json: {userid: manager4220}}
on_error: dead_letter
""",
}


def crm_openapi(oauth_base: str) -> str:
    """An OpenAPI document declaring the authorization code flow of the test's authorization server."""
    return f"""openapi: 3.0.3
info: {{title: 云帆 CRM, version: "2.4"}}
servers: [{{url: "{oauth_base}/api"}}]
components:
  securitySchemes:
    crmOAuth:
      type: oauth2
      flows:
        authorizationCode:
          authorizationUrl: {oauth_base}/authorize
          tokenUrl: {oauth_base}/token
          scopes: {{profile: read the profile}}
security: [{{crmOAuth: [profile]}}]
paths:
  /me: {{get: {{operationId: getMe, responses: {{"200": {{description: the user}}}}}}}}
  /echo: {{get: {{operationId: getEcho, responses: {{"400": {{description: a careless API}}}}}}}}
"""


def signin_yaml(base: str, oauth_base: str, document: Path) -> str:
    return f"""
crm_api:
  connector: openapi
  document: {document}
  auth:
    crmOAuth: {{client_id: {CLIENT_ID}, client_secret: "{{{{ secrets.crm_client_secret }}}}"}}
crm:
  connector: http
  base_url: {oauth_base}/api
  auth:
    oauth2:
      authorize_url: {oauth_base}/authorize
      token_url: {oauth_base}/token
      client_id: {CLIENT_ID}
      client_secret: "{{{{ secrets.crm_client_secret }}}}"
dingtalk:
  connector: http
  base_url: {base}/dingtalk
  auth:
    token_endpoint:
      request:
        method: GET
        url: {base}/dingtalk/gettoken
        query: {{appkey: "{{{{ secrets.dingtalk_appkey }}}}", appsecret: "{{{{ secrets.dingtalk_appsecret }}}}"}}
      send: {{query: access_token}}
      error_code: errcode
      revoked_codes: [40014, 42001]
"""


async def seamflow_async(*args: str, stdin: str | None = None) -> str:
    """The CLI without blocking this process's loop: the stand-in below serves from it."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "seamflow",
        *args,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(None if stdin is None else stdin.encode()), timeout=60)
    return out.decode()


async def test_a_token_obtained_at_run_time_appears_in_no_answer_log_output_or_row(
    project_dir: Path, database: db.Database
) -> None:
    async with OpenPlatforms.start() as platforms, AuthServer.start() as oauth:
        document = project_dir / "apis" / "crm-openapi.yaml"
        document.parent.mkdir(parents=True)
        document.write_text(crm_openapi(oauth.base_url), encoding="utf-8")
        make_project(project_dir, SIGNIN_FLOWS, signin_yaml(platforms.base_url, oauth.base_url, document))
        project = str(project_dir)
        for name, value in (*zip(("dingtalk_appkey", "dingtalk_appsecret"), APPS["dingtalk"], strict=True),
                            ("crm_client_secret", CLIENT_SECRET)):  # fmt: skip
            assert "stored secret" in await seamflow_async("secrets", "set", name, "-p", project, stdin=value)
        await authorize_by_loopback(project_dir)
        await authorize_by_loopback(project_dir, "crm_api")  # an openapi connection: URLs from its document
        async with serve(project_dir) as server, server.client() as client:
            run_ids = []
            for flow in ("echo-token", "refuse-token", "oauth2-me", "openapi-me"):
                started = await client.post(f"/api/v1/flows/{flow}/runs", json={"input": {}})
                assert started.status_code == 202, started.text
                run_ids.append(started.json()["run_id"])
            echoed = await run_in_status(client, run_ids[0], "completed")
            refused = await run_in_status(client, run_ids[1], "dead_letter")
            echoed_bearer = await run_in_status(client, run_ids[2], "dead_letter")
            echoed_openapi = await run_in_status(client, run_ids[3], "dead_letter")
            answers = await api_answers(client, run_ids, connections=("dingtalk", "crm", "crm_api"))
        commands = cli_commands(run_ids, ("dingtalk", "crm", "crm_api"))
        outputs = [await seamflow_async(*args, "-p", project) for args in commands]
    log = server.log_path.read_text()
    assert platforms.issued and platforms.token_requests["dingtalk"] >= 1
    assert "access_token=***" in str(echoed["steps"][-1]["output"]), "the echoed URL is shown, masked"
    assert "HTTP 400" in str(refused["steps"][-1]["error"])
    assert "Bearer ***" in str(echoed_bearer["steps"][-1]["error"]), "the echoed access token is shown, masked"
    assert "Bearer ***" in str(echoed_openapi["steps"][-1]["error"]), "the openapi connection's token too"
    assert echoed_openapi["steps"][0]["output"]["body"]["name"] == "张伟", "the openapi connection signed in"
    assert oauth.issued, "the OAuth2 connection signed in"
    texts = {**answers, "the server log": log, **{f"CLI {i}": out for i, out in enumerate(outputs)}}
    texts["the store"] = dump_store(database)
    for where, text in texts.items():
        for token in [*platforms.issued, *oauth.issued]:
            assert token not in text, f"{where} shows the token:\n{text[:2000]}"
    stored = database.query("SELECT connection, version FROM connection_tokens")
    expected = [("crm", 1), ("crm_api", 1), ("dingtalk", 1)]
    assert sorted(tuple(row) for row in stored) == expected, "the tokens were stored, sealed"
