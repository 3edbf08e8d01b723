"""A secret a step transforms reaches its target as it is, and shows nowhere else in clear.

One flow sends a planted CRM password through every usual transform (a Basic header built with
`~` and `b64encode`, `upper`, `lower`, `urlencode`, `replace`, a slice, a hash, JSON inside a body,
and one inside a longer text) to a local HTTP sink. The sink receives the real values; the run
as the API and `runs show` give it, the server log, the error of a second run whose target echoes
the headers back, and the store show `***` instead.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from tests.acceptance.test_redaction import dump_store, seamflow_async
from tests.support import db
from tests.support.runs import run_in_status
from tests.support.server import make_project, serve
from tests.support.sink import Behaviour, Sink

PASSWORD = "crm pa55/Word-Planted!7c3e"
USER = "zhang.wei"

# header name -> (template, what the target must receive)
TRANSFORMS: dict[str, tuple[str, Callable[[str], str]]] = {
    "authorization": (
        "Basic {{ ('zhang.wei:' ~ secrets.crm_password) | b64encode }}",
        lambda pw: "Basic " + base64.b64encode(f"{USER}:{pw}".encode()).decode(),
    ),
    "x-upper": ("{{ secrets.crm_password | upper }}", str.upper),
    "x-lower": ("{{ secrets.crm_password | lower }}", str.lower),
    "x-b64": ("{{ secrets.crm_password | b64encode }}", lambda pw: base64.b64encode(pw.encode()).decode()),
    "x-urlencoded": ("{{ secrets.crm_password | urlencode }}", lambda pw: quote(pw, safe="/")),
    "x-replaced": (
        "{{ secrets.crm_password | replace(' ', '_') | replace('/', '-') }}",
        lambda pw: pw.replace(" ", "_").replace("/", "-"),
    ),
    "x-slice": ("{{ secrets.crm_password[4:20] }}", lambda pw: pw[4:20]),
    "x-hash": ("{{ secrets.crm_password | sha256 }}", lambda pw: hashlib.sha256(pw.encode()).hexdigest()),
    "x-inside": (
        "order SO-2026-0001 / {{ secrets.crm_password | upper | replace(' ', '') }} / zhang.wei",
        lambda pw: f"order SO-2026-0001 / {pw.upper().replace(' ', '')} / zhang.wei",
    ),
}
DERIVED = {name: expected(PASSWORD) for name, (_, expected) in TRANSFORMS.items()}
SECRET_PARTS = {  # what must never show: each transformed value, or its secret part when inside text
    **DERIVED,
    "authorization": DERIVED["authorization"].removeprefix("Basic "),
    "x-inside": PASSWORD.upper().replace(" ", ""),
    "body": PASSWORD[::-1].upper(),
    "password": PASSWORD,
}


def _flow(flow_id: str) -> str:
    headers = ", ".join(
        f"{name}: {json.dumps(template, ensure_ascii=False)}" for name, (template, _) in TRANSFORMS.items()
    )
    return f"""id: {flow_id}
trigger: {{manual: {{}}}}
steps:
  - id: sign_in
    action: crm.post
    retry: {{attempts: 1}}
    with:
      path: /sessions
      headers: {{{headers}}}
      json:
        user: 张伟
        mobile: "+86 138 0013 8000"
        credentials: "{{{{ {{'user': 'zhang.wei', 'key': secrets.crm_password | reverse | upper}} | tojson }}}}"
        amount_cny: "1288.00"
on_error: dead_letter
"""


FLOWS = {"sign_in": _flow("crm-sign-in"), "sign_in_refused": _flow("crm-sign-in-refused")}


def connections_yaml(sink_url: str) -> str:
    return f"crm:\n  connector: http\n  base_url: {sink_url}\n"


def assert_nothing_secret(text: str, where: str) -> None:
    for name, value in SECRET_PARTS.items():
        assert value not in text, f"{where} shows the {name} transform of the secret {value!r}:\n{text[:3000]}"


async def test_a_transformed_secret_reaches_the_target_and_shows_nowhere_else(
    project_dir: Path, database: db.Database
) -> None:
    async with Sink.start() as sink:
        make_project(project_dir, FLOWS, connections_yaml(sink.url))
        project = str(project_dir)
        stored = await seamflow_async("secrets", "set", "crm_password", "-p", project, stdin=PASSWORD)
        assert "stored secret" in stored, stored
        async with serve(project_dir) as server, server.client() as client:
            started = await client.post("/api/v1/flows/crm-sign-in/runs", json={"input": {"note": "planted"}})
            assert started.status_code == 202, started.text
            run_ids = [started.json()["run_id"]]
            completed = await run_in_status(client, run_ids[0], "completed")

            sink.behaviour = Behaviour(fail_next=-1, fail_status=401, echo_headers=True)
            started = await client.post("/api/v1/flows/crm-sign-in-refused/runs", json={"input": {}})
            assert started.status_code == 202, started.text
            run_ids.append(started.json()["run_id"])
            refused = await run_in_status(client, run_ids[1], "dead_letter")
            answers = {
                path: (await client.get(path)).text
                for path in (
                    *(f"/api/v1/runs/{run_id}" for run_id in run_ids),
                    "/api/v1/runs",
                    "/api/v1/dead-letters",
                    "/api/v1/events?limit=5000",
                    "/api/v1/audit?limit=1000",
                )
            }
        received = sink.requests[0]
    outputs = {
        " ".join(args): await seamflow_async(*args, "-p", project)
        for run_id in run_ids
        for args in (("runs", "show", run_id, "--json"), ("runs", "show", run_id))
    }

    for name, expected in DERIVED.items():
        assert received.headers[name] == expected, f"the target got {name} = {received.headers[name]!r}"
    body = json.loads(received.body)
    assert json.loads(body["credentials"]) == {"user": USER, "key": PASSWORD[::-1].upper()}
    assert body["user"] == "张伟" and body["amount_cny"] == "1288.00", "the rest of the body is as written"

    step_input = completed["steps"][0]["input"]
    for name in DERIVED:
        assert "***" in step_input["headers"][name], f"the journal's {name} header is masked: {step_input}"
    assert step_input["headers"]["x-inside"] == "order SO-2026-0001 / *** / zhang.wei", "only the secret part is masked"
    assert "***" in step_input["json"]["credentials"] and step_input["json"]["user"] == "张伟"
    assert "HTTP 401" in str(refused["steps"][0]["error"]), "the error shows the echoed headers, masked"

    texts = {**answers, **outputs, "the server log": server.log_path.read_text(), "the store": dump_store(database)}
    for where, text in texts.items():
        assert_nothing_secret(text, where)
