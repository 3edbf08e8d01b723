"""Open connections: one connector instance per configured connection, with its concurrency limit."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from seamflow import connectors, errors
from seamflow.flows import expressions, spec
from seamflow.ids import Json

__all__ = ["OpenConnection", "Pool", "load_env", "load_secrets"]


def load_secrets(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Secrets from `SEAMFLOW_SECRET_<NAME>` variables; `secrets.name` reads `SEAMFLOW_SECRET_NAME`."""
    environ = os.environ if environ is None else environ
    found = {}
    for key, value in environ.items():
        if key.startswith("SEAMFLOW_SECRET_") and value:
            name = key.removeprefix("SEAMFLOW_SECRET_").lower()
            found[name] = value
            errors.register_secret(value)
    return found


def load_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Non-secret settings for flows: `env.NAME` reads `SEAMFLOW_VAR_NAME`."""
    environ = os.environ if environ is None else environ
    return {k.removeprefix("SEAMFLOW_VAR_"): v for k, v in environ.items() if k.startswith("SEAMFLOW_VAR_")}


@dataclass(slots=True)
class OpenConnection:
    """A connection whose connector is open, with its concurrency limit."""

    connection: connectors.Connection
    connector: connectors.Connector
    limit: asyncio.Semaphore | None


class Pool:
    """Every connection of a project, opened once and shared by all runs."""

    def __init__(
        self, configs: Mapping[str, Mapping[str, Any]], *, secrets: Mapping[str, str], env: Mapping[str, str]
    ) -> None:
        self._configs = configs
        self._context: dict[str, object] = {"secrets": expressions.Secrets(secrets), "env": dict(env)}
        self._open: dict[str, OpenConnection] = {}

    async def open(self) -> None:
        """Resolve secrets in each connection's config and open its connector."""
        kinds = connectors.available_connectors()
        for name, raw in self._configs.items():
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

    def _resolve(self, name: str, raw: Mapping[str, Any]) -> connectors.Connection:
        settings = dict(raw)
        kind = str(settings.pop("connector", ""))
        concurrency = settings.pop("concurrency", None)
        timeout = settings.pop("timeout", None)
        rendered: Json = expressions.Template.compile(settings, where=f"connections.{name}").render(self._context)
        assert isinstance(rendered, dict)
        return connectors.Connection(
            name=name,
            connector=kind,
            config=rendered,
            concurrency=int(concurrency) if concurrency else None,
            timeout=spec.parse_duration(timeout) if timeout is not None else timedelta(seconds=30),
        )

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
