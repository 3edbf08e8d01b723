"""Every listing command prints a table with headers in stable plain columns when piped, and JSON with --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.acceptance.test_cli import seamflow
from tests.support.server import make_project, serve
from tests.support.wait import eventually

_FLOWS = {
    "manual": "id: manual-order\nname: 手工补单\ntrigger: {manual: {}}\nsteps:\n  - id: a\n    transform: 1\n",
    "hook": "id: crm-contracts\ntrigger: {webhook: {path: crm/contracts}}\nsteps:\n  - id: a\n    transform: 1\n",
}
_CONNECTIONS = "erp:\n  connector: http\n  base_url: http://127.0.0.1:9\n"

LISTINGS = {
    ("flow", "list"): ["FLOW", "VERSION", "TRIGGER", "DETAIL", "FILE"],
    ("runs", "list"): ["RUN", "FLOW", "STATUS", "CREATED"],
    ("runs", "dead-letters"): None,  # no dead letters: "no runs"
    ("workers", "--all"): ["WORKER", "ROLES", "HEARTBEAT", "RUNS", "STATE"],  # the `run` above was one
    ("connections", "list"): ["NAME", "CONNECTOR", "CONCURRENCY", "TIMEOUT", "SECRETS"],
    ("secrets", "list"): None,
}


@pytest.mark.parametrize("command", sorted(LISTINGS), ids=" ".join)
def test_a_listing_has_headers_and_json(tmp_path: Path, command: tuple[str, ...]) -> None:
    make_project(tmp_path, _FLOWS, _CONNECTIONS)
    seamflow("run", "manual-order", "--input", '{"order_no": "SO-2026-0042", "amount": "1999.00"}', "-p", str(tmp_path))
    table = seamflow(*command, "-p", str(tmp_path)).stdout.splitlines()
    headers = LISTINGS[command]
    if headers is None:
        assert len(table) == 1 and table[0].startswith("no "), table
    else:
        assert table[0].split() == headers
        assert len(table) >= 2 and all("\x1b[" not in line for line in table)
    rows = json.loads(seamflow(*command, "--json", "-p", str(tmp_path)).stdout)
    assert isinstance(rows, list) and len(rows) == len(table) - 1 if headers else rows == []


def test_flow_list_columns_line_up_and_json_names_each_field(tmp_path: Path) -> None:
    make_project(tmp_path, _FLOWS)
    table = seamflow("flow", "list", "-p", str(tmp_path)).stdout.splitlines()
    start = table[0].index("TRIGGER")
    assert [line[start:].split()[0] for line in table[1:]] == ["webhook", "manual"]
    rows = json.loads(seamflow("flow", "list", "--json", "-p", str(tmp_path)).stdout)
    assert [(r["id"], r["trigger"], r["detail"]) for r in rows] == [
        ("crm-contracts", "webhook", "/hooks/crm/contracts"),
        ("manual-order", "manual", None),
    ]


async def test_replaying_many_dead_letters_shows_progress_and_a_count_per_outcome(tmp_path: Path) -> None:
    flow = (
        "id: orders\ntrigger: {webhook: {path: orders}}\nsteps:\n"
        "  - id: customer\n    transform: '{{ event.body.customer.name }}'\non_error: dead_letter\n"
    )
    make_project(tmp_path, {"orders": flow})
    async with serve(tmp_path) as server, server.client() as client:
        for n in range(25):
            answer = await client.post("/hooks/orders", json={"order_no": f"SO-2026-{n:04d}"})
            assert answer.status_code == 202, answer.text

        async def all_dead() -> None:
            assert len((await client.get("/api/v1/dead-letters")).json()) == 25

        await eventually(all_dead)
    replayed = seamflow("runs", "replay", "--all", "-p", str(tmp_path)).stdout.splitlines()
    assert replayed[-2] == "replaying dead letters: 25/25 runs (100%), " + replayed[-2].split(", ")[1]
    assert replayed[-2].endswith(" runs/s")
    assert replayed[-1] == "replayed: 25 dead_letter", "the flow still cannot read the customer"
