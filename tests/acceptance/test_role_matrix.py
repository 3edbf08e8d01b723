"""The role matrix: every route of `api.access.ROUTE_ACCESS` × every role, a flow grant and a token
limited to a flow → allowed or 403, generated from the one table and run against a real `seamflow serve`.

Two flows live in folders of the flows folder: `flows/finance/pay.yaml` (pay-invoice) and
`flows/sales/orders.yaml` (sync-orders). 赵磊 has no global role and an operator grant on
`folder:finance/`; 孙悦's token (an operator) is limited to `flow:sync-orders`. A route that names a
flow or a run is called once for each flow; every other parameter is a name that does not exist.
Allowed means anything but a 401/403 of `auth.*` (a missing thing answers 404, an empty body 400);
refused means 403 `auth.forbidden`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from seamflow import directory
from seamflow.api import access
from tests.support.server import Server, make_project
from tests.support.wait import eventually

FLOW = "id: {id}\nname: {name}\ntrigger: {{manual: {{}}}}\nsteps:\n  - id: a\n    transform: {{n: 1}}\n"
FILES = {
    "finance/pay.yaml": FLOW.format(id="pay-invoice", name="应付发票付款"),
    "sales/orders.yaml": FLOW.format(id="sync-orders", name="销售订单同步"),
}
ROLES = ["viewer", "operator", "builder", "approver", "admin"]
PEOPLE = {
    "liuyang": ("刘洋", "viewer"),
    "chenjing": ("陈静", "operator"),
    "wangqiang": ("王强", "builder"),
    "zhangwei": ("张伟", "approver"),
    "wangfang": ("王芳", "admin"),
    "zhaolei": ("赵磊", None),
    "sunyue": ("孙悦", "operator"),
}


@dataclass
class Who:
    """A principal of the matrix and what it must be able to do."""

    token: str
    everywhere: frozenset[directory.Scope]
    on_flow: dict[str, frozenset[directory.Scope]] = field(default_factory=dict)

    def allows(self, rule: access.Access, flow: str | None) -> bool:
        scope = access.needed_scope(rule)
        if scope == access.SIGNED_IN:
            return True
        assert scope != access.PUBLIC
        if isinstance(rule, access.OnFlow) and flow is not None:
            return scope in self.everywhere | self.on_flow.get(flow, frozenset())
        if isinstance(rule, access.OnFlow | access.FlowList):  # an unknown run or task: 404 if it may somewhere
            return scope in self.everywhere.union(*self.on_flow.values())
        return scope in self.everywhere


async def _people(admin: httpx.AsyncClient) -> dict[str, Who]:
    for login, (name, role) in PEOPLE.items():
        user = {"name": name, "roles": [role] if role else []}
        answer = await admin.put(f"/api/v1/directory/users/{login}", json=user)
        assert answer.status_code == 200, answer.text
    answer = await admin.post(
        "/api/v1/directory/grants", json={"subject": "zhaolei", "role": "operator", "target": "folder:finance"}
    )
    assert answer.status_code == 201 and answer.json()["target"] == "folder:finance/", answer.text

    async def token(login: str, **body: object) -> str:
        answer = await admin.post(f"/api/v1/directory/users/{login}/tokens", json={"name": "matrix", **body})
        assert answer.status_code == 201, answer.text
        return str(answer.json()["token"])

    who = {
        role: Who(await token(login), directory.ROLE_SCOPES[directory.Role(role)])
        for login, (_, role) in PEOPLE.items()
        if role and login != "sunyue"
    }
    operate = directory.ROLE_SCOPES[directory.Role.OPERATOR]
    who["grant on folder:finance/"] = Who(await token("zhaolei"), frozenset(), {"pay-invoice": operate})
    limited = await token("sunyue", flows=["flow:sync-orders"])
    who["token limited to flow:sync-orders"] = Who(limited, frozenset(), {"sync-orders": operate})
    return who


def _calls(runs: dict[str, str]) -> list[tuple[str, str, str, str | None]]:
    """(method, template, path, flow) for every protected route; flow and run routes once per flow."""
    calls = []
    for (method, template), rule in sorted(access.ROUTE_ACCESS.items()):
        if access.needed_scope(rule) == access.PUBLIC:
            continue
        if "{flow_id}" in template or "{run_id}" in template:
            for flow, run in runs.items():
                path = template.replace("{flow_id}", flow).replace("{run_id}", run)
                calls.append((method, template, re.sub(r"\{[a-z_]+\}", "nope", path), flow))
        else:
            calls.append((method, template, re.sub(r"\{[a-z_]+\}", "nope", template), None))
    return calls


async def test_every_route_answers_every_role_and_grant_as_the_table_says(project_dir: Path) -> None:
    for relative, text in FILES.items():
        (project_dir / "flows" / relative).parent.mkdir(parents=True, exist_ok=True)
        (project_dir / "flows" / relative).write_text(text, encoding="utf-8")
    make_project(project_dir, {})
    server = Server(project_dir)
    await server.start()
    try:
        async with server.client() as admin:
            runs = {}
            for flow in ("pay-invoice", "sync-orders"):
                answer = await admin.post(f"/api/v1/flows/{flow}/runs", json={"input": {"invoice": "INV-2026-0301"}})
                assert answer.status_code == 202, answer.text
                runs[flow] = answer.json()["run_id"]
            who = await _people(admin)
        wrong = await _walk(server, who, runs)
    finally:
        server.kill()
    assert not wrong, f"{len(wrong)} answers differ from the table:\n" + "\n".join(wrong)


async def _walk(server: Server, who: dict[str, Who], runs: dict[str, str]) -> list[str]:
    wrong = []
    calls = _calls(runs)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        for name, principal in who.items():
            headers = {"Authorization": f"Bearer {principal.token}"}
            for method, template, path, flow in calls:
                rule = access.ROUTE_ACCESS[(method, template)]
                body = {} if method in ("POST", "PUT") else None
                answer = await client.request(method, path, headers=headers, json=body)
                code = answer.json().get("code") if answer.status_code in (401, 403) else None
                refused = code is not None and str(code).startswith("auth.")
                on = f" on {flow}" if flow else ""
                if principal.allows(rule, flow) and refused:
                    wrong.append(f"{name}: {method} {template}{on} got {answer.status_code} {code}, expected allowed")
                elif not principal.allows(rule, flow) and (answer.status_code, code) != (403, "auth.forbidden"):
                    wrong.append(f"{name}: {method} {template}{on} got {answer.status_code} {code}, expected 403")
    return wrong


async def test_lists_answer_only_the_flows_a_grant_reaches(project_dir: Path) -> None:
    for relative, text in FILES.items():
        (project_dir / "flows" / relative).parent.mkdir(parents=True, exist_ok=True)
        (project_dir / "flows" / relative).write_text(text, encoding="utf-8")
    make_project(project_dir, {})
    server = Server(project_dir)
    await server.start()
    try:
        async with server.client() as admin:
            for flow in ("pay-invoice", "sync-orders"):
                assert (await admin.post(f"/api/v1/flows/{flow}/runs", json={"input": {}})).status_code == 202
            who = await _people(admin)

            async def both_done() -> None:
                listed = (await admin.get("/api/v1/runs", params={"status": "completed"})).json()
                assert len(listed) == 2, listed

            await eventually(both_done, timeout=20)
        headers = {"Authorization": f"Bearer {who['grant on folder:finance/'].token}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as zhaolei:
            flows = (await zhaolei.get("/api/v1/flows")).json()
            assert [(f["id"], f["scopes"]) for f in flows] == [("pay-invoice", ["operate", "read"])]
            assert {r["flow"] for r in (await zhaolei.get("/api/v1/runs")).json()} == {"pay-invoice"}
            me = (await zhaolei.get("/api/v1/me")).json()
            assert me["scopes"] == [] and me["grants"] == [
                {"target": "folder:finance/", "role": "operator", "scopes": ["operate", "read"]}
            ]
            assert "GET /api/v1/runs" in me["routes"] and "POST /api/v1/flows/reload" not in me["routes"]
            answer = await zhaolei.post("/api/v1/flows/sync-orders/runs", json={"input": {}})
            assert answer.status_code == 403
            assert "on flow 'sync-orders'" in answer.json()["detail"], answer.text
    finally:
        server.kill()
