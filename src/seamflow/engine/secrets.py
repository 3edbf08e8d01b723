"""A project's secrets: values from `SEAMFLOW_SECRET_<NAME>` or the encrypted `secrets.enc.yaml`.

`secrets.enc.yaml` maps each secret name to a Fernet token (AES-128-CBC with an HMAC-SHA256,
from `cryptography`); it is safe to commit. The key comes from `SEAMFLOW_SECRET_KEY` or from
`.seamflow/secret.key`, which must not be readable by group or others. An environment
variable wins over the file. Every resolved value is registered with the redactor
(`seamflow.redact`), which masks it and its encoded forms in logs, API answers, runs and errors.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import yaml
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from seamflow import errors, redact

__all__ = [
    "ENV_PREFIX",
    "FORMAT",
    "KEY_ENV",
    "KEY_FILE",
    "SECRETS_FILE",
    "SecretInfo",
    "SecretKey",
    "SecretsFile",
    "Source",
    "check_name",
    "create_key_file",
    "env_variable",
    "list_secrets",
    "read_key",
    "resolve_secrets",
    "rotate_key",
]

ENV_PREFIX = "SEAMFLOW_SECRET_"
KEY_ENV = "SEAMFLOW_SECRET_KEY"
"""Holds the key itself; it is not a secret flows can read (`secrets.key` is not defined by it)."""
KEY_FILE = Path(".seamflow") / "secret.key"
SECRETS_FILE = "secrets.enc.yaml"
FORMAT = "seamflow-secrets/1"
_NEW_KEY_SUFFIX = ".new"
_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_HEADER = (
    "# Seamflow secrets, encrypted (Fernet: AES-128-CBC + HMAC-SHA256). Safe to commit; the key is not here.\n"
    "# Change with `seamflow secrets set NAME` / `seamflow secrets delete NAME`; see docs/howto/connections.md.\n"
)


class Source(StrEnum):
    """Where a secret's value comes from."""

    ENV = "env"
    FILE = "file"


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """A secret's name and where its value comes from; never the value."""

    name: str
    source: Source
    is_overriding_file: bool = False
    """The environment variable hides a value stored in `secrets.enc.yaml`."""


@dataclass(frozen=True, slots=True)
class SecretKey:
    """The key that encrypts `secrets.enc.yaml`, and where it was read from (for error messages)."""

    cipher: MultiFernet
    origin: str
    """`SEAMFLOW_SECRET_KEY` or the key file's path."""
    is_from_env: bool = False


# --- names and the environment -----------------------------------------------------------------


def env_variable(name: str) -> str:
    """The environment variable that sets secret `name`: `orders_token` → `SEAMFLOW_SECRET_ORDERS_TOKEN`."""
    return ENV_PREFIX + re.sub(r"[^A-Z0-9]", "_", name.upper())


def check_name(name: str) -> str:
    """Return `name` if it can name a secret, else raise InvalidInput saying what a name looks like."""
    if not _NAME.fullmatch(name):
        raise errors.InvalidInput(
            f"secret name {errors.redact(name, 70)} is not valid; expected lower-case letters, digits and _,"
            " starting with a letter (it is read as {{ secrets.<name> }})",
            code="secrets.bad_name",
        )
    return name


def _from_env(environ: Mapping[str, str]) -> dict[str, str]:
    found = {}
    for variable, value in environ.items():
        if variable.startswith(ENV_PREFIX) and variable != KEY_ENV and value:
            found[variable.removeprefix(ENV_PREFIX).lower()] = value
    return found


# --- the key -----------------------------------------------------------------------------------


def create_key_file(root: Path) -> Path:
    """Create `.seamflow/secret.key` with a new random key, readable by its owner only (mode 0600).

    Raises:
        errors.Conflict: the key file exists already (it is never overwritten).
    """
    path = root / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_new_key(path, Fernet.generate_key())
    return path


def _write_new_key(path: Path, key: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise errors.Conflict(f"{path} exists already; a key file is never overwritten") from None
    with os.fdopen(fd, "wb") as out:
        out.write(key + b"\n")


def read_key(root: Path, environ: Mapping[str, str] | None = None) -> SecretKey:
    """The key of `secrets.enc.yaml`: `SEAMFLOW_SECRET_KEY`, else `.seamflow/secret.key`.

    Raises:
        errors.InvalidInput: no key is set (`secrets.no_key`), the key file can be read by
            group or others (`secrets.key_unsafe`, like ssh refuses such a private key), or
            the key is not a Fernet key (`secrets.bad_key`).
    """
    environ = os.environ if environ is None else environ
    if environ.get(KEY_ENV):
        return SecretKey(MultiFernet([_fernet(environ[KEY_ENV].encode(), KEY_ENV)]), KEY_ENV, is_from_env=True)
    path = root / KEY_FILE
    if not path.exists():
        raise errors.InvalidInput(
            f"no secret key: {KEY_ENV} is not set and {path} does not exist;"
            " expected one of them (`seamflow init` creates the key file)",
            code="secrets.no_key",
        )
    keys = [_read_key_file(path)]
    pending = path.with_name(path.name + _NEW_KEY_SUFFIX)
    if pending.exists():  # a rotation stopped between writing the secrets and renaming the key
        keys.insert(0, _read_key_file(pending))
    return SecretKey(MultiFernet(keys), str(path))


def _read_key_file(path: Path) -> Fernet:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise errors.InvalidInput(
            f"permissions {stat.S_IMODE(mode):04o} for {path} are too open: the key file must not be accessible"
            f" by group or others; expected mode 0600 (chmod 600 {path})",
            code="secrets.key_unsafe",
        )
    return _fernet(path.read_bytes().strip(), str(path))


def _fernet(key: bytes, origin: str) -> Fernet:
    try:
        return Fernet(key)
    except ValueError:
        raise errors.InvalidInput(
            f"the key in {origin} is not a valid key; expected 32 url-safe base64-encoded bytes"
            " (as `seamflow init` writes)",
            code="secrets.bad_key",
        ) from None


# --- the encrypted file ------------------------------------------------------------------------


class SecretsFile:
    """`secrets.enc.yaml`: secret name → Fernet token of `name NUL value`.

    The name is encrypted with the value, so a token moved to another name is refused
    rather than silently giving one secret's value to another.
    """

    def __init__(self, root: Path) -> None:
        self.path = root / SECRETS_FILE

    def tokens(self) -> dict[str, str]:
        """Every stored name with its token (empty when the file does not exist).

        Raises:
            errors.InvalidInput: the file is not a `seamflow-secrets/1` document.
        """
        if not self.path.exists():
            return {}
        try:
            data = yaml.safe_load(self.path.read_text("utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise self._broken(f"it is not YAML ({type(exc).__name__})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise self._broken(f"format is not {FORMAT!r}")
        stored = data.get("secrets") or {}
        if not isinstance(stored, dict) or not all(isinstance(v, str) for v in stored.values()):
            raise self._broken("secrets is not a mapping of name to text")
        return {str(k): v for k, v in stored.items()}

    def _broken(self, problem: str) -> errors.InvalidInput:
        return errors.InvalidInput(
            f"{self.path}: {problem}; expected `format: {FORMAT}` and `secrets: {{name: token}}`",
            code="secrets.bad_file",
        )

    def decrypt(self, key: SecretKey, names: set[str] | None = None) -> dict[str, str]:
        """Decrypt the stored secrets (only `names`, if given).

        Raises:
            errors.InvalidInput: `secrets.undecryptable`, naming the secret and the key's origin.
        """
        found = {}
        for name, token in self.tokens().items():
            if names is None or name in names:
                found[name] = _decrypt(key, name, token, self.path)
        return found

    def store(self, key: SecretKey, name: str, value: str) -> None:
        """Encrypt `value` as secret `name` and save the file (atomically)."""
        tokens = self.tokens()
        tokens[check_name(name)] = _encrypt(key, name, value)
        self.save(tokens)

    def delete(self, name: str) -> bool:
        """Remove secret `name`; False if it was not stored."""
        tokens = self.tokens()
        if tokens.pop(name, None) is None:
            return False
        self.save(tokens)
        return True

    def save(self, tokens: Mapping[str, str]) -> None:
        """Write the file: a temporary file renamed over the old one, so a crash leaves one or the other."""
        text = _HEADER + yaml.safe_dump({"format": FORMAT, "secrets": dict(sorted(tokens.items()))}, sort_keys=False)
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(text, "utf-8")
        os.replace(temporary, self.path)


def _encrypt(key: SecretKey, name: str, value: str) -> str:
    return key.cipher.encrypt(name.encode() + b"\0" + value.encode()).decode("ascii")


def _decrypt(key: SecretKey, name: str, token: str, path: Path) -> str:
    try:
        plain = key.cipher.decrypt(token.encode("ascii"))
    except (InvalidToken, UnicodeEncodeError):
        plain = b""
    stored_name, separator, value = plain.partition(b"\0")
    if not separator or stored_name != name.encode():
        raise errors.InvalidInput(
            f"secret {name!r} in {path} could not be decrypted with the key from {key.origin};"
            " expected the key it was encrypted with (was the key replaced, or the token copied from another name?)",
            code="secrets.undecryptable",
        )
    return value.decode()


def rotate_key(root: Path, key: SecretKey) -> int:
    """Re-encrypt every stored secret with a new key written to `.seamflow/secret.key`; return how many.

    Crash-safe: the new key is written as `secret.key.new` first, then the secrets file, then the
    key file is replaced; until then `read_key` tries both keys.

    Raises:
        errors.Conflict: the key comes from `SEAMFLOW_SECRET_KEY` (rotate it where it is kept).
        errors.InvalidInput: a stored secret cannot be decrypted with the current key.
    """
    if key.is_from_env:
        raise errors.Conflict(
            f"the key comes from {KEY_ENV}; rotate-key replaces the key file only;"
            f" expected {KEY_ENV} unset and the key in {root / KEY_FILE}",
            code="secrets.key_in_env",
        )
    secrets_file = SecretsFile(root)
    plain = secrets_file.decrypt(key)
    path = root / KEY_FILE
    pending = path.with_name(path.name + _NEW_KEY_SUFFIX)
    if pending.exists():
        _settle_interrupted_rotation(secrets_file, path, pending)
    new_key = Fernet.generate_key()
    _write_new_key(pending, new_key)
    fresh = SecretKey(MultiFernet([Fernet(new_key)]), str(path))
    secrets_file.save({name: _encrypt(fresh, name, value) for name, value in plain.items()})
    os.replace(pending, path)
    return len(plain)


def _settle_interrupted_rotation(secrets_file: SecretsFile, path: Path, pending: Path) -> None:
    """Finish a rotation that stopped before renaming its key, or drop a key it never used."""
    new_only = SecretKey(MultiFernet([_read_key_file(pending)]), str(pending))
    try:
        secrets_file.decrypt(new_only)
    except errors.InvalidInput:  # the file was not re-encrypted yet: the current key still opens it
        pending.unlink()
    else:
        os.replace(pending, path)


# --- resolution --------------------------------------------------------------------------------


def resolve_secrets(root: Path | None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every secret of the project by name: environment variables win over `secrets.enc.yaml`.

    Each value (and the key itself) is registered with the redactor. The key is needed only when
    the file holds a secret that no environment variable overrides. Without `root` only the
    environment is read.

    Raises:
        errors.InvalidInput: a stored secret cannot be decrypted, or no key is available for them.
    """
    environ = os.environ if environ is None else environ
    if environ.get(KEY_ENV):
        redact.register(environ[KEY_ENV])
    found = _from_env(environ)
    if root is not None:
        secrets_file = SecretsFile(root)
        missing = set(secrets_file.tokens()) - set(found)
        if missing:
            found.update(secrets_file.decrypt(read_key(root, environ), missing))
    for value in found.values():
        redact.register(value)
    return found


def list_secrets(root: Path, environ: Mapping[str, str] | None = None) -> list[SecretInfo]:
    """Every secret's name and source, sorted by name; nothing is decrypted."""
    environ = os.environ if environ is None else environ
    in_env = _from_env(environ)
    in_file = set(SecretsFile(root).tokens())
    infos = [SecretInfo(name, Source.ENV, is_overriding_file=name in in_file) for name in in_env]
    infos += [SecretInfo(name, Source.FILE) for name in in_file - set(in_env)]
    return sorted(infos, key=lambda info: info.name)
