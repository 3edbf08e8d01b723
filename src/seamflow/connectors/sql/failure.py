"""Driver errors sorted into Transient (retry with the same key) and Permanent (dead letter).

Messages come from the driver's own error, never from SQLAlchemy's, whose text carries the
statement's parameters; registered secrets are masked by `errors.redact`.
"""

from __future__ import annotations

import sqlite3

import psycopg
import pymysql
import sqlalchemy

from seamflow import errors

__all__ = ["classify"]

_PG_TRANSIENT_CLASSES = ("08", "53", "57", "58")
"""Connection exceptions, insufficient resources, operator intervention (incl. statement timeout), system errors."""
_PG_TRANSIENT = {"40001", "40P01", "55P03", "55006"}
"""Serialization failure, deadlock, lock not available, object in use."""
_MYSQL_TRANSIENT = {
    1040,  # too many connections
    1053,  # server shutdown in progress
    1205,  # lock wait timeout
    1213,  # deadlock
    1317,  # query interrupted
    1969,  # MariaDB: max_statement_time exceeded
    2002,  # can't connect through socket
    2003,  # can't connect to server
    2006,  # server has gone away
    2013,  # lost connection during query
    3024,  # MySQL: max_execution_time exceeded
}
_SQLITE_TRANSIENT = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL}


def classify(exc: Exception, where: str) -> errors.ConnectorError:
    """Return the Transient or Permanent error for a failure of SQLAlchemy or the driver."""
    if isinstance(exc, sqlalchemy.exc.TimeoutError):
        return errors.Transient("no free database connection in the pool in time", where=where)
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        return _from_driver(exc, where)
    if isinstance(exc, sqlalchemy.exc.SQLAlchemyError):
        return errors.Permanent(f"{type(exc).__name__}: {_first_line(exc)}", where=where)
    return errors.Permanent(f"{type(exc).__name__}: {errors.redact(str(exc), 300)}", where=where)


def _from_driver(exc: sqlalchemy.exc.DBAPIError, where: str) -> errors.ConnectorError:
    orig = exc.orig
    message = f"{type(orig).__name__}: {_first_line(orig)}{_names(orig)}"
    if exc.connection_invalidated or _is_transient(exc):
        return errors.Transient(message, where=where)
    return errors.Permanent(message, where=where)


def _is_transient(exc: sqlalchemy.exc.DBAPIError) -> bool:
    orig = exc.orig
    if isinstance(orig, psycopg.Error) and orig.sqlstate is not None:
        state = orig.sqlstate
        return state in _PG_TRANSIENT or (state.startswith(_PG_TRANSIENT_CLASSES) and state != "57P04")
    if isinstance(orig, sqlite3.Error) and orig.sqlite_errorcode is not None:
        return orig.sqlite_errorcode & 0xFF in _SQLITE_TRANSIENT  # the low byte is the primary result code
    if isinstance(orig, pymysql.err.Error) and orig.args and isinstance(orig.args[0], int):
        return orig.args[0] in _MYSQL_TRANSIENT or 2000 <= orig.args[0] < 3000  # 2xxx: client-side errors
    # No code: the driver failed before the server answered (e.g. connection refused).
    return isinstance(exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError)


def _names(orig: BaseException | None) -> str:
    """The table, column and constraint PostgreSQL names in its diagnostics."""
    diag = getattr(orig, "diag", None)
    if diag is None:
        return ""
    parts = [
        f"{label} {value!r}"
        for label, value in (
            ("table", diag.table_name),
            ("column", diag.column_name),
            ("constraint", diag.constraint_name),
        )
        if value
    ]
    detail = f"; {_shown(diag.message_detail, 200)}" if diag.message_detail else ""
    return (f" ({', '.join(parts)})" if parts else "") + detail


def _first_line(exc: BaseException | None) -> str:
    """The driver's message: its first line, secrets masked, at most 300 characters."""
    args: tuple[object, ...] = getattr(exc, "args", ())
    if isinstance(exc, pymysql.err.Error) and len(args) == 2 and isinstance(args[0], int):
        text = f"{args[1]} (error {args[0]})"
    else:
        lines = str(exc).strip().splitlines()
        text = lines[0] if lines else type(exc).__name__
    return _shown(text, 300)


def _shown(text: str, limit: int) -> str:
    """`text` through `errors.redact`, without the quotes it adds."""
    shown = errors.redact(text, limit)
    return shown[1:-1] if len(shown) >= 2 and shown[0] == shown[-1] and shown[0] in "'\"" else shown.lstrip("'\"")
