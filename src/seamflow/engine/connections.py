"""Open connections: one connector instance per configured connection, with its concurrency limit.

Also what operators see of connections: `describe_connections` (name, connector, limits and
the secrets each uses, never their values) and `Pool.check` (`seamflow connections test`).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from seamflow import connectors, errors, redact
from seamflow.engine import secrets as project_secrets
from seamflow.flows import expressions, load, spec, validate
from seamflow.ids import Json

__all__ = [
    "ConnectionCheck",
    "ConnectionInfo",
    "OpenConnection",
    "Pool",
    "SecretUse",
    "describe_connections",
    "load_env",
    "load_secrets",
    "unset_secret_problems",
]

_SECRET_REFERENCE = re.compile(r"""secrets\s*(?:\.\s*([A-Za-z_]\w*)|\[\s*["']([^"']+)["']\s*\])""")
_ADDRESS_KEYS = ("base_url", "document", "url", "dsn", "path", "folder")
_CHECK_GRACE_S = 5.0
"""Added to the connection's timeout to bound a whole check (connect, TLS, login, request)."""


def load_secrets(environ: Mapping[str, str] | None = None, *, root: Path | None = None) -> dict[str, str]:
    """Every secret by name, each remembered by the redactor; `secrets.name` reads `SEAMFLOW_SECRET_NAME`.

    With `root`, secrets stored in `<root>/secrets.enc.yaml` are added; an environment variable
    wins over the file (see `engine.secrets.resolve_secrets`).

    Raises:
        errors.InvalidInput: a stored secret cannot be decrypted, or no key is available for them.
    """
    return project_secrets.resolve_secrets(root, environ)


def load_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Non-secret settings for flows: `env.NAME` reads `SEAMFLOW_VAR_NAME`."""
    environ = os.environ if environ is None else environ
    return {k.removeprefix("SEAMFLOW_VAR_"): v for k, v in environ.items() if k.startswith("SEAMFLOW_VAR_")}


@dataclass(frozen=True, slots=True)
class SecretUse:
    """A secret a connection's config refers to, and where its value comes from."""

    name: str
    source: str
    """`env`, `file` or `missing`."""


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """What an operator may see of a connection: never a secret's value."""

    name: str
    connector: str
    concurrency: int | None
    timeout: timedelta
    secrets: tuple[SecretUse, ...]
    is_checkable: bool
    """Its connector can test the connection (`Checks`); otherwise only the config is validated."""
    is_authorizable: bool = False
    """It signs in by a person's consent (OAuth2 authorization code): `connections authorize`, the console's button."""

    def as_json(self) -> dict[str, Json]:
        """The form shown by `GET /api/v1/connections` and `connections list --json`."""
        return {
            "name": self.name,
            "connector": self.connector,
            "concurrency": self.concurrency,
            "timeout_s": self.timeout.total_seconds(),
            "secrets": [{"name": s.name, "source": s.source, "value": "***"} for s in self.secrets],
            "checks": self.is_checkable,
            "authorizes": self.is_authorizable,
        }


@dataclass(frozen=True, slots=True)
class ConnectionCheck:
    """The answer of `connections test`: did the connection work, and a one-line message."""

    name: str
    is_ok: bool
    message: str
    is_checked: bool
    """False when the connector has no `check`: only the config was validated."""


def describe_connections(configs: Mapping[str, Mapping[str, Any]], sources: Mapping[str, str]) -> list[ConnectionInfo]:
    """Describe each configured connection, sorted by name.

    Args:
        configs: connection name → settings from `connections.yaml`, secrets still as templates.
        sources: secret name → `env` or `file`; a referenced secret not listed is `missing`.
    """
    try:
        kinds = connectors.available_connectors()
    except errors.SeamflowError:  # a broken plugin must not hide the list; `connections test` reports it
        kinds = {}
    infos = []
    for name, raw in sorted(configs.items()):
        kind = str(raw.get("connector", ""))
        used = sorted(set(_secret_names(raw)))
        cls = kinds.get(kind)
        infos.append(
            ConnectionInfo(
                name=name,
                connector=kind,
                concurrency=_concurrency(raw.get("concurrency")),
                timeout=_timeout(raw.get("timeout")),
                secrets=tuple(SecretUse(s, sources.get(s, "missing")) for s in used),
                is_checkable=cls is not None and callable(getattr(cls, "check", None)),
                is_authorizable=_is_authorizable(cls, raw),
            )
        )
    return infos


def _is_authorizable(kind: type[connectors.Connector] | None, config: Mapping[str, Any]) -> bool:
    """Whether a connection (its connector class and `connections.yaml` entry) signs in by a person's consent.

    `http`: `auth.oauth2` with the authorization code grant (the default); a declarative connector:
    the same in its file; `openapi`: a scheme's credentials with `client_id` and the
    `authorization_code` flow, or no flow and no username (the document decides).
    """
    raw = getattr(kind, "raw", None)  # a declarative connector's file, as written
    auth = raw.get("auth") if isinstance(raw, dict) else config.get("auth")
    if not isinstance(auth, dict):
        return False
    if config.get("connector") == "openapi":
        return any(
            isinstance(c, dict)
            and "client_id" in c
            and (c.get("flow") == "authorization_code" or (c.get("flow") is None and "username" not in c))
            for c in auth.values()
        )
    oauth2 = auth.get("oauth2")
    return isinstance(oauth2, dict) and oauth2.get("grant", "authorization_code") == "authorization_code"


def _secret_names(value: object) -> list[str]:
    if isinstance(value, str):
        return [a or b for a, b in _SECRET_REFERENCE.findall(value)]
    if isinstance(value, Mapping):
        return [n for v in value.values() for n in _secret_names(v)]
    if isinstance(value, list):
        return [n for v in value for n in _secret_names(v)]
    return []


def _secret_paths(value: object, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every (path, secret name) a config or flow reads, in document order."""
    if isinstance(value, str):
        yield from ((path, name) for name in _secret_names(value))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _secret_paths(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _secret_paths(item, (*path, index))


def unset_secret_problems(root: Path, project: validate.Project) -> list[errors.Problem]:
    """A problem for each secret that `connections.yaml` or a flow reads but nobody set.

    A secret is set by `seamflow secrets set NAME` (`secrets.enc.yaml`) or by the environment
    variable `SEAMFLOW_SECRET_<NAME>`; nothing is decrypted here. Without this check a missing
    secret would only show when `serve` opens the connection or a step renders it.
    """
    known = {info.name for info in project_secrets.list_secrets(root)}
    found: list[errors.Problem] = []

    def unset(where: errors.Location, name: str, user: str) -> None:
        if name not in known:
            found.append(
                errors.Problem(
                    where,
                    f"{user} reads secret {name!r}, which is not set",
                    f"`seamflow secrets set {name}` (stored encrypted in {project_secrets.SECRETS_FILE})"
                    f" or the environment variable {project_secrets.env_variable(name)}",
                )
            )

    connections_file = root / "connections.yaml"
    if project.connections and connections_file.exists():
        _, source_map = load.load_connections_file(connections_file)
        for connection, config in project.connections.items():
            for path, name in _secret_paths(config, (connection,)):
                unset(source_map.locate(path), name, f"connection {connection!r}")
    for flow_id, loaded in sorted(project.flows.items()):
        data = loaded.spec.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        for path, name in _secret_paths(data):
            unset(loaded.source_map.locate(path), name, f"flow {flow_id!r}")
    return found


def _concurrency(value: object) -> int | None:
    return int(value) if isinstance(value, int | str) and str(value).isdigit() and int(value) > 0 else None


def _timeout(value: object) -> timedelta:
    return spec.parse_duration(value) if value is not None else timedelta(seconds=30)


@dataclass(slots=True)
class OpenConnection:
    """A connection whose connector is open, with its concurrency limit."""

    connection: connectors.Connection
    connector: connectors.Connector
    limit: asyncio.Semaphore | None


class Pool:
    """Every connection of a project, opened once and shared by all runs.

    Args:
        configs: connection name -> settings from `connections.yaml`, secrets still as templates.
        secrets: every secret by name.
        env: non-secret settings (`env.NAME`).
        state_root: the folder under which each connection may keep files between starts
            (`<state_root>/<name>/`; the project's `.seamflow/connections`); None: keep none.
    """

    def __init__(
        self,
        configs: Mapping[str, Mapping[str, Any]],
        *,
        secrets: Mapping[str, str],
        env: Mapping[str, str],
        state_root: Path | None = None,
        tokens: connectors.TokenCache | None = None,
        outbound: connectors.Outbound | None = None,
    ) -> None:
        """Args:
        tokens: where connections that sign in keep their tokens (`StoredTokens`: the cluster's
            store); None: each connector keeps them in its process.
        outbound: the project's outbound guard (`project_outbound`), which each connection's
            `outbound_allow` widens; None: the process's (`SEAMFLOW_OUTBOUND_ALLOW`).
        """
        self._outbound = connectors.Outbound.from_environment() if outbound is None else outbound
        self._configs = configs
        self._state_root = state_root
        self._tokens = tokens
        self._secrets = dict(secrets)
        self._context: dict[str, object] = {"secrets": expressions.Secrets(secrets), "env": dict(env)}
        self._open: dict[str, OpenConnection] = {}
        self._builtin: dict[str, connectors.Connector] = {}

    def add_builtin(self, name: str, connector: connectors.Connector) -> None:
        """Register a connection provided by Seamflow itself (e.g. `sync`), opened with the others.

        Raises:
            errors.InvalidInput: `connections.yaml` already defines a connection of that name.
        """
        if name in self._configs:
            raise errors.InvalidInput(
                f"connection {name!r} is reserved for Seamflow's {connector.kind}; rename it in connections.yaml",
                code="connection.reserved",
            )
        self._builtin[name] = connector

    async def open(self, only: Collection[str] | None = None) -> None:
        """Resolve secrets in each connection's config and open its connector.

        Args:
            only: open just these connections (a command that needs one system does not need
                the others to be up); None: every connection.
        """
        kinds = connectors.available_connectors()
        for name, raw in self._configs.items():
            if only is not None and name not in only:
                continue
            connection = self._resolve(name, raw)
            cls = kinds.get(connection.connector)
            if cls is None:
                raise errors.InvalidInput(
                    f"connection {name!r}: connector {connection.connector!r} is not installed;"
                    f" expected one of {', '.join(sorted(kinds))}",
                    code="connection.unknown_connector",
                )
            instance = cls()
            try:
                await instance.open(connection)
            except BaseException:
                await self.close()  # the connections opened so far must not leak
                raise
            limit = asyncio.Semaphore(connection.concurrency) if connection.concurrency else None
            self._open[name] = OpenConnection(connection, instance, limit)
        for name, builtin in self._builtin.items():
            connection = connectors.Connection(name=name, connector=builtin.kind)
            await builtin.open(connection)
            self._open[name] = OpenConnection(connection, builtin, None)

    def _resolve(self, name: str, raw: Mapping[str, Any]) -> connectors.Connection:
        settings = dict(raw)
        kind = str(settings.pop("connector", ""))
        concurrency = settings.pop("concurrency", None)
        timeout = settings.pop("timeout", None)
        allow = settings.pop("outbound_allow", None) or []
        outbound = self._outbound.allowing(allow, f"connection {name!r} outbound_allow") if allow else self._outbound
        rendered: Json = expressions.Template.compile(settings, where=f"connections.{name}").render(self._context)
        assert isinstance(rendered, dict)
        return connectors.Connection(
            name=name,
            connector=kind,
            config=rendered,
            concurrency=int(concurrency) if concurrency else None,
            timeout=_timeout(timeout),
            state_dir=self._state_root / name if self._state_root is not None else None,
            tokens=self._tokens,
            outbound=outbound,
        )

    def _config(self, name: str) -> Mapping[str, Any]:
        """Connection `name`'s entry in connections.yaml.

        Raises:
            errors.NotFound: no connection is called `name` (the defined ones are named).
        """
        raw = self._configs.get(name)
        if raw is None:
            defined = ", ".join(sorted(self._configs)) or "none"
            raise errors.NotFound(
                f"connection {name!r} is not defined in connections.yaml; defined: {defined}",
                code="connection.not_found",
            )
        return raw

    def resolve(self, name: str) -> connectors.Connection:
        """Connection `name` with its secrets rendered, not opened (`seamflow connections authorize`).

        Raises:
            errors.NotFound: no connection is called `name`.
        """
        raw = self._config(name)
        return self._resolve(name, raw)

    def describe(self) -> list[ConnectionInfo]:
        """Every connection as operators see it; a secret set in the environment is `env`, else `file`."""
        sources = {
            name: "env" if os.environ.get(project_secrets.env_variable(name)) else "file" for name in self._secrets
        }
        return describe_connections(self._configs, sources)

    async def check(self, name: str) -> ConnectionCheck:
        """Open connection `name` on its own (not the shared instance) and let its connector check it.

        Failures are the answer, not an exception: the message says what is wrong, secrets masked.

        Raises:
            errors.NotFound: no connection is called `name`.
        """
        raw = self._config(name)
        instance: connectors.Connector | None = None
        bound_s = 0.0
        try:
            connection = self._resolve(name, raw)
            cls = connectors.available_connectors().get(connection.connector)
            if cls is None:
                return ConnectionCheck(name, False, f"connector {connection.connector!r} is not installed", False)
            instance = cls()
            bound_s = connection.timeout.total_seconds() + _CHECK_GRACE_S
            async with asyncio.timeout(bound_s):
                await instance.open(connection)
                check = getattr(instance, "check", None)
                if check is None:
                    return ConnectionCheck(
                        name, True, f"config is valid; the {cls.kind} connector cannot test a connection", False
                    )
                answer = await check()
            return ConnectionCheck(name, True, redact.mask_text(str(answer)), True)
        except TimeoutError:
            return ConnectionCheck(name, False, f"no answer within {bound_s:g}s", True)
        except errors.SeamflowError as exc:
            return ConnectionCheck(name, False, redact.mask_text(exc.message), True)
        except Exception as exc:  # a boundary: a connector's bug is reported, the server keeps serving
            detail = errors.redact(str(exc), limit=300)
            return ConnectionCheck(name, False, f"unexpected {type(exc).__name__}: {detail}", True)
        finally:
            if instance is not None:
                await instance.close()

    def address_of(self, name: str) -> str | None:
        """Where connection `name` points (its URL, document or host), for messages; never a secret.

        Read from `connections.yaml` before secrets are filled in; user and password in a URL
        and its query are left out.
        """
        raw: Mapping[str, Any] = self._configs.get(name) or {}
        try:  # `{{ env.CRM_URL }}` says little; secrets in the result are masked below
            raw = self._resolve(name, raw).config
        except (errors.SeamflowError, AssertionError):
            pass
        for key in _ADDRESS_KEYS:
            value = raw.get(key)
            if isinstance(value, str) and value:
                return _without_credentials(value)
        host = raw.get("host")
        if isinstance(host, str) and host:
            port = raw.get("port")
            return f"{host}:{port}" if isinstance(port, int | str) and port else host
        return None

    def get(self, name: str) -> OpenConnection:
        """The open connection called `name`."""
        try:
            return self._open[name]
        except KeyError:
            raise errors.NotFound(f"connection {name!r} is not defined in connections.yaml") from None

    async def close(self) -> None:
        """Close every connector."""
        for item in self._open.values():
            await item.connector.close()
        self._open.clear()


def _without_credentials(address: str) -> str:
    """`address` without user, password and query if it is a URL; masked for any known secret."""
    parts = urlsplit(address)
    if parts.scheme and parts.netloc:
        host = parts.netloc.rpartition("@")[2]
        address = urlunsplit((parts.scheme, host, parts.path, "", ""))
    return redact.mask_text(address)
