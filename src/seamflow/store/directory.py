"""Durable state of the directory: departments, positions, users, sign-in failures, API tokens, sessions.

The directory capability decides (what is valid, when a user is locked out); the store keeps.
`replace_directory_entries` writes a whole import in one transaction, so a bad file stores nothing;
`update_sign_in` runs the lockout decision on a user's row inside one write transaction (the
row is locked on PostgreSQL), so failures counted by two processes add up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from seamflow import clock, codec, errors
from seamflow.store.rows import Conn, Rows, from_ms, to_ms

__all__ = [
    "DirectoryEntries",
    "DirectoryOps",
    "SignInState",
    "StoredDepartment",
    "StoredPosition",
    "StoredSession",
    "StoredToken",
    "StoredUser",
]


@dataclass(frozen=True, slots=True)
class StoredDepartment:
    """A row of `departments`: a node of the department tree."""

    id: str
    name: str
    parent_id: str | None = None
    head_login: str | None = None
    is_head_kept: bool = False
    """On a write: keep the stored head (the writer did not say), rather than set `head_login`."""


@dataclass(frozen=True, slots=True)
class StoredPosition:
    """A row of `positions`: a job that approval routing can ask for (finance director, buyer)."""

    id: str
    name: str


@dataclass(frozen=True, slots=True)
class StoredUser:
    """A row of `users` with its positions; the password hash is never part of it."""

    login: str
    display_name: str
    email: str | None = None
    mobile: str | None = None
    department_id: str | None = None
    manager_login: str | None = None
    is_active: bool = True
    roles: tuple[str, ...] | None = ()
    """None on a write: keep the stored roles (a new user gets none)."""
    positions: tuple[str, ...] | None = ()
    """None on a write: keep the stored positions."""
    has_password: bool = False
    im_ids: Mapping[str, str] = field(default_factory=dict)
    """The user's ids on IM platforms (`dingtalk`, `wecom`, `feishu`); a platform not named uses the login."""


@dataclass(frozen=True, slots=True)
class SignInState:
    """A user's password and recent sign-in failures, as the lockout decision sees them."""

    password_hash: str | None
    failures: int
    first_failure: datetime | None
    locked_until: datetime | None
    is_active: bool


@dataclass(frozen=True, slots=True)
class StoredToken:
    """A row of `user_tokens`: a personal API token, known by the digest of its secret."""

    id: str
    login: str
    name: str
    scopes: tuple[str, ...]
    created: datetime
    expires: datetime | None
    last_used: datetime | None
    revoked: datetime | None
    targets: tuple[str, ...] = ()
    """The flows it is limited to (`flow:<id>`, `folder:<path>/`); empty: not limited."""


@dataclass(frozen=True, slots=True)
class StoredSession:
    """A row of `sessions`: a console sign-in, known by the digest of its cookie."""

    login: str
    created: datetime
    expires: datetime
    revoked: datetime | None


@dataclass(frozen=True, slots=True)
class DirectoryEntries:
    """What one import or one API call writes, in one transaction."""

    departments: Sequence[StoredDepartment] = field(default_factory=tuple)
    positions: Sequence[StoredPosition] = field(default_factory=tuple)
    users: Sequence[StoredUser] = field(default_factory=tuple)


_USER_COLUMNS = (
    "login, display_name, email, mobile, department_id, manager_login, is_active, roles, password_hash, im_ids"
)
_TOKEN_COLUMNS = "id, login, name, scopes, created_ms, expires_ms, last_used_ms, revoked_ms, targets"  # noqa: S105 - column names


class DirectoryOps(Rows):
    """Departments, positions, users, tokens and sessions; see the module docstring."""

    # -- departments, positions, users ----------------------------------------------------------
    async def save_directory_entries(self, entries: DirectoryEntries) -> None:
        """Insert or update (by id / login) every department, position and user given; one commit.

        A user's positions are replaced by those given; password and sign-in failures are kept.
        """

        def unit(conn: Conn) -> None:
            now = to_ms(clock.now())
            for d in entries.departments:
                self._save_department(conn, d, now)
            for p in entries.positions:
                self._x(
                    conn,
                    "INSERT INTO positions (id, name, updated_ms) VALUES (?, ?, ?)"
                    " ON CONFLICT (id) DO UPDATE SET name = excluded.name, updated_ms = excluded.updated_ms",
                    (p.id, p.name, now),
                )
            for u in entries.users:
                self._save_user(conn, u, now)

        await self._write(unit)

    def _save_department(self, conn: Conn, d: StoredDepartment, now: int) -> None:
        insert = "INSERT INTO departments (id, name, parent_id, head_login, updated_ms) VALUES (?, ?, ?, ?, ?)"
        update = " ON CONFLICT (id) DO UPDATE SET name = excluded.name, parent_id = excluded.parent_id,"
        if d.is_head_kept:
            self._x(conn, insert + update + " updated_ms = excluded.updated_ms", (d.id, d.name, d.parent_id, None, now))
        else:
            self._x(
                conn,
                insert + update + " head_login = excluded.head_login, updated_ms = excluded.updated_ms",
                (d.id, d.name, d.parent_id, d.head_login, now),
            )

    def _save_user(self, conn: Conn, u: StoredUser, now: int) -> None:
        insert = (
            "INSERT INTO users (login, display_name, email, mobile, department_id, manager_login, is_active, im_ids,"
            " roles, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (login) DO UPDATE SET"
            " display_name = excluded.display_name, email = excluded.email, mobile = excluded.mobile,"
            " im_ids = excluded.im_ids,"
            " department_id = excluded.department_id, manager_login = excluded.manager_login,"
            " is_active = excluded.is_active, updated_ms = excluded.updated_ms"
        )
        roles = codec.dumps_text(list(u.roles or ()))
        im_ids = codec.dumps_text(dict(u.im_ids))
        person = (u.login, u.display_name, u.email, u.mobile, u.department_id, u.manager_login, int(u.is_active))
        values = (*person, im_ids)
        if u.roles is None:
            self._x(conn, insert, (*values, roles, now))
        else:
            self._x(conn, insert + ", roles = excluded.roles", (*values, roles, now))
        if u.positions is not None:
            self._x(conn, "DELETE FROM user_positions WHERE login = ?", (u.login,))
            for position in u.positions:
                self._x(conn, "INSERT INTO user_positions (login, position_id) VALUES (?, ?)", (u.login, position))

    async def delete_directory_entry(self, kind: str, key: str) -> bool:
        """Delete a department, position or user (`kind`) by id or login; False if there was none."""
        statements = {
            "department": "DELETE FROM departments WHERE id = ?",
            "position": "DELETE FROM positions WHERE id = ?",
            "user": "DELETE FROM users WHERE login = ?",
        }

        def unit(conn: Conn) -> bool:
            if kind == "user":
                self._x(conn, "DELETE FROM user_positions WHERE login = ?", (key,))
                self._x(conn, "UPDATE user_tokens SET revoked_ms = ? WHERE login = ?", (to_ms(clock.now()), key))
                self._x(conn, "UPDATE sessions SET revoked_ms = ? WHERE login = ?", (to_ms(clock.now()), key))
            elif kind == "position":
                self._x(conn, "DELETE FROM user_positions WHERE position_id = ?", (key,))
            return int(self._x(conn, statements[kind], (key,)).rowcount) == 1

        return await self._write(unit)

    async def list_departments(self) -> list[StoredDepartment]:
        def read(conn: Conn) -> list[StoredDepartment]:
            rows = self._x(conn, "SELECT id, name, parent_id, head_login FROM departments ORDER BY id").fetchall()
            return [StoredDepartment(*r) for r in rows]

        return await self._read(read)

    async def list_positions(self) -> list[StoredPosition]:
        def read(conn: Conn) -> list[StoredPosition]:
            return [StoredPosition(*r) for r in self._x(conn, "SELECT id, name FROM positions ORDER BY id")]

        return await self._read(read)

    async def list_users(self, login: str | None = None) -> list[StoredUser]:
        """Every user (or the one with `login`), ordered by login, with positions."""

        return await self._read(lambda conn: self._users(conn, login))

    def _users(self, conn: Conn, login: str | None) -> list[StoredUser]:
        where = " WHERE login = ?" if login is not None else ""
        params: tuple[Any, ...] = (login,) if login is not None else ()
        rows = self._x(conn, f"SELECT {_USER_COLUMNS} FROM users{where} ORDER BY login", params).fetchall()  # noqa: S608 - constants only
        held: dict[str, list[str]] = {}
        sql = f"SELECT login, position_id FROM user_positions{where} ORDER BY position_id"  # noqa: S608 - constants only
        for who, position in self._x(conn, sql, params).fetchall():
            held.setdefault(who, []).append(position)
        return [_user(r, tuple(held.get(r[0], ()))) for r in rows]

    # -- passwords and lockout ------------------------------------------------------------------
    async def set_password_hash(self, login: str, password_hash: str) -> bool:
        """Store a user's new password hash and clear their failures and lockout; False if no such user."""

        def unit(conn: Conn) -> bool:
            cursor = self._x(
                conn,
                "UPDATE users SET password_hash = ?, failed_sign_ins = 0, first_failure_ms = NULL,"
                " locked_until_ms = NULL WHERE login = ?",
                (password_hash, login),
            )
            return int(cursor.rowcount) == 1

        return await self._write(unit)

    async def get_sign_in_state(self, login: str) -> SignInState | None:
        """A user's password hash and failures as they are now, or None if there is no such user."""

        def read(conn: Conn) -> SignInState | None:
            return self._sign_in_state(conn, login, "")

        return await self._read(read)

    def _sign_in_state(self, conn: Conn, login: str, lock: str) -> SignInState | None:
        row = self._x(
            conn,
            "SELECT password_hash, failed_sign_ins, first_failure_ms, locked_until_ms, is_active FROM users"  # noqa: S608 - constants only
            " WHERE login = ?" + lock,
            (login,),
        ).fetchone()
        return None if row is None else SignInState(row[0], int(row[1]), from_ms(row[2]), from_ms(row[3]), bool(row[4]))

    async def update_sign_in(self, login: str, decide: Callable[[SignInState], SignInState]) -> SignInState | None:
        """Load a user's sign-in state, let `decide` change it, store the result; one commit.

        Returns:
            The state `decide` returned, or None if there is no such user.
        """

        def unit(conn: Conn) -> SignInState | None:
            old = self._sign_in_state(conn, login, self._FOR_UPDATE)
            if old is None:
                return None
            new = decide(old)
            if new != old:
                self._x(
                    conn,
                    "UPDATE users SET failed_sign_ins = ?, first_failure_ms = ?, locked_until_ms = ? WHERE login = ?",
                    (new.failures, _ms(new.first_failure), _ms(new.locked_until), login),
                )
            return new

        return await self._write(unit)

    # -- personal API tokens --------------------------------------------------------------------
    async def add_user_token(self, token: StoredToken, token_hash: str) -> None:
        def unit(conn: Conn) -> None:
            self._x(
                conn,
                "INSERT INTO user_tokens (id, login, name, hash, scopes, created_ms, expires_ms, targets)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    token.id,
                    token.login,
                    token.name,
                    token_hash,
                    ",".join(token.scopes),
                    to_ms(token.created),
                    _ms(token.expires),
                    ",".join(token.targets),
                ),
            )

        await self._write(unit)

    async def find_token_holder(self, token_hash: str) -> tuple[StoredToken, StoredUser | None] | None:
        """A personal API token and its user (None if the user is gone), in one read: what
        authorising a request needs; None if no token has that hash."""

        def read(conn: Conn) -> tuple[StoredToken, StoredUser | None] | None:
            row = self._x(conn, f"SELECT {_TOKEN_COLUMNS} FROM user_tokens WHERE hash = ?", (token_hash,)).fetchone()  # noqa: S608 - constants only
            if row is None:
                return None
            token = _token(row)
            users = self._users(conn, token.login)
            return token, users[0] if users else None

        return await self._read(read)

    async def list_user_tokens(self, login: str | None) -> list[StoredToken]:
        def read(conn: Conn) -> list[StoredToken]:
            if login is None:
                rows = self._x(conn, f"SELECT {_TOKEN_COLUMNS} FROM user_tokens ORDER BY created_ms, id")  # noqa: S608 - constants only
            else:
                rows = self._x(
                    conn,
                    f"SELECT {_TOKEN_COLUMNS} FROM user_tokens WHERE login = ? ORDER BY created_ms, id",  # noqa: S608 - constants only
                    (login,),
                )
            return [_token(r) for r in rows.fetchall()]

        return await self._read(read)

    async def revoke_user_token(self, token_id: str, at: datetime) -> StoredToken:
        """Mark a token revoked (once; revoking again keeps the first instant).

        Raises:
            errors.NotFound: no token has that id.
        """

        def unit(conn: Conn) -> StoredToken:
            self._x(
                conn, "UPDATE user_tokens SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL", (to_ms(at), token_id)
            )
            row = self._x(conn, f"SELECT {_TOKEN_COLUMNS} FROM user_tokens WHERE id = ?", (token_id,)).fetchone()  # noqa: S608 - constants only
            if row is None:
                raise errors.NotFound(f"API token {token_id!r} does not exist", code="directory.token_not_found")
            return _token(row)

        return await self._write(unit)

    async def note_token_used(self, token_id: str, at: datetime) -> None:
        def unit(conn: Conn) -> None:
            self._x(conn, "UPDATE user_tokens SET last_used_ms = ? WHERE id = ?", (to_ms(at), token_id))

        await self._write(unit)

    # -- console sessions -----------------------------------------------------------------------
    async def add_session(self, session_hash: str, session: StoredSession) -> None:
        def unit(conn: Conn) -> None:
            self._x(
                conn,
                "INSERT INTO sessions (hash, login, created_ms, expires_ms) VALUES (?, ?, ?, ?)",
                (session_hash, session.login, to_ms(session.created), to_ms(session.expires)),
            )

        await self._write(unit)

    async def find_session(self, session_hash: str) -> StoredSession | None:
        def read(conn: Conn) -> StoredSession | None:
            row = self._x(
                conn, "SELECT login, created_ms, expires_ms, revoked_ms FROM sessions WHERE hash = ?", (session_hash,)
            ).fetchone()
            if row is None:
                return None
            return StoredSession(row[0], from_ms(row[1]), from_ms(row[2]), from_ms(row[3]))  # type: ignore[arg-type]  # NOT NULL

        return await self._read(read)

    async def revoke_session(self, session_hash: str, at: datetime) -> None:
        def unit(conn: Conn) -> None:
            self._x(
                conn,
                "UPDATE sessions SET revoked_ms = ? WHERE hash = ? AND revoked_ms IS NULL",
                (to_ms(at), session_hash),
            )

        await self._write(unit)


def _ms(instant: datetime | None) -> int | None:
    return None if instant is None else to_ms(instant)


def _user(row: Any, positions: tuple[str, ...]) -> StoredUser:
    roles = codec.loads(row[7])
    assert isinstance(roles, list)
    return StoredUser(
        login=row[0],
        display_name=row[1],
        email=row[2],
        mobile=row[3],
        department_id=row[4],
        manager_login=row[5],
        is_active=bool(row[6]),
        roles=tuple(str(r) for r in roles),
        positions=positions,
        has_password=row[8] is not None,
        im_ids=_im_ids(row[9]),
    )


def _im_ids(text: str | None) -> dict[str, str]:
    value = codec.loads(text) if text else {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _token(row: Any) -> StoredToken:
    return StoredToken(
        id=row[0],
        login=row[1],
        name=row[2],
        scopes=tuple(s for s in str(row[3]).split(",") if s),
        created=from_ms(row[4]),  # type: ignore[arg-type]  # NOT NULL column
        expires=from_ms(row[5]),
        last_used=from_ms(row[6]),
        revoked=from_ms(row[7]),
        targets=tuple(t for t in str(row[8] or "").split(",") if t),
    )
