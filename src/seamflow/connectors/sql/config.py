"""The settings of a `sql` connection and the engine (with its connection pool) built from them.

The URL carries the password: it is a SecretStr, its password is registered with
`redact.register`, and no message built here quotes it.
"""

from __future__ import annotations

import socket
from datetime import timedelta
from typing import Any
from urllib.parse import quote, quote_plus

import psycopg
import pymysql
import sqlalchemy
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from sqlalchemy.engine import URL, Engine, make_url

from seamflow import errors, redact
from seamflow.connectors.base import Connection, parse_config
from seamflow.connectors.guard import Outbound, resolve_checked_blocking

__all__ = ["SqlConfig", "open_engine"]

_DRIVERS = {
    "sqlite": "sqlite",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}
"""Backend → the driver used when the URL names none (the ones Seamflow installs)."""


class SqlConfig(BaseModel):
    """The settings of a `sql` connection in `connections.yaml`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    url: SecretStr
    """`sqlite:///path.db`, `postgresql+psycopg://user:pw@host/db` or `mysql+pymysql://user:pw@host/db`."""
    pool_size: int = Field(5, ge=1, le=100)
    """Database connections kept open; also the most calls in flight on this connection."""
    statement_timeout: timedelta | None = None
    """Longest a statement may run on the server (PostgreSQL, MariaDB); by default the connection's timeout."""


def open_engine(connection: Connection) -> tuple[Engine, SqlConfig]:
    """Validate the connection's config and build its engine; no database connection is made yet.

    Raises:
        errors.InvalidInput: the config or URL is wrong; names the connection, never the URL.
    """
    config = _validate(connection)
    raw = config.url.get_secret_value()
    redact.register(raw)
    try:
        url = make_url(raw)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        raise _invalid(connection, "url is not a database URL (dialect+driver://user:password@host/database)") from None
    if url.password:
        password = str(url.password)
        for form in (password, quote(password, safe=""), quote_plus(password)):
            redact.register(form)
    backend = url.get_backend_name()
    if backend not in _DRIVERS:
        raise _invalid(connection, f"url names the database {backend!r}; expected sqlite, postgresql, mysql or mariadb")
    if "+" not in url.drivername:
        url = url.set(drivername=_DRIVERS[backend])
    timeout = config.statement_timeout or connection.timeout
    try:
        engine = sqlalchemy.create_engine(
            url,
            pool_size=config.pool_size,
            max_overflow=0,
            pool_timeout=connection.timeout.total_seconds(),
            pool_pre_ping=True,  # a connection the server closed while idle is replaced, not reported
            hide_parameters=True,  # values stay out of SQLAlchemy's logs and messages
            connect_args=_connect_args(url, connection.timeout, timeout),
        )
    except (sqlalchemy.exc.SQLAlchemyError, ImportError, TypeError, ValueError) as exc:
        raise _invalid(connection, f"cannot use the url: {type(exc).__name__}: {errors.redact(str(exc))}") from None
    if url.get_backend_name() in ("mysql", "mariadb"):
        _stop_long_statements(engine, timeout)
    if backend != "sqlite":
        _pin_connections(engine, connection.outbound, connection.name, backend)
    return engine, config


def _pin_connections(engine: Engine, outbound: Outbound, where: str, backend: str) -> None:
    """Check the database host through the outbound guard before each new connection, and pin it.

    PostgreSQL gets the checked address as `hostaddr` (libpq connects there and keeps `host` for
    TLS); PyMySQL gets it as `host`. A Unix socket path is not a network address: not checked.
    """
    default_port = 5432 if backend == "postgresql" else 3306

    @sqlalchemy.event.listens_for(engine, "do_connect")
    def _pin(_dialect: Any, _record: Any, _cargs: Any, params: dict[str, Any]) -> None:
        host = params.get("host")
        if not isinstance(host, str) or not host or host.startswith("/"):
            return
        port = int(params.get("port") or default_port)
        try:
            address = str(resolve_checked_blocking(outbound, host, port, where)[0])
        except socket.gaierror as exc:  # as the driver says it, so that it is classified as before
            raise _unresolved(backend, host, port, exc) from None
        params["hostaddr" if backend == "postgresql" else "host"] = address


def _unresolved(backend: str, host: str, port: int, exc: socket.gaierror) -> Exception:
    """The error the database driver raises for a host name that does not resolve."""
    if backend == "postgresql":
        return psycopg.OperationalError(f'failed to resolve host "{host}": {exc.strerror}')
    return pymysql.err.OperationalError(2003, f"Can't connect to MySQL server on {host!r} ({exc})")


def _connect_args(url: URL, connect: timedelta, statement: timedelta) -> dict[str, Any]:
    """Driver options that bound connecting and each statement."""
    connect_s = max(1, round(connect.total_seconds()))
    statement_s = max(1.0, statement.total_seconds())
    backend = url.get_backend_name()
    if backend == "sqlite":
        return {"timeout": statement_s}  # how long to wait for another writer's lock
    if backend == "postgresql":
        return {"connect_timeout": connect_s, "options": f"-c statement_timeout={round(statement_s * 1000)}"}
    # pymysql: read_timeout bounds waiting for each answer; `_stop_long_statements` stops them on the server.
    return {"connect_timeout": connect_s, "read_timeout": statement_s + 1, "write_timeout": statement_s + 1}


def _stop_long_statements(engine: Engine, statement: timedelta) -> None:
    """On MariaDB, let the server stop a statement running longer than `statement` (MySQL has no equivalent)."""
    seconds = max(1.0, statement.total_seconds())

    @sqlalchemy.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        if "mariadb" in str(dbapi_connection.get_server_info()).lower():
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SET SESSION max_statement_time = %s", (seconds,))


def _validate(connection: Connection) -> SqlConfig:
    return parse_config(SqlConfig, connection)


def _invalid(connection: Connection, problem: str) -> errors.InvalidInput:
    return errors.InvalidInput(
        f"connection {connection.name!r} has an invalid sql config: {problem}", code="connection.invalid"
    )
