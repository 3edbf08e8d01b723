"""Bad configuration and a database that goes away: clear errors, no secrets, nothing lost."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.acceptance.flows import FORWARD, sink_connection
from tests.cluster.cluster import fire
from tests.support import db
from tests.support.pg_instance import PASSWORD, PrivatePostgres, private_postgres, private_postgres_unavailable
from tests.support.server import Server, make_project
from tests.support.sink import RemoteSink
from tests.support.wait import eventually


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    reason = private_postgres_unavailable()
    if reason:
        pytest.skip(reason)
    with private_postgres() as server:
        yield server


def _seamflow(project: Path, *args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "SEAMFLOW_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "seamflow", *args, "--project", str(project)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("what", "url", "expected"),
    [
        ("unknown host", f"postgresql://seamflow:{PASSWORD}@nonexistent.invalid:5432/seamflow", "store.unreachable"),
        ("nothing listening", f"postgresql://seamflow:{PASSWORD}@127.0.0.1:1/seamflow", "store.unreachable"),
        ("not a URL", "postgresql://seamflow:%zz@[::1", "store.unreachable"),
    ],
)
def test_a_wrong_url_fails_at_start_with_one_clear_line(project_dir: Path, what: str, url: str, expected: str) -> None:
    make_project(project_dir, {"forward": FORWARD}, sink_connection("http://127.0.0.1:9"))
    done = _seamflow(project_dir, "worker", url=url)
    assert done.returncode != 0, what
    assert f"error [{expected}]" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert PASSWORD not in done.stderr + done.stdout


def test_a_wrong_password_is_named_without_showing_any_password(project_dir: Path, private_pg: PrivatePostgres) -> None:
    make_project(project_dir, {"forward": FORWARD}, sink_connection("http://127.0.0.1:9"))
    wrong = "Wrong-Pw-Planted-55"
    done = _seamflow(project_dir, "db", "upgrade", url=private_pg.url_with(wrong))
    assert done.returncode != 0
    assert "password authentication failed" in done.stderr, done.stderr
    assert wrong not in done.stderr + done.stdout and PASSWORD not in done.stderr
    assert "Traceback" not in done.stderr
    ok = _seamflow(project_dir, "db", "upgrade", url=private_pg.url)
    assert ok.returncode == 0, ok.stderr
    assert "schema at version" in ok.stdout


def test_a_database_down_at_start_is_a_clear_error_and_up_again_works(
    project_dir: Path, private_pg: PrivatePostgres
) -> None:
    make_project(project_dir, {"forward": FORWARD}, sink_connection("http://127.0.0.1:9"))
    private_pg.stop()
    done = _seamflow(project_dir, "db", "upgrade", url=private_pg.url)
    assert done.returncode != 0
    assert "error [store.unreachable]" in done.stderr and "refused" in done.stderr.lower(), done.stderr
    private_pg.start()
    assert _seamflow(project_dir, "db", "upgrade", url=private_pg.url).returncode == 0


async def test_a_database_restarted_mid_load_loses_nothing(
    project_dir: Path, private_pg: PrivatePostgres, remote_sink: RemoteSink
) -> None:
    make_project(project_dir, {"forward": FORWARD}, sink_connection(remote_sink.url))
    database = db.Database("postgres", url=private_pg.url)
    env = {"SEAMFLOW_LEASE": "3s"}
    api = Server(project_dir, database=database, role="api", env=env)
    worker = Server(project_dir, database=database, role="worker", env=env)
    await api.start()
    await worker.start()
    accepted: dict[str, str] = {}
    try:
        async with httpx.AsyncClient(base_url=api.url, timeout=10) as client:
            numbers = list(range(600))
            load = asyncio.gather(*[fire(client, numbers[i::8], accepted) for i in range(8)])

            async def under_load() -> None:  # the restart comes while events are being accepted
                assert len(accepted) >= 50, len(accepted)

            await eventually(under_load, timeout=30)
            await asyncio.to_thread(private_pg.restart)
            await load
            missing = [n for n in numbers if f"SO-{n:05d}" not in accepted]
            assert missing or len(accepted) == len(numbers)
            await fire(client, missing, accepted)  # refused while the database was away: sent again
        assert len(accepted) == len(numbers)

        async def all_finished() -> None:
            rows = dict(database.query("SELECT status, COUNT(*) FROM runs GROUP BY status"))
            assert rows == {"completed": len(numbers)}, rows

        await eventually(all_finished, timeout=90, interval=0.5)
    finally:
        api.kill()
        worker.kill()
    stats = await remote_sink.stats()
    assert stats["effects"] == len(numbers), stats
    doubled = database.query(
        "SELECT run_id, path, COUNT(*) FROM journal WHERE status = 'completed' GROUP BY run_id, path"
        " HAVING COUNT(*) > 1"
    )
    assert doubled == []
