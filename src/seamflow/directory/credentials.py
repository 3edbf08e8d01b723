"""How the directory keeps secrets: argon2 password hashes, the lockout rule, and the secrets of
personal API tokens and console sessions (random, shown once, stored as SHA-256 digests).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from seamflow import errors, flows, redact, store

if TYPE_CHECKING:
    import argon2

__all__ = [
    "SESSION_PREFIX",
    "TOKEN_PREFIX",
    "LockoutPolicy",
    "SignInSettings",
    "check_password_strength",
    "digest",
    "hash_password",
    "new_secret",
    "record_attempt",
    "verify_password",
]

TOKEN_PREFIX = "sfp_"  # noqa: S105 - a prefix, not a secret
"""Personal API tokens start with this, so a leaked one is recognisable (secret scanners)."""
SESSION_PREFIX = "sfs_"
_MIN_PASSWORD = 10
_MAX_PASSWORD = 1024


@functools.cache
def _hasher() -> argon2.PasswordHasher:
    """The argon2id hasher, imported on first use: serve's start and other commands do not pay for it."""
    import argon2

    return argon2.PasswordHasher()


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    """When repeated wrong passwords lock a user out."""

    attempts: int = 5
    """Wrong passwords within `window` that lock the user."""
    window: timedelta = timedelta(minutes=15)
    """How far back failures count."""
    lock_for: timedelta = timedelta(minutes=15)
    """How long a lockout lasts; a correct password is refused meanwhile."""


@dataclass(frozen=True, slots=True)
class SignInSettings:
    """How sign-in behaves in one process, from the environment (`SignInSettings.from_env`)."""

    lockout: LockoutPolicy = LockoutPolicy()
    session_ttl: timedelta = timedelta(hours=8)
    """How long a console session lasts."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SignInSettings:
        """Read `SEAMFLOW_LOCKOUT_ATTEMPTS`, `SEAMFLOW_LOCKOUT_WINDOW`, `SEAMFLOW_LOCKOUT_PERIOD` and
        `SEAMFLOW_SESSION_TTL` (durations such as 15m, 8h); unset ones keep their defaults.

        Raises:
            errors.InvalidInput: `directory.settings_invalid`, naming the variable and what it takes.
        """
        default = cls()
        attempts = env.get("SEAMFLOW_LOCKOUT_ATTEMPTS", "").strip()
        if attempts and (not attempts.isdigit() or not 1 <= int(attempts) <= 1000):
            raise errors.InvalidInput(
                f"SEAMFLOW_LOCKOUT_ATTEMPTS is {errors.redact(attempts)}; expected an integer from 1 to 1000",
                code="directory.settings_invalid",
            )
        lockout = LockoutPolicy(
            attempts=int(attempts) if attempts else default.lockout.attempts,
            window=_duration(env, "SEAMFLOW_LOCKOUT_WINDOW", default.lockout.window),
            lock_for=_duration(env, "SEAMFLOW_LOCKOUT_PERIOD", default.lockout.lock_for),
        )
        return cls(lockout, _duration(env, "SEAMFLOW_SESSION_TTL", default.session_ttl))


def _duration(env: Mapping[str, str], name: str, default: timedelta) -> timedelta:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = flows.spec.parse_duration(text)
    except ValueError:
        value = timedelta(0)
    if value <= timedelta(0):
        raise errors.InvalidInput(
            f"{name} is {errors.redact(text)}; expected a positive duration such as 15m, 8h or 1d",
            code="directory.settings_invalid",
        )
    return value


def check_password_strength(password: str) -> None:
    """Refuse a password that is too short or too long (the message never contains it).

    Raises:
        errors.InvalidInput: `directory.password_weak`.
    """
    if not _MIN_PASSWORD <= len(password) <= _MAX_PASSWORD:
        raise errors.InvalidInput(
            f"the password has {len(password)} characters; expected {_MIN_PASSWORD} to {_MAX_PASSWORD}",
            code="directory.password_weak",
        )


def hash_password(password: str) -> str:
    """The argon2id hash of `password` (with its own salt and parameters)."""
    check_password_strength(password)
    return _hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches; a user without a password matches nothing."""
    if password_hash is None:
        _hasher().hash("timing: as slow as a real check")  # an unknown user costs as much as a wrong password
        return False
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def record_attempt(
    state: store.SignInState, is_correct: bool, now: datetime, policy: LockoutPolicy
) -> store.SignInState:
    """The sign-in state after one attempt: a failure counts (within the window), N failures lock.

    A correct password clears the failures unless the user is locked: then it changes nothing.
    """
    if state.locked_until is not None and now < state.locked_until:
        return state
    if is_correct:
        return dataclasses.replace(state, failures=0, first_failure=None, locked_until=None)
    is_fresh = state.first_failure is None or now - state.first_failure > policy.window
    failures = 1 if is_fresh else state.failures + 1
    first = now if is_fresh else state.first_failure
    if failures >= policy.attempts:
        return dataclasses.replace(state, failures=0, first_failure=None, locked_until=now + policy.lock_for)
    return dataclasses.replace(state, failures=failures, first_failure=first, locked_until=None)


def new_secret(prefix: str) -> str:
    """A fresh random secret (256 bits), registered for redaction so it never reaches a log."""
    value = prefix + secrets.token_urlsafe(32)
    redact.register(value)
    return value


def digest(secret: str) -> str:
    """The stored form of a token or session secret (SHA-256: the secret is random, no salt is needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()
