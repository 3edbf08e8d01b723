"""Proving that a `sql` connection works (`seamflow connections test`), and saying in words why it does not.

A failed connection attempt is sorted into what a person can act on: the host name does not
resolve, nothing accepts connections at host:port, the user or password was refused, the
database does not exist, or TLS failed. Messages name the host, port, user and database,
never the password or the URL.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psycopg
import pymysql
import sqlalchemy
from sqlalchemy.engine import URL

from seamflow import errors

__all__ = ["Failure", "FailureKind", "check_connection", "describe_failure"]

_DNS = (
    "failed to resolve host",
    "could not translate host name",
    "name or service not known",
    "temporary failure in name resolution",
    "nodename nor servname",
    "no address associated with hostname",
    "errno -2]",
    "errno -3]",
    "errno -5]",
)
_REFUSED = ("connection refused", "errno 111]", "no route to host", "network is unreachable")
_TIMEOUT = ("timeout expired", "timed out")
_AUTH = ("password authentication failed", 'role "', "no pg_hba.conf entry", "authentication failed")
_TLS = ("ssl", "tls", "certificate")
_PG_AUTH_STATES = {"28000", "28P01"}
_MYSQL_AUTH = {1044, 1045, 1698, 1251}  # access denied (to database / for user), plugin auth refused
_MYSQL_NO_DATABASE = 1049
_MYSQL_TLS = {2026}


FailureKind = Literal["dns", "refused", "authentication", "database", "tls", "timeout", "other"]


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a connection attempt failed: its kind and, in words, what a person can check."""

    kind: FailureKind
    words: str

    @property
    def is_settings(self) -> bool:
        """The connection's settings are wrong (user, password, database, TLS): retrying cannot help."""
        return self.kind in ("authentication", "database", "tls")


def check_connection(engine: sqlalchemy.Engine, where: str) -> str:
    """Connect and run a trivial query; return what was reached (blocking: runs in a worker thread).

    Raises:
        errors.Permanent: the connection failed for a reason a person must fix (see `describe_failure`).
        errors.Transient: the server did not answer in time.
    """
    url = engine.url
    if url.get_backend_name() == "sqlite":
        return _check_sqlite(engine, where)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                statement = "SELECT current_setting('server_version'), current_user, current_database()"
                product = "PostgreSQL"
            else:
                statement = "SELECT VERSION(), CURRENT_USER(), DATABASE()"
                product = "MySQL/MariaDB"
            version, user, database = conn.exec_driver_sql(statement).one()
    except sqlalchemy.exc.DBAPIError as exc:
        failure = describe_failure(exc.orig, url)
        kind = errors.Transient if failure.kind == "timeout" else errors.Permanent
        raise kind(failure.words, where=where) from None
    if "mariadb" in str(version).lower():
        product = "MariaDB"
    number = re.match(r"[0-9.]*", str(version))
    return f"connected to {product} {number.group() if number else version} as {user}, database {database}"


def describe_failure(orig: BaseException | None, url: URL) -> Failure:
    """Say why connecting to `url` failed, from the driver's error; never the password or the URL."""
    at = f"{url.host or 'localhost'}:{url.port or _default_port(url)}"
    code = orig.args[0] if isinstance(orig, pymysql.err.Error) and orig.args else None
    state = orig.sqlstate if isinstance(orig, psycopg.Error) else None
    text = str(orig).lower()
    detail = _detail(orig)
    if code == _MYSQL_NO_DATABASE or state == "3D000" or ('database "' in text and "does not exist" in text):
        return Failure("database", f"the database {url.database!r} does not exist on {at}")
    if code in _MYSQL_AUTH or state in _PG_AUTH_STATES or any(s in text for s in _AUTH):
        return Failure(
            "authentication",
            f"the server at {at} refused user {url.username!r}: wrong user name or password, "
            f"or the user may not connect from here ({detail})",
        )
    if any(s in text for s in _DNS):
        return Failure("dns", f"the host name {url.host!r} does not resolve (DNS): check the host in the url")
    if any(s in text for s in _REFUSED):
        return Failure(
            "refused", f"the connection to {at} was refused: no database server listens there, or a firewall refuses"
        )
    if code in _MYSQL_TLS or any(s in text for s in _TLS):
        return Failure("tls", f"TLS failed with the server at {at}: {detail}")
    if any(s in text for s in _TIMEOUT):
        return Failure("timeout", f"the server at {at} did not answer in time")
    return Failure("other", f"connecting to {at} failed: {detail}")


def _check_sqlite(engine: sqlalchemy.Engine, where: str) -> str:
    database = engine.url.database or ""
    if database and database != ":memory:" and not database.startswith("file:") and not Path(database).is_file():
        raise errors.Permanent(f"the SQLite database file {database!r} does not exist", where=where)
    try:
        with engine.connect() as conn:
            version = conn.exec_driver_sql("SELECT sqlite_version()").scalar_one()
            conn.exec_driver_sql("SELECT COUNT(*) FROM sqlite_master").scalar_one()  # reads the file's header
    except sqlalchemy.exc.DBAPIError as exc:
        orig = exc.orig
        words = _detail(orig) if isinstance(orig, sqlite3.Error) else type(orig).__name__
        raise errors.Permanent(f"the SQLite database {database!r} cannot be read: {words}", where=where) from None
    return f"opened SQLite {version} database {database}"


def _default_port(url: URL) -> int:
    return 5432 if url.get_backend_name() == "postgresql" else 3306


def _detail(orig: BaseException | None) -> str:
    """The driver's own words: its last meaningful line, secrets masked."""
    if isinstance(orig, pymysql.err.Error) and len(orig.args) == 2:
        text = str(orig.args[1])
    else:
        lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
        text = lines[0] if lines else type(orig).__name__
        text = text.rsplit(" failed: ", 1)[-1]  # libpq: "connection to server at "h", port p failed: <why>"
        text = text.removeprefix("FATAL:").strip()
    shown = errors.redact(text, 200)
    return shown[1:-1] if len(shown) >= 2 and shown[0] == shown[-1] and shown[0] in "'\"" else shown
