"""`SqlConnector.check` against real SQLite, PostgreSQL and MariaDB servers: what was reached, or
why not in words — DNS, refused, credentials, missing database, TLS — never the password or URL.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy

from seamflow import errors
from seamflow.connectors.base import Connection
from seamflow.connectors.sql import SqlConnector
from tests.integration.connectors.test_sql import MARIADB, PASSWORD, POSTGRES, _admin, socket_free_port

SERVERS = {"postgresql": POSTGRES, "mariadb": MARIADB}


@pytest.fixture(params=["postgresql", "mariadb"])
def server(request: pytest.FixtureRequest) -> Iterator[sqlalchemy.URL]:
    """The admin URL of a reachable server (skipped, with the reason, when it cannot be reached)."""
    url = sqlalchemy.make_url(SERVERS[request.param])
    engine = _admin(url.render_as_string(hide_password=False))
    try:
        with engine.connect():
            pass
    except sqlalchemy.exc.OperationalError as exc:
        pytest.skip(f"{request.param} at {url.host} is not reachable: {type(exc.orig).__name__}")
    finally:
        engine.dispose()
    yield url


async def checked(url: sqlalchemy.URL | str) -> str:
    text = url.render_as_string(hide_password=False) if isinstance(url, sqlalchemy.URL) else url
    connector = SqlConnector()
    await connector.open(Connection(name="erp", connector="sql", config={"url": text}, timeout=timedelta(seconds=5)))
    try:
        return await connector.check()
    finally:
        await connector.close()


async def refused(url: sqlalchemy.URL, caplog: pytest.LogCaptureFixture) -> str:
    """The message of the Permanent error `check` raises; it must hold neither the password nor the URL."""
    caplog.set_level(logging.DEBUG)
    with pytest.raises(errors.Permanent) as caught:
        await checked(url)
    message = str(caught.value)
    assert message.startswith("erp.check: ")
    assert PASSWORD not in message and PASSWORD not in caplog.text
    assert url.render_as_string(hide_password=False) not in message and "://" not in message
    return message


async def test_check_says_what_it_reached(server: sqlalchemy.URL) -> None:
    database = "postgres" if server.get_backend_name() == "postgresql" else "test"
    answer = await checked(server.set(database=database))
    product = "PostgreSQL" if server.get_backend_name() == "postgresql" else "MariaDB"
    assert re.fullmatch(rf"connected to {product} \d+\.\d+(\.\d+)? as \S+, database {database}", answer), answer


async def test_check_a_host_name_that_does_not_resolve(
    server: sqlalchemy.URL, caplog: pytest.LogCaptureFixture
) -> None:
    message = await refused(server.set(host="nonexistent.invalid", password=PASSWORD), caplog)
    assert "host name 'nonexistent.invalid' does not resolve (DNS)" in message


async def test_check_a_refused_connection(server: sqlalchemy.URL, caplog: pytest.LogCaptureFixture) -> None:
    with socket_free_port() as port:
        message = await refused(server.set(port=port, password=PASSWORD), caplog)
    assert f"the connection to 127.0.0.1:{port} was refused" in message


async def test_check_a_database_that_does_not_exist(server: sqlalchemy.URL, caplog: pytest.LogCaptureFixture) -> None:
    name = f"sf_missing_{uuid.uuid4().hex[:8]}"
    message = await refused(server.set(database=name, password=PASSWORD if server.username != "root" else None), caplog)
    assert f"the database '{name}' does not exist" in message


async def test_check_refused_credentials(server: sqlalchemy.URL, caplog: pytest.LogCaptureFixture) -> None:
    if server.get_backend_name() == "postgresql":
        # The test server trusts every local login, whatever the password: an unknown user is what it refuses.
        wrong = server.set(username=f"sf_nobody_{uuid.uuid4().hex[:6]}", password=PASSWORD, database="postgres")
    else:
        wrong = server.set(password=PASSWORD, database="test")  # root has an empty password here
    message = await refused(wrong, caplog)
    assert f"refused user {wrong.username!r}: wrong user name or password" in message


async def test_check_a_tls_problem(server: sqlalchemy.URL, caplog: pytest.LogCaptureFixture) -> None:
    if server.get_backend_name() == "postgresql":
        tls = server.set(password=PASSWORD, database="postgres", query={"sslmode": "require"})
    else:
        tls = server.set(password=PASSWORD, database="test", query={"ssl_verify_cert": "true"})
    try:
        answer = await checked(tls)
    except errors.Permanent as exc:
        assert "TLS failed with the server at 127.0.0.1" in str(exc)
        assert PASSWORD not in str(exc)
    else:
        pytest.skip(f"the test server speaks TLS, so requiring it succeeds: {answer}")


async def test_check_a_missing_sqlite_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(errors.Permanent, match=r"the SQLite database file .*missing\.db' does not exist"):
        await checked(f"sqlite:///{tmp_path / 'missing.db'}")
    assert not (tmp_path / "missing.db").exists()
    (tmp_path / "there.db").touch()
    assert (await checked(f"sqlite:///{tmp_path / 'there.db'}")).startswith("opened SQLite 3.")
