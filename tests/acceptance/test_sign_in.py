"""Sign-in through a real `seamflow serve`: every protected route × every kind of credential, and lockout.

Time is moved with `SEAMFLOW_FAKE_CLOCK` (the server re-reads the file when it changes), so a
token expires and a lockout ends without waiting.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from seamflow import directory
from seamflow.api import access
from tests.support.server import TOKEN, Server, make_project

T0 = "2026-03-02T09:00:00+00:00"
PASSWORD = "Hengda-2026-finance"
FLOW = "id: hello\ntrigger: {manual: {}}\nsteps:\n  - id: a\n    transform: 1\n"
PEOPLE = {
    "wangfang": {"name": "王芳", "mobile": "139-0211-3344", "department": "finance", "roles": ["admin"]},
    "zhangwei": {"name": "张伟", "mobile": "138-1234-5678", "department": "finance", "roles": ["approver"]},
    "liuyang": {"name": "刘洋", "mobile": "13700001234", "department": "finance", "roles": ["viewer"]},
}


@dataclass
class Site:
    server: Server
    clock_file: Path
    admin: httpx.AsyncClient
    """Signed in with the bootstrap admin token `init` makes."""

    def set_clock(self, instant: str) -> None:
        self.clock_file.write_text(instant)

    async def token(self, login: str, **body: object) -> str:
        answer = await self.admin.post(f"/api/v1/directory/users/{login}/tokens", json={"name": "test", **body})
        assert answer.status_code == 201, answer.text
        return str(answer.json()["token"])

    async def session(self, login: str) -> str:
        async with httpx.AsyncClient(base_url=self.server.url) as client:
            answer = await client.post("/api/v1/session", json={"login": login, "password": PASSWORD})
            assert answer.status_code == 200, answer.text
            return answer.cookies[access.SESSION_COOKIE]


@pytest.fixture
async def site(project_dir: Path, tmp_path: Path) -> AsyncIterator[Site]:
    clock_file = tmp_path / "clock"
    clock_file.write_text(T0)
    make_project(project_dir, {"hello": FLOW})
    server = Server(project_dir, env={"SEAMFLOW_FAKE_CLOCK": str(clock_file)})
    await server.start()
    try:
        async with server.client() as admin:
            answer = await admin.put("/api/v1/directory/departments/finance", json={"name": "财务部"})
            assert answer.status_code == 200, answer.text
            for login, user in PEOPLE.items():
                answer = await admin.put(f"/api/v1/directory/users/{login}", json=user)
                assert answer.status_code == 200, answer.text
                answer = await admin.put(f"/api/v1/directory/users/{login}/password", json={"password": PASSWORD})
                assert answer.status_code == 204, answer.text
            yield Site(server, clock_file, admin)
    finally:
        server.kill()
    log = server.log_path.read_text()
    assert PASSWORD not in log, "a password reached the server log"
    assert "sfp_" not in log and "sfs_" not in log, "a token or session secret reached the server log"


async def _credentials(site: Site) -> dict[str, dict[str, str]]:
    """Headers or cookies of every kind of credential, made at T0 and used at T0 + 2 days."""
    expired = await site.token("wangfang", expires_in_days=1)
    revoked = await site.token("wangfang")
    listed = (await site.admin.get("/api/v1/directory/users/wangfang/tokens")).json()
    revoked_id = next(t["id"] for t in listed if t["expires"] is None)
    assert (await site.admin.delete(f"/api/v1/directory/tokens/{revoked_id}")).status_code == 200
    site.set_clock("2026-03-04T09:00:00+00:00")
    signed_out = await site.session("wangfang")
    async with httpx.AsyncClient(base_url=site.server.url, cookies={access.SESSION_COOKIE: signed_out}) as client:
        assert (await client.delete("/api/v1/session", headers={access.CSRF_HEADER: "1"})).status_code == 204
    return {
        "missing": {},
        "malformed": {"Authorization": "Basic d2FuZ2Zhbmc6eA=="},
        "unknown token": {"Authorization": "Bearer sfp_not-a-token"},
        "expired token": {"Authorization": f"Bearer {expired}"},
        "revoked token": {"Authorization": f"Bearer {revoked}"},
        "signed-out session": {"Cookie": f"{access.SESSION_COOKIE}={signed_out}"},
        "admin's read-only token": {"Authorization": f"Bearer {await site.token('wangfang', scopes=['read'])}"},
        "approver's token": {"Authorization": f"Bearer {await site.token('zhangwei')}"},
        "viewer's session": {"Cookie": f"{access.SESSION_COOKIE}={await site.session('liuyang')}"},
    }


DENIED = {  # credential kind -> (status, code) on every protected route
    "missing": (401, "auth.unauthorized"),
    "malformed": (401, "auth.unauthorized"),
    "unknown token": (401, "auth.unauthorized"),
    "expired token": (401, "auth.expired"),
    "revoked token": (401, "auth.expired"),
    "signed-out session": (401, "auth.expired"),
}
SCOPES = {  # credential kind -> what it may do; elsewhere it gets 403 auth.forbidden
    "admin's read-only token": {directory.Scope.READ},
    "approver's token": {directory.Scope.READ, directory.Scope.APPROVE},
    "viewer's session": {directory.Scope.READ},
}


def _expected(kind: str, needed: access.Access) -> tuple[int, str] | None:
    """The refusal a credential kind must get on a route, or None where it must get through."""
    if kind in DENIED:
        return DENIED[kind]
    scope = access.needed_scope(needed)
    if scope == access.SIGNED_IN or scope in SCOPES[kind]:
        return None
    return 403, "auth.forbidden"


async def test_every_protected_route_refuses_each_kind_of_credential_it_must(site: Site) -> None:
    credentials = await _credentials(site)
    wrong = []
    async with httpx.AsyncClient(base_url=site.server.url, timeout=30) as client:
        for (method, template), needed in sorted(access.ROUTE_ACCESS.items()):
            if access.needed_scope(needed) == access.PUBLIC:
                continue
            path = re.sub(r"\{[a-z_]+\}", "nope", template)
            for kind, headers in credentials.items():
                expected = _expected(kind, needed)
                if expected is None and method != "GET":
                    continue  # allowed: proven on the GET routes; no mutation is fired blind
                body = {} if method in ("POST", "PUT") else None
                answer = await client.request(method, path, headers=headers, json=body)
                got = (answer.status_code, answer.json().get("code") if answer.status_code in (401, 403) else None)
                if expected is None and got[0] in (401, 403):
                    wrong.append(f"{method} {template} with {kind}: got {got}, expected to get through")
                elif expected is not None and got != expected:
                    wrong.append(f"{method} {template} with {kind}: got {got}, expected {expected}")
                elif expected is not None:
                    assert answer.headers["content-type"] == "application/problem+json"
    assert not wrong, "\n".join(wrong)


async def test_wrong_password_five_times_locks_out_until_the_period_ends(site: Site) -> None:
    async with httpx.AsyncClient(base_url=site.server.url) as client:

        async def sign_in(password: str) -> httpx.Response:
            return await client.post("/api/v1/session", json={"login": "zhangwei", "password": password})

        for _ in range(4):
            answer = await sign_in("Hengda-2025-finance")
            assert (answer.status_code, answer.json()["code"]) == (401, "auth.unauthorized")
        answer = await sign_in("Hengda-2025-finance")  # the fifth failure locks, and says so
        assert (answer.status_code, answer.json()["code"]) == (401, "auth.locked")
        answer = await sign_in(PASSWORD)
        assert (answer.status_code, answer.json()["code"]) == (401, "auth.locked")
        # the server's clock runs on from T0 as real time passes: locked for 15 minutes from the fifth failure
        assert re.search(r"locked until 2026-03-02T09:15:\d\d\+00:00$", answer.json()["detail"]), answer.text
        site.set_clock("2026-03-02T09:14:59+00:00")
        assert (await sign_in(PASSWORD)).json()["code"] == "auth.locked"
        site.set_clock("2026-03-02T09:16:00+00:00")
        answer = await sign_in(PASSWORD)
        assert answer.status_code == 200, answer.text
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        assert "Max-Age=28800" in cookie and "expires=Mon, 02 Mar 2026 17:16:" in cookie
        me = await client.get("/api/v1/session")
        assert me.json() == {"login": "zhangwei", "scopes": ["approve", "read"], "via": "session"}
        assert (await client.delete("/api/v1/session")).json()["code"] == "auth.csrf"  # a cross-site request
        assert (await client.delete("/api/v1/session", headers={access.CSRF_HEADER: "1"})).status_code == 204
        client.cookies.set(access.SESSION_COOKIE, answer.cookies[access.SESSION_COOKIE])
        assert (await client.get("/api/v1/session")).json()["code"] == "auth.expired"


async def test_a_token_is_shown_once_and_never_listed(site: Site) -> None:
    secret = await site.token("zhangwei", scopes=["read"])
    listed = await site.admin.get("/api/v1/directory/users/zhangwei/tokens")
    assert secret not in listed.text and listed.json()[0]["scopes"] == ["read"]
    async with httpx.AsyncClient(base_url=site.server.url, headers={"Authorization": f"Bearer {secret}"}) as client:
        assert (await client.get("/api/v1/flows")).status_code == 200
    listed = await site.admin.get("/api/v1/directory/users/zhangwei/tokens")
    assert listed.json()[0]["last_used"].startswith("2026-03-02T09:0")  # the server's clock: T0 and a little


async def test_the_bootstrap_admin_token_keeps_working(site: Site) -> None:
    me = await site.admin.get("/api/v1/session")
    assert me.json() == {"login": "@bootstrap", "scopes": sorted(directory.Scope), "via": "bootstrap"}
    assert TOKEN not in me.text


async def test_a_bad_user_is_refused_with_every_problem_and_no_secret_is_echoed(site: Site) -> None:
    answer = await site.admin.put(
        "/api/v1/directory/users/zhaolei",
        json={"name": "赵磊", "mobile": "138-1234-567", "password": PASSWORD, "manager": "nobody"},
    )
    assert answer.status_code == 400 and answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["code"] == "directory.invalid"
    assert {e["where"] for e in problem["errors"]} == {"user 'zhaolei': mobile", "user 'zhaolei': password"}
    assert PASSWORD not in answer.text
    answer = await site.admin.put("/api/v1/directory/users/zhaolei", json={"name": "赵磊", "manager": "nobody"})
    assert answer.json()["detail"] == "user 'zhaolei': manager: user 'nobody' does not exist; expected a user's login"


async def test_users_make_their_own_tokens_never_beyond_the_credential_asking(site: Site) -> None:
    read_only = await site.token("wangfang", scopes=["read"])
    async with httpx.AsyncClient(base_url=site.server.url, headers={"Authorization": f"Bearer {read_only}"}) as client:
        wider = await client.post("/api/v1/session/tokens", json={"name": "escalate", "scopes": ["admin"]})
        assert (wider.status_code, wider.json()["code"]) == (400, "directory.scope_not_granted")
        own = await client.post("/api/v1/session/tokens", json={"name": "report", "expires_in_days": 30})
        assert own.status_code == 201 and own.json()["scopes"] == ["read"] and own.json()["login"] == "wangfang"
        listed = (await client.get("/api/v1/session/tokens")).json()
        assert {t["name"] for t in listed} == {"test", "report"} and own.json()["token"] not in str(listed)
    other = await site.token("zhangwei")
    others_id = (await site.admin.get("/api/v1/directory/users/zhangwei/tokens")).json()[0]["id"]
    async with httpx.AsyncClient(base_url=site.server.url, headers={"Authorization": f"Bearer {read_only}"}) as client:
        answer = await client.delete(f"/api/v1/session/tokens/{others_id}")
        assert (answer.status_code, answer.json()["code"]) == (404, "directory.token_not_found")
        mine = await client.delete(f"/api/v1/session/tokens/{own.json()['id']}")
        assert mine.status_code == 200 and mine.json()["revoked"] is not None
    async with httpx.AsyncClient(base_url=site.server.url, headers={"Authorization": f"Bearer {other}"}) as client:
        assert (await client.get("/api/v1/flows")).status_code == 200, "the other user's token still works"
