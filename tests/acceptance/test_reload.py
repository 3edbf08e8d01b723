"""A running `seamflow serve` picks up added, changed, removed and invalid flow files while webhooks arrive.

Every accepted event's run completes with the version it was accepted with (the mark it posts
belongs to the file text of its recorded version), no accepted event is lost, a file with a
problem is reported with file:line:column while its earlier version keeps serving, and every
process of the serve group (two on this machine's default) serves the same files.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from seamflow import codec
from seamflow.flows import load
from tests.acceptance.flows import sink_connection
from tests.support.server import TOKEN, Server, make_project, serve
from tests.support.sink import Sink
from tests.support.wait import eventually

FLOW = """
id: {id}
trigger:
  webhook:
    path: {id}
    dedupe_key: "{{{{ event.body.k }}}}"
steps:
  - id: post
    action: sink.post
    with: {{path: /{id}, json: {{flow: {id}, mark: {mark}, k: "{{{{ event.body.k }}}}"}}}}
"""

WAITING = """
id: slow
trigger: {webhook: {path: slow}}
steps:
  - id: pause
    wait: {signal: go, key: "{{ event.body.k }}"}
  - id: post
    action: sink.post
    with: {path: /slow, json: {mark: MARK, k: "{{ event.body.k }}"}}
"""

SECRET_READER = """
id: gamma
trigger: {webhook: {path: gamma}}
steps:
  - id: post
    action: sink.post
    with: {path: /gamma, json: {key: "{{ secrets.gamma_key }}"}}
"""

GROUP = {"SEAMFLOW_PROCESSES": "2"}
"""Two processes behind the port: the first watches and tells the other; an API reload reaches one of them."""

BROKEN = "id: beta\ntrigger: {webhook: {path: beta}\nsteps: [\n"


def flow(flow_id: str, mark: int) -> str:
    return FLOW.format(id=flow_id, mark=mark)


def version(text: str) -> str:
    return load.flow_version(text.encode())


def write(project: Path, name: str, text: str) -> None:
    (project / "flows" / f"{name}.yaml").write_text(text, encoding="utf-8")


@dataclass
class Traffic:
    """Clients posting to webhook paths until stopped; every answer is kept with the phase it was sent in."""

    url: str
    paths: tuple[str, ...]
    phase: str = "start"
    answers: list[tuple[str, str, str, str, int, str | None]] = field(default_factory=list)
    """(phase when sent, phase when answered, path, key, status, run id)."""
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _keys: itertools.count[int] = field(default_factory=itertools.count)

    async def client(self, number: int) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as client:
            for turn in itertools.count():
                if self.stopping.is_set():
                    return
                path, key, phase = self.paths[turn % len(self.paths)], f"c{number}-{next(self._keys)}", self.phase
                answer = await client.post(f"/hooks/{path}", json={"k": key})
                run_id = answer.json().get("run_id") if answer.status_code == 202 else None
                self.answers.append((phase, self.phase, path, key, answer.status_code, run_id))

    def accepted(self) -> dict[str, tuple[str, str]]:
        """Run id -> (path, key) of every accepted event."""
        return {run_id: (path, key) for _, _, path, key, _, run_id in self.answers if run_id}


async def served_by_every_process(
    url: str, path: str, check: Callable[[httpx.Response], bool], method: str = "GET"
) -> None:
    """`check` holds for 12 requests in a row, each on a new connection (so any process of the group answers)."""

    async def all_agree() -> None:
        for _ in range(12):
            async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
                answer = await client.request(method, path, json={"k": "probe"} if method == "POST" else None)
            assert check(answer), (path, answer.status_code, answer.text)

    await eventually(all_agree, timeout=20)


def has_version(text: str) -> Callable[[httpx.Response], bool]:
    return lambda answer: answer.status_code == 200 and answer.json()["version"] == version(text)


async def test_flow_files_added_changed_invalid_and_removed_under_load_lose_no_run(
    project_dir: Path, sink: Sink
) -> None:
    make_project(project_dir, {"alpha": flow("alpha", 1)}, sink_connection(sink.url))
    async with serve(project_dir, env=GROUP) as server, server.client() as api:
        traffic = Traffic(server.url, ("alpha", "beta"))
        clients = [asyncio.create_task(traffic.client(n)) for n in range(4)]
        await eventually(lambda: _assert_some(traffic, "start"))

        traffic.phase = "beta added"
        write(project_dir, "beta", flow("beta", 1))
        await served_by_every_process(server.url, "/api/v1/flows/beta", has_version(flow("beta", 1)))

        traffic.phase = "alpha changed"
        write(project_dir, "alpha", flow("alpha", 2))
        await served_by_every_process(server.url, "/api/v1/flows/alpha", has_version(flow("alpha", 2)))
        await eventually(lambda: _assert_some(traffic, "alpha changed"))

        traffic.phase = "beta invalid"
        write(project_dir, "beta", BROKEN)
        answer = (await api.post("/api/v1/flows/reload")).json()
        assert answer["kept"] == ["beta"], answer
        [problem] = answer["invalid"]
        assert problem["file"].endswith("flows/beta.yaml") and problem["line"] == 3, problem
        await eventually(lambda: _assert_logged(server, "flows/beta.yaml:3:"))
        await served_by_every_process(server.url, "/api/v1/flows/beta", has_version(flow("beta", 1)))

        traffic.phase = "alpha removed"
        (project_dir / "flows" / "alpha.yaml").unlink()
        await served_by_every_process(server.url, "/api/v1/flows/alpha", lambda a: a.status_code == 404)
        await eventually(lambda: _assert_some(traffic, "alpha removed"))
        traffic.stopping.set()
        await asyncio.gather(*clients)

        gone = await api.post("/hooks/alpha", json={"k": "late"})
        assert gone.status_code == 404 and gone.json()["known_paths"] == ["/hooks/beta"], gone.text
        await _assert_every_run_completed_with_its_version(api, traffic, sink)
    _assert_answers_fit_their_phase(traffic)


async def _assert_some(traffic: Traffic, phase: str) -> None:
    assert sum(1 for a in traffic.answers if a[0] == phase and a[4] == 202) >= 5, phase


async def _assert_logged(server: Server, text: str) -> None:
    assert text in server.log_path.read_text(encoding="utf-8")


async def _assert_every_run_completed_with_its_version(api: httpx.AsyncClient, traffic: Traffic, sink: Sink) -> None:
    accepted = traffic.accepted()
    assert len(accepted) > 40

    async def all_completed() -> dict[str, dict]:
        runs = {}
        for run_id in accepted:
            run = (await api.get(f"/api/v1/runs/{run_id}")).json()
            assert run["status"] == "completed", run
            runs[run_id] = run
        return runs

    runs = await eventually(all_completed, timeout=60)
    posted = {}
    for request in sink.requests:
        body = codec.loads(request.body)
        posted[body["k"]] = body
    marks = {(f, version(flow(f, m))): m for f in ("alpha", "beta") for m in (1, 2)}
    for run_id, (path, key) in accepted.items():
        assert key in posted, f"run {run_id} ({path}, {key}) posted nothing"
        assert posted[key]["flow"] == path
        assert marks[(path, runs[run_id]["version"])] == posted[key]["mark"], (run_id, runs[run_id]["version"])
    assert len(sink.requests) == len(accepted), "one effect per accepted event"


def _assert_answers_fit_their_phase(traffic: Traffic) -> None:
    statuses = {a[4] for a in traffic.answers}
    assert statuses <= {202, 404}, statuses
    for sent, answered, path, key, status, _ in traffic.answers:
        if status != 404:
            continue
        if path == "alpha":  # only once its file was being removed (a request may be sent just before)
            assert answered == "alpha removed", f"alpha {key} got 404 answered in phase {answered!r}"
        else:  # only before every process was seen serving it
            assert sent in ("start", "beta added"), f"beta {key} got 404 sent in phase {sent!r}"


async def test_runs_in_flight_keep_their_version_when_the_file_changes_or_goes(project_dir: Path, sink: Sink) -> None:
    make_project(project_dir, {"slow": WAITING.replace("MARK", "1")}, sink_connection(sink.url))
    async with serve(project_dir) as server, server.client() as api:
        first = (await api.post("/hooks/slow", json={"k": "a"})).json()["run_id"]
        await eventually(lambda: _assert_status(api, first, "waiting"))
        write(project_dir, "slow", WAITING.replace("MARK", "2"))
        await served_by_every_process(server.url, "/api/v1/flows/slow", has_version(WAITING.replace("MARK", "2")))
        second = (await api.post("/hooks/slow", json={"k": "b"})).json()["run_id"]
        await eventually(lambda: _assert_status(api, second, "waiting"))
        (project_dir / "flows" / "slow.yaml").unlink()
        await served_by_every_process(server.url, "/api/v1/flows/slow", lambda a: a.status_code == 404)
        for key in ("a", "b"):
            await api.post("/api/v1/signals", json={"name": "go", "key": key})
        await eventually(lambda: _assert_status(api, first, "completed"))
        await eventually(lambda: _assert_status(api, second, "completed"))
    posted = {codec.loads(r.body)["k"]: codec.loads(r.body)["mark"] for r in sink.requests}
    assert posted == {"a": 1, "b": 2}


async def _assert_status(api: httpx.AsyncClient, run_id: str, status: str) -> None:
    assert (await api.get(f"/api/v1/runs/{run_id}")).json()["status"] == status


def reload_command(server: Server, *args: str, token: str = TOKEN) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seamflow", "flow", "reload", "--url", server.url, *args],
        capture_output=True,
        text=True,
        env={**server.env, "SEAMFLOW_TOKEN": token},
        timeout=60,
        check=False,
    )


async def test_flow_reload_asks_a_serve_that_does_not_watch(project_dir: Path, sink: Sink) -> None:
    make_project(project_dir, {"alpha": flow("alpha", 1)}, sink_connection(sink.url))
    async with serve(project_dir, env={**GROUP, "SEAMFLOW_WATCH": "0"}) as server, server.client() as api:
        write(project_dir, "beta", flow("beta", 1))
        assert (await api.get("/api/v1/flows/beta")).status_code == 404  # not watching: nothing changes by itself

        done = await asyncio.to_thread(reload_command, server)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "reloaded: added beta"
        await served_by_every_process(server.url, "/api/v1/flows/beta", has_version(flow("beta", 1)))

        write(project_dir, "beta", BROKEN)
        done = await asyncio.to_thread(reload_command, server, "--json")
        assert done.returncode == 2
        answer = codec.loads(done.stdout)
        assert answer["kept"] == ["beta"] and answer["added"] == answer["changed"] == answer["removed"] == []
        assert "flows/beta.yaml:3:" in answer["invalid"][0]["message"]

        write(project_dir, "gamma", SECRET_READER)
        done = await asyncio.to_thread(reload_command, server, "--json")
        assert done.returncode == 2
        answer = codec.loads(done.stdout)
        assert answer["added"] == [], "a flow that reads an unset secret is not loaded, as at start"
        assert any("flow 'gamma' reads secret 'gamma_key', which is not set" in p["message"] for p in answer["invalid"])

        refused = await asyncio.to_thread(reload_command, server, token="sf_not_a_token_of_this_project")
        assert refused.returncode == 2
        assert "refused the API token" in refused.stderr and "sf_not_a_token" not in refused.stderr
        assert (await api.put("/api/v1/directory/users/liuyang", json={"name": "刘洋", "roles": ["viewer"]})).is_success
        viewer = (await api.post("/api/v1/directory/users/liuyang/tokens", json={"name": "cli"})).json()["token"]
        forbidden = await asyncio.to_thread(reload_command, server, token=viewer)
        assert forbidden.returncode == 2
        assert "does not allow this token to reload flows" in forbidden.stderr, forbidden.stderr
        assert "needs the build scope" in forbidden.stderr and viewer not in forbidden.stderr
    gone = await asyncio.to_thread(reload_command, server)
    assert gone.returncode == 1
    assert f"cannot reach seamflow serve at {server.url}" in gone.stderr


async def test_a_flows_folder_removed_and_made_again_keeps_serving_and_is_watched_again(
    project_dir: Path, sink: Sink
) -> None:
    make_project(project_dir, {"alpha": flow("alpha", 1)}, sink_connection(sink.url))
    flows_dir = project_dir / "flows"
    async with serve(project_dir, env=GROUP) as server, server.client() as api:
        shutil.rmtree(flows_dir)  # a branch switch or a deploy that replaces the folder
        await eventually(lambda: _assert_logged(server, "flows kept at their earlier version: alpha"))
        accepted = await api.post("/hooks/alpha", json={"k": "while-away"})
        assert accepted.status_code == 202, accepted.text

        flows_dir.mkdir()
        write(project_dir, "alpha", flow("alpha", 1))
        write(project_dir, "beta", flow("beta", 1))
        await served_by_every_process(server.url, "/api/v1/flows/beta", has_version(flow("beta", 1)))
        await served_by_every_process(server.url, "/api/v1/flows/alpha", has_version(flow("alpha", 1)))


SHOP_FEED = """
id: shop-orders
trigger:
  poll:
    connection: shop
    feed: rows
    with: {table: orders, cursor: updated_at, key: id}
    every: 200ms
steps:
  - id: post
    action: sink.post
    with: {path: /shop-orders, json: {id: "{{ event.body.id }}", customer: "{{ event.body.customer }}", mark: MARK}}
"""


def add_order(shop: Path, number: int, customer: str) -> None:
    with sqlite3.connect(shop) as conn:
        stamp = f"2026-12-07T10:{number:02d}:00"
        conn.execute("INSERT INTO orders (id, customer, updated_at) VALUES (?, ?, ?)", (number, customer, stamp))


async def test_a_poll_flow_added_or_changed_while_serving_starts_polling_with_its_version(
    project_dir: Path, sink: Sink
) -> None:
    shop = project_dir.parent / "shop.db"
    project_dir.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(shop) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, updated_at TEXT NOT NULL)")
    for number, customer in enumerate(["上海浦东发展有限公司", "北京中关村科技有限公司"], start=1):
        add_order(shop, number, customer)
    connections = sink_connection(sink.url) + f"shop: {{connector: sql, url: 'sqlite:///{shop}'}}\n"
    make_project(project_dir, {"alpha": flow("alpha", 1)}, connections)

    def posted() -> dict[int, int]:
        bodies = [codec.loads(r.body) for r in sink.requests if r.path == "/shop-orders"]
        return {int(b["id"]): b["mark"] for b in bodies}

    async with serve(project_dir, env=GROUP) as server:
        write(project_dir, "shop-orders", SHOP_FEED.replace("MARK", "1"))

        async def first_rows() -> None:
            assert posted() == {1: 1, 2: 1}

        await eventually(first_rows, timeout=20)
        write(project_dir, "shop-orders", SHOP_FEED.replace("MARK", "2"))
        changed = has_version(SHOP_FEED.replace("MARK", "2"))
        await served_by_every_process(server.url, "/api/v1/flows/shop-orders", changed)
        add_order(shop, 3, "深圳市南山区科技园有限公司")

        async def new_row_with_new_version() -> None:
            assert posted() == {1: 1, 2: 1, 3: 2}

        await eventually(new_row_with_new_version, timeout=20)
