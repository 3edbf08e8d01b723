"""The directory service: keeping users, departments and positions, and telling who a request is.

It is also the built-in `directory` connection, so a flow can sync an external directory
(DingTalk's department and user lists) with `directory.upsert_department` and
`directory.upsert_user` steps: upserts by key, so a retry with the same input has one effect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from seamflow import clock, connectors, errors, ids, store
from seamflow.directory import credentials, grants, references
from seamflow.directory.credentials import LockoutPolicy
from seamflow.directory.importing import DirectoryFile
from seamflow.directory.model import DepartmentEntry, PositionEntry, Role, Scope, UserEntry, scopes_of
from seamflow.directory.principal import Principal
from seamflow.directory.token_cache import TOKEN_CACHE_TTL, TokenCache
from seamflow.errors import Location, Problem
from seamflow.ids import Json

__all__ = ["Directory", "IssuedSession", "IssuedToken"]


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A personal API token just created; `secret` is shown this once and never again."""

    secret: str
    token: store.StoredToken


@dataclass(frozen=True, slots=True)
class IssuedSession:
    """A console session just started; `secret` goes into the session cookie only."""

    secret: str
    expires: datetime


_LAST_USED_PRECISION = timedelta(minutes=1)
"""How stale a token's `last_used` may be: a script calling the API in a loop costs no write per call."""


class _NoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Directory:
    """Users, departments, positions, passwords, personal API tokens and sessions over a `store.DirectoryStore`.

    Args:
        db: where the directory is kept; None only for the connector class's other uses
            (`seamflow connections test`), which have no store: then every operation says so.
        lockout: when wrong passwords lock a user out.
        session_ttl: how long a console session lasts.
        flows_root: the project's flows folder, which `folder:` grants name paths in.
        token_cache_ttl: how long a checked personal API token is believed without reading the
            store again (`directory.token_cache`): how late another process's revocation takes effect.
    """

    kind: ClassVar[str] = "directory"
    Config: ClassVar[type[BaseModel]] = _NoConfig
    actions: ClassVar[Mapping[str, connectors.Action]] = {
        "upsert_user": connectors.Action(
            "upsert_user", UserEntry, "Create or update a user by login (positions and roles replaced).", True
        ),
        "upsert_department": connectors.Action(
            "upsert_department", DepartmentEntry, "Create or update a department by id.", True
        ),
    }

    def __init__(
        self,
        db: store.DirectoryStore | None = None,
        *,
        lockout: LockoutPolicy = LockoutPolicy(),  # noqa: B008 - frozen dataclass
        session_ttl: timedelta = timedelta(hours=8),
        flows_root: Path | None = None,
        token_cache_ttl: timedelta = TOKEN_CACHE_TTL,
    ) -> None:
        self._db = db
        self._known_tokens = TokenCache(token_cache_ttl)
        self.lockout = lockout
        self.session_ttl = session_ttl
        self.flows_root = flows_root
        """The project's flows folder: `folder:` grants are relative to it."""

    @property
    def db(self) -> store.DirectoryStore:
        """Where the directory is kept.

        Raises:
            errors.Permanent: `directory.unavailable` — this instance was made without a store.
        """
        if self._db is None:
            raise errors.Permanent(
                "the directory connection is served by a running Seamflow process (serve, worker),"
                " which writes to its own store; there is none here",
                code="directory.unavailable",
            )
        return self._db

    # -- the `directory` connection -------------------------------------------------------------
    async def open(self, connection: connectors.Connection) -> None:
        """Nothing to open: the directory lives in the store (which must be there)."""
        self.db  # noqa: B018 - raises when there is no store

    async def close(self) -> None:
        """Nothing to release."""

    async def call(self, action: str, params: Json, *, idempotency_key: str) -> Json:
        """`upsert_user` / `upsert_department`: validate, check references, store; the key makes it idempotent."""
        offered = self.actions.get(action)
        if offered is None:
            raise errors.Permanent(f"unknown action {action!r}; expected one of {', '.join(self.actions)}")
        try:
            entry = offered.input.model_validate(params)
        except ValidationError as exc:
            details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise errors.Permanent(details, where=f"directory.{action}", code="directory.invalid") from None
        try:
            if isinstance(entry, UserEntry):
                await self.save(users=[entry])
                return {"login": entry.login}
            assert isinstance(entry, DepartmentEntry)
            await self.save(departments=[entry])
            return {"id": entry.id}
        except errors.InvalidInput as exc:
            raise errors.Permanent(exc.message, where=f"directory.{action}", code="directory.invalid") from None

    # -- keeping the directory ------------------------------------------------------------------
    async def save(
        self,
        *,
        departments: Sequence[DepartmentEntry] = (),
        positions: Sequence[PositionEntry] = (),
        users: Sequence[UserEntry] = (),
        locate: references.Locate | None = None,
    ) -> None:
        """Upsert departments, positions and users together, after checking their references.

        Raises:
            errors.InvalidInput: `directory.invalid` — a reference that does not resolve (named,
                at `locate`'s place when given); nothing is stored.
        """
        known = references.Known(
            {d.id: d.parent_id for d in await self.db.list_departments()},
            {p.id for p in await self.db.list_positions()},
            {u.login: u.manager_login for u in await self.db.list_users()},
        )
        known.add(list(departments), list(positions), list(users))
        where = locate or (lambda section, index, field: Location(f"{section}[{index}]", path=field))
        problems = references.reference_problems(known, list(departments), list(users), where)
        if problems:
            raise _invalid(problems)
        entries = store.DirectoryEntries(
            departments=[
                store.StoredDepartment(d.id, d.name, d.parent, d.head, is_head_kept="head" not in d.model_fields_set)
                for d in departments
            ],
            positions=[store.StoredPosition(p.id, p.name) for p in positions],
            users=[_stored_user(u) for u in users],
        )
        await self.db.save_directory_entries(entries)
        self._known_tokens.clear()  # roles, departments or positions (and so grants) may have changed

    async def import_file(self, loaded: DirectoryFile) -> dict[str, int]:
        """Store a checked directory file in one transaction; returns how many rows of each section."""
        await self.save(
            departments=loaded.departments, positions=loaded.positions, users=loaded.users, locate=loaded.locate
        )
        return {"departments": len(loaded.departments), "positions": len(loaded.positions), "users": len(loaded.users)}

    async def user(self, login: str) -> store.StoredUser:
        """The user with `login`.

        Raises:
            errors.NotFound: `directory.user_not_found`.
        """
        found = await self.db.list_users(login)
        if not found:
            raise errors.NotFound(f"user {login!r} does not exist", code="directory.user_not_found")
        return found[0]

    async def delete(self, kind: str, key: str) -> None:
        """Delete a department, position or user; a user's tokens and sessions are revoked with it.

        Raises:
            errors.NotFound: `directory.not_found` — there is no such entry.
            errors.Conflict: `directory.in_use` — others still refer to it (named); nothing is deleted.
        """
        users = await self.db.list_users()
        departments = await self.db.list_departments()
        if kind == "user":
            using = [f"user {u.login!r} (manager)" for u in users if u.manager_login == key]
            using += [f"department {d.id!r} (head)" for d in departments if d.head_login == key]
        elif kind == "department":
            using = [f"user {u.login!r}" for u in users if u.department_id == key]
            using += [f"department {d.id!r} (parent)" for d in departments if d.parent_id == key]
        else:
            using = [f"user {u.login!r}" for u in users if key in (u.positions or ())]
        if using:
            shown = ", ".join(using[:10]) + (f" and {len(using) - 10} more" if len(using) > 10 else "")
            raise errors.Conflict(
                f"{kind} {key!r} is still referred to by {shown}; expected nothing to refer to it (change those first)",
                code="directory.in_use",
            )
        if not await self.db.delete_directory_entry(kind, key):
            raise errors.NotFound(f"{kind} {key!r} does not exist", code="directory.not_found")
        self._known_tokens.clear()

    # -- passwords and sessions -----------------------------------------------------------------
    async def set_password(self, login: str, password: str) -> None:
        """Set a user's password (argon2id) and lift any lockout.

        Raises:
            errors.InvalidInput: `directory.password_weak`.
            errors.NotFound: `directory.user_not_found`.
        """
        credentials.check_password_strength(password)
        password_hash = await asyncio.to_thread(credentials.hash_password, password)
        if not await self.db.set_password_hash(login, password_hash):
            raise errors.NotFound(f"user {login!r} does not exist", code="directory.user_not_found")

    async def sign_in(self, login: str, password: str) -> IssuedSession:
        """Check a password and start a console session; failures count towards a lockout.

        Raises:
            errors.Unauthorized: `auth.unauthorized` (unknown login, wrong password, inactive user)
                or `auth.locked` (too many failures: says until when).
        """
        now = clock.now()
        seen = await self.db.get_sign_in_state(login)
        if seen is not None and not _is_locked(seen, now):
            # argon2 is slow on purpose: checked here, off the event loop and outside the store's writer
            is_correct = await asyncio.to_thread(credentials.verify_password, seen.password_hash, password)
        else:
            await asyncio.to_thread(credentials.verify_password, None, password)  # as slow as a real check
            is_correct = False

        def decide(state: store.SignInState) -> store.SignInState:
            if _is_locked(state, now):
                return state
            # a password changed since it was checked counts as wrong
            ok = is_correct and state.is_active and state.password_hash == seen_hash
            return credentials.record_attempt(state, ok, now, self.lockout)

        seen_hash = seen.password_hash if seen is not None else None
        state = await self.db.update_sign_in(login, decide) if seen is not None else None
        if state is None:
            raise errors.Unauthorized("the login or the password is wrong")
        if _is_locked(state, now):
            until = state.locked_until.isoformat(timespec="seconds") if state.locked_until else ""
            raise errors.Unauthorized(
                f"too many failed sign-ins; {login!r} is locked until {until}", code="auth.locked"
            )
        if state.failures or not (is_correct and state.is_active):
            raise errors.Unauthorized("the login or the password is wrong")
        return await self.start_session(login)

    async def start_session(self, login: str) -> IssuedSession:
        """Start a console session for `login`, whose identity was checked (a password, an OIDC provider)."""
        now = clock.now()
        secret = credentials.new_secret(credentials.SESSION_PREFIX)
        expires = now + self.session_ttl
        await self.db.add_session(credentials.digest(secret), store.StoredSession(login, now, expires, None))
        return IssuedSession(secret, expires)

    async def sign_out(self, session_secret: str) -> None:
        """End a console session (again is harmless)."""
        await self.db.revoke_session(credentials.digest(session_secret), clock.now())

    # -- personal API tokens --------------------------------------------------------------------
    async def create_token(
        self,
        login: str,
        name: str,
        scopes: Sequence[Scope] | None = None,
        expires_in: timedelta | None = None,
        *,
        within: frozenset[Scope] | None = None,
        targets: Sequence[str] = (),
    ) -> IssuedToken:
        """Issue a personal API token; it never does more than its user's roles allow at the time of use.

        Args:
            login: whose token.
            name: what it is for (`ci deploy`).
            scopes: what it may do; default: everything the user's roles grant now (and `within` allows).
            expires_in: lifetime; None for a token that does not expire.
            within: the scopes of the credential asking, when users make their own tokens: a token
                limited to `read` cannot mint one that may `operate`.
            targets: the flows it is limited to (`flow:<id>`, `folder:<path>/`); empty: not limited.
                Scopes its user holds through grants work on the granted flows only.

        Raises:
            errors.NotFound: `directory.user_not_found`.
            errors.InvalidInput: `directory.scope_not_granted` — a scope the user's roles do not grant.
        """
        user = await self.user(login)
        limited_to = tuple(dict.fromkeys(grants.check_target(t) for t in targets))
        # a scope held only through grants is usable on the granted flows only (`Principal.scopes_on`)
        held = scopes_of(list(user.roles or ())).union(*(g.scopes for g in await self.grants_of(user)))
        granted = held & (within if within is not None else frozenset(Scope))
        wanted = frozenset(scopes) if scopes is not None else granted
        if not wanted <= granted:
            missing = ", ".join(sorted(wanted - granted))
            among = ", ".join(sorted(granted)) or "(none)"
            raise errors.InvalidInput(
                f"{login!r} may not grant {missing} (roles, or the credential asking); expected scopes among {among}",
                code="directory.scope_not_granted",
            )
        now = clock.now()
        secret = credentials.new_secret(credentials.TOKEN_PREFIX)
        token = store.StoredToken(
            id=ids.new_id("pat"),
            login=login,
            name=name,
            scopes=tuple(sorted(wanted)),
            created=now,
            expires=now + expires_in if expires_in is not None else None,
            last_used=None,
            revoked=None,
            targets=limited_to,
        )
        await self.db.add_user_token(token, credentials.digest(secret))
        return IssuedToken(secret, token)

    async def revoke_token(self, token_id: str) -> store.StoredToken:
        """Revoke a personal API token at once.

        Raises:
            errors.NotFound: `directory.token_not_found`.
        """
        revoked = await self.db.revoke_user_token(token_id, clock.now())
        self._known_tokens.clear()
        return revoked

    # -- who is asking --------------------------------------------------------------------------
    async def principal_of_token(self, secret: str) -> Principal | None:
        """The principal of a personal API token, or None if it is not one.

        A token checked in this process less than `token_cache_ttl` ago is not read again (its
        expiry is checked on every use); see `directory.token_cache`.

        Raises:
            errors.Unauthorized: `auth.expired` — the token expired or was revoked, or its user is gone.
        """
        token_hash = credentials.digest(secret)
        now = clock.now()
        known = self._known_tokens.get(token_hash, now)
        if known is not None:
            return known
        found = await self.db.find_token_holder(token_hash)  # one read: a request's cost
        if found is None:
            return None
        token, user = found
        if token.revoked is not None:
            raise errors.Unauthorized(f"the API token {token.id} was revoked", code="auth.expired")
        if token.expires is not None and now >= token.expires:
            expired = token.expires.isoformat(timespec="seconds")
            raise errors.Unauthorized(f"the API token {token.id} expired at {expired}", code="auth.expired")
        if user is None or not user.is_active:
            raise errors.Unauthorized(f"the user of API token {token.id} is inactive or gone", code="auth.expired")
        if token.last_used is None or now - token.last_used >= _LAST_USED_PRECISION:
            await self.db.note_token_used(token.id, now)  # not a store write per request of a busy script
        allowed = frozenset(Scope(s) for s in token.scopes if s in Scope.__members__.values())
        principal = Principal(
            token.login,
            allowed & scopes_of(list(user.roles or ())),
            "token",
            token.id,
            grants=await self.grants_of(user),
            targets=token.targets,
            cap=allowed,
        )
        self._known_tokens.put(token_hash, principal, now, token.expires)
        return principal

    async def principal_of_session(self, secret: str) -> Principal | None:
        """The principal of a live console session, or None (unknown, expired, signed out, inactive user)."""
        session = await self.db.find_session(credentials.digest(secret))
        if session is None or session.revoked is not None or clock.now() >= session.expires:
            return None
        users = await self.db.list_users(session.login)
        if not users or not users[0].is_active:
            return None
        user = users[0]
        return Principal(session.login, scopes_of(list(user.roles or ())), "session", grants=await self.grants_of(user))

    # -- grants on flows ------------------------------------------------------------------------
    async def grant(self, subject: str, role: str, target: str, *, by: str) -> tuple[store.StoredGrant, bool]:
        """Give `subject` the role `role` on `target`; returns the grant and whether it is new.

        Raises:
            errors.InvalidInput: `directory.grant_invalid` — a malformed subject, role or target.
            errors.NotFound: `directory.not_found` — the user, department or position does not exist.
        """
        row = await self._checked_grant(subject, role, target, by)
        is_new = await self.db.add_grant(row)
        self._known_tokens.clear()
        return row, is_new

    async def revoke_grant(self, subject: str, role: str, target: str) -> store.StoredGrant:
        """Take a grant away.

        Raises:
            errors.InvalidInput: `directory.grant_invalid`.
            errors.NotFound: `directory.grant_not_found` — there is no such grant.
        """
        subject, target = grants.check_subject(subject), grants.check_target(target)
        row = store.StoredGrant(subject, _role(role), target, clock.now(), "")
        if not await self.db.remove_grant(row.subject, row.role, row.target):
            raise errors.NotFound(
                f"{row.subject} holds no {row.role} grant on {row.target}", code="directory.grant_not_found"
            )
        self._known_tokens.clear()
        return row

    async def grants_of(self, user: store.StoredUser) -> tuple[grants.FlowGrant, ...]:
        """The grants a user holds: their own, their department's and their positions'."""
        subjects = [f"user:{user.login}", *(f"position:{p}" for p in user.positions or ())]
        if user.department_id:
            subjects.append(f"department:{user.department_id}")
        rows = await self.db.list_grants(subjects)
        return tuple(grants.FlowGrant(r.target, Role(r.role)) for r in rows if r.role in Role.__members__.values())

    def flow_ref(self, flow_id: str, path: str | None) -> grants.FlowRef:
        """A flow as grants see it (its folder under the flows folder, when its file is there)."""
        return grants.FlowRef(flow_id, grants.folder_of(path, self.flows_root) if path else None)

    async def _checked_grant(self, subject: str, role: str, target: str, by: str) -> store.StoredGrant:
        subject, target = grants.check_subject(subject), grants.check_target(target)
        row = store.StoredGrant(subject, _role(role), target, clock.now(), by)
        kind, _, key = row.subject.partition(":")
        if kind == "user":
            exists = bool(await self.db.list_users(key))
        elif kind == "department":
            exists = key in {d.id for d in await self.db.list_departments()}
        else:
            exists = key in {p.id for p in await self.db.list_positions()}
        if not exists:
            raise errors.NotFound(f"{kind} {key!r} does not exist", code="directory.not_found")
        return row


def _role(text: str) -> str:
    if text in Role.__members__.values():
        return text
    raise errors.InvalidInput(
        f"role {errors.redact(text)} is not a role; expected one of {', '.join(Role)}", code="directory.grant_invalid"
    )


def _is_locked(state: store.SignInState, now: datetime) -> bool:
    return state.locked_until is not None and now < state.locked_until


def _stored_user(u: UserEntry) -> store.StoredUser:
    return store.StoredUser(
        login=u.login,
        display_name=u.name,
        email=u.email,
        mobile=u.mobile,
        department_id=u.department,
        manager_login=u.manager,
        is_active=u.is_active,
        roles=tuple(u.roles) if u.roles is not None else None,
        positions=tuple(u.positions) if u.positions is not None else None,
        im_ids={str(platform): user_id for platform, user_id in u.im_ids.items()},
    )


def _invalid(problems: list[Problem]) -> errors.InvalidInput:
    failure = errors.InvalidInput("\n".join(map(str, problems)), code="directory.invalid")
    failure.problems = list(problems)
    return failure
