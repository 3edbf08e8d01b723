"""Sign-in with an OpenID Connect provider through a real `seamflow serve` and a local provider
(`tests/support/oidc_provider.py`, a real HTTP server with a real RSA key): the authorization code
flow with PKCE, users matched by e-mail, groups → roles, and the refusals — a forged signature, a
wrong audience, an expired ID token, a replayed state, a replayed code.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from seamflow.api import access
from tests.support.oidc_provider import CLIENT_SECRET, OidcProvider
from tests.support.server import Server, make_project

FLOW = "id: hello\ntrigger: {manual: {}}\nsteps:\n  - id: a\n    transform: 1\n"
PEOPLE = {
    "zhangwei": {"name": "张伟", "email": "zhang.wei@hengda-trading.com.cn", "roles": ["viewer"]},
    "wangfang": {"name": "王芳", "email": "wang.fang@hengda-trading.com.cn", "roles": []},
}
OIDC_YAML = """\
name: 恒达 SSO
issuer: {issuer}
client_id: seamflow-console
client_secret: "{{{{ secrets.oidc_client_secret }}}}"
match: email
groups_claim: groups
group_roles: {{seamflow-admins: admin, finance-approvers: approver}}
clock_skew_s: 30
"""


@dataclass
class Site:
    server: Server
    provider: OidcProvider


@pytest.fixture
async def site(project_dir: Path) -> AsyncIterator[Site]:
    make_project(project_dir, {"hello": FLOW})
    async with OidcProvider.start() as provider:
        (project_dir / "oidc.yaml").write_text(OIDC_YAML.format(issuer=provider.base_url), encoding="utf-8")
        server = Server(project_dir, env={"SEAMFLOW_SECRET_OIDC_CLIENT_SECRET": CLIENT_SECRET})
        await server.start()
        try:
            async with server.client() as admin:
                for login, user in PEOPLE.items():
                    answer = await admin.put(f"/api/v1/directory/users/{login}", json=user)
                    assert answer.status_code == 200, answer.text
            yield Site(server, provider)
        finally:
            server.kill()
        log = server.log_path.read_text()
        assert CLIENT_SECRET not in log, "the client secret reached the server log"


async def _to_callback(client: httpx.AsyncClient, provider: OidcProvider, login: str) -> str:
    """Start at Seamflow, sign in at the provider as `login`; return the callback URL the provider redirects to."""
    start = await client.get("/api/v1/session/oidc/start")
    assert start.status_code == 302, start.text
    authorize = start.headers["location"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    assert authorize.startswith(provider.base_url + "/authorize?")
    assert query["code_challenge_method"] == "S256" and query["state"] and query["nonce"]
    page = await client.get(authorize)
    assert page.status_code == 200 and "恒达统一身份认证" in page.text
    consent = await client.post(f"{provider.base_url}/authorize", data={**query, "login": login})
    assert consent.status_code == 302, consent.text
    return consent.headers["location"]


async def test_signing_in_with_the_provider_starts_a_session_with_roles_from_groups(site: Site) -> None:
    async with httpx.AsyncClient(base_url=site.server.url, timeout=30) as browser:
        offered = await browser.get("/api/v1/session/oidc")
        assert offered.json() == {"name": "恒达 SSO", "start": "/api/v1/session/oidc/start"}
        callback = await browser.get(await _to_callback(browser, site.provider, "wang.fang"))
        assert callback.status_code == 302 and callback.headers["location"] == "/console/"
        cookie = callback.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        me = (await browser.get("/api/v1/me")).json()
        assert (me["login"], me["via"], me["scopes"]) == (
            "wangfang",
            "session",
            sorted(["read", "operate", "build", "approve", "admin"]),
        )
    async with site.server.client() as admin:
        trail = (await admin.get("/api/v1/audit")).json()
        signed = [e for e in trail if e["action"] == "session.signed_in"]
        assert (signed[-1]["actor"], signed[-1]["via"]) == ("wangfang", "oidc")
        granted = [e for e in trail if e["action"] == "role.granted" and e["object"] == "user:wangfang"]
        assert granted[-1]["detail"] == {"roles_from_groups": ["admin"]}
        assert CLIENT_SECRET not in str(trail)


@pytest.mark.parametrize(
    ("fault", "detail"),
    [
        ("forge", "bad_signature"),
        ("audience", "invalid_claim"),
        ("expired", "expired_token"),
    ],
)
async def test_an_id_token_that_is_forged_for_another_audience_or_expired_is_refused(
    site: Site, fault: str, detail: str
) -> None:
    if fault == "forge":
        site.provider.forge = True
    elif fault == "audience":
        site.provider.audience = "another-app"
    else:
        site.provider.lifetime_s = -120  # beyond the 30 s of clock skew allowed
    async with httpx.AsyncClient(base_url=site.server.url, timeout=30) as browser:
        answer = await browser.get(await _to_callback(browser, site.provider, "zhang.wei"))
        assert (answer.status_code, answer.json()["code"]) == (401, "auth.oidc_token"), answer.text
        assert detail in answer.json()["detail"]
        assert access.SESSION_COOKIE not in answer.cookies
        assert (await browser.get("/api/v1/me")).status_code == 401


async def test_a_replayed_state_or_code_is_refused(site: Site) -> None:
    async with httpx.AsyncClient(base_url=site.server.url, timeout=30) as browser:
        callback = await _to_callback(browser, site.provider, "zhang.wei")
        assert (await browser.get(callback)).status_code == 302
        again = await browser.get(callback)  # the same state and code again
        assert (again.status_code, again.json()["code"]) == (401, "auth.oidc_state")
        # the code with a fresh state: the provider redeems a code once
        fresh = parse_qs(urlsplit((await browser.get("/api/v1/session/oidc/start")).headers["location"]).query)
        code = parse_qs(urlsplit(callback).query)["code"][0]
        replayed = await browser.get("/api/v1/session/oidc/callback", params={"state": fresh["state"][0], "code": code})
        assert (replayed.status_code, replayed.json()["code"]) == (401, "auth.oidc_failed")
        assert "invalid_grant" in replayed.json()["detail"] or "code unknown or used" in replayed.json()["detail"]
    assert site.provider.redeemed == 1


async def test_a_person_who_is_not_in_the_directory_gets_no_session(site: Site) -> None:
    async with httpx.AsyncClient(base_url=site.server.url, timeout=30) as browser:
        answer = await browser.get(await _to_callback(browser, site.provider, "zhao.lei"))
        assert (answer.status_code, answer.json()["code"]) == (401, "auth.oidc_no_user"), answer.text
    async with site.server.client() as admin:
        failed = [e for e in (await admin.get("/api/v1/audit")).json() if e["action"] == "session.sign_in_failed"]
        assert failed[-1]["detail"] == {"reason": "auth.oidc_no_user"}
