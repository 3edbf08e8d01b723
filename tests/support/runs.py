"""Waiting for a run to reach a status through the REST API."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.wait import eventually


async def run_in_status(client: httpx.AsyncClient, run_id: str, status: str, timeout: float = 20) -> dict[str, Any]:
    """Poll `GET /api/v1/runs/{id}` until the run has `status`; return the run."""

    async def check() -> dict[str, Any]:
        run: dict[str, Any] = (await client.get(f"/api/v1/runs/{run_id}")).json()
        assert run["status"] == status, run
        return run

    return await eventually(check, timeout=timeout)
