"""Opening a connection of the shipped pack against a platform stand-in (shared by the pack's tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta

from seamflow import connectors, flows, redact
from seamflow.ids import Json


@asynccontextmanager
async def pack_connection(
    kind: str, settings: Mapping[str, Json], *, text: str | None = None
) -> AsyncIterator[connectors.Connector]:
    """A connection named after `kind`'s platform, of the shipped file (or `text`, an edited copy of it)."""
    path = connectors.PACK_FILES[kind]
    cls = (
        flows.connector_files.load_connector_file(path)
        if text is None
        else flows.connector_files.load_connector_text(text, str(path))
    )
    for value in settings.values():  # as `load_secrets` does for the project's secrets
        if isinstance(value, str) and len(value) >= 8:
            redact.register(value)
    connector = cls()
    name = kind.split("_")[0]
    await connector.open(connectors.Connection(name, kind, dict(settings), timeout=timedelta(seconds=10)))
    try:
        yield connector
    finally:
        await connector.close()
