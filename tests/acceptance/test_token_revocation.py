"""A revoked personal API token is refused by every process of a serve group within the bound
the docs promise (`directory.TOKEN_CACHE_TTL`: each process remembers a checked token that long).

`SEAMFLOW_PROCESSES=2` runs two processes behind the port; the kernel spreads new connections
over them, so each request below opens its own connection and both processes see the token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from seamflow import directory
from tests.support.approvals import Site, company
from tests.support.wait import eventually

SLACK_S = 3.0
"""Beyond the bound: a loaded machine's scheduling, and the polling interval."""


@pytest.fixture
async def site(project_dir: Path, tmp_path: Path) -> AsyncIterator[Site]:
    async with company(project_dir, tmp_path, {}, env={"SEAMFLOW_PROCESSES": "2"}) as site:
        yield site


async def _statuses(site: Site, token: str, count: int) -> set[int]:
    """The status of `GET /api/v1/me` with `token`, each on a new connection (so on either process)."""
    seen = set()
    for _ in range(count):
        async with httpx.AsyncClient(base_url=site.server.url, timeout=30) as client:
            answer = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
            seen.add(answer.status_code)
    return seen


async def test_a_revoked_token_is_refused_by_every_process_within_the_documented_bound(site: Site) -> None:
    token = site.tokens["zhang.wei"]
    assert await _statuses(site, token, 20) == {200}  # checked, and remembered, by the processes
    listed = (await site.admin.get("/api/v1/directory/users/zhang.wei/tokens")).json()
    [token_id] = [t["id"] for t in listed if t["revoked"] is None]
    assert (await site.admin.delete(f"/api/v1/directory/tokens/{token_id}")).status_code == 200

    async def refused_everywhere() -> None:
        assert await _statuses(site, token, 20) == {401}

    await eventually(refused_everywhere, timeout=directory.TOKEN_CACHE_TTL.total_seconds() + SLACK_S)
    async with httpx.AsyncClient(base_url=site.server.url, timeout=30) as client:
        answer = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert answer.json()["code"] == "auth.expired" and token_id in answer.json()["detail"]
