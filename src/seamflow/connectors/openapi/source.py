"""Reading a connection's OpenAPI document: from a file, or from an http(s) URL when the connection opens."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import yarl

from seamflow import errors, redact
from seamflow.connectors.openapi.document import Document, load_data, parse_document

__all__ = ["read_document"]


async def read_document(
    source: str, session: aiohttp.ClientSession, *, max_bytes: int, connection: str
) -> tuple[Document, yarl.URL | None]:
    """Read, parse and check the document; return it with the URL it came from (None: a file).

    Raises:
        errors.InvalidInput: `connection.invalid`: no such file, a 4xx answer, not JSON/YAML, a broken document.
        errors.Transient: the URL did not answer, or answered 5xx.
    """
    if source.startswith(("http://", "https://")):
        url = yarl.URL(source)
        raw = await _fetch(url, session, max_bytes, connection)
    else:
        url = None
        raw = await asyncio.to_thread(_read_file, Path(source), max_bytes, connection)
    shown = redact.mask_text(str(url.with_query(None)) if url is not None else source)
    document = await asyncio.to_thread(lambda: parse_document(load_data(raw, shown), shown))
    return document, url


def _read_file(path: Path, max_bytes: int, connection: str) -> bytes:
    try:
        with path.open("rb") as file:
            raw = file.read(max_bytes + 1)
    except OSError as exc:
        raise errors.InvalidInput(
            f"connection {connection!r}: cannot read the OpenAPI document {str(path)!r} "
            f"({exc.strerror or type(exc).__name__}; looked at {path.absolute()})",
            code="connection.invalid",
        ) from None
    if len(raw) > max_bytes:
        raise errors.InvalidInput(
            f"connection {connection!r}: the OpenAPI document {str(path)!r} is larger than document_max_bytes "
            f"({max_bytes} bytes)",
            code="connection.invalid",
        )
    return raw


async def _fetch(url: yarl.URL, session: aiohttp.ClientSession, max_bytes: int, connection: str) -> bytes:
    shown = redact.mask_text(str(url.with_query(None)))
    where = f"connection {connection!r}: fetching the OpenAPI document {shown}"
    try:
        async with session.get(url, allow_redirects=True) as response:
            if response.status >= 500:
                raise errors.Transient(f"{where}: HTTP {response.status}; try again later")
            if response.status != 200:
                raise errors.InvalidInput(
                    f"{where}: HTTP {response.status} {response.reason or ''}; expected 200 with the document",
                    code="connection.invalid",
                )
            raw = b""
            async for chunk in response.content.iter_any():
                raw += chunk
                if len(raw) > max_bytes:
                    break
    except TimeoutError:
        raise errors.Transient(f"{where}: no answer in time") from None
    except aiohttp.ClientError as exc:
        raise errors.Transient(f"{where}: {type(exc).__name__}: {errors.redact(str(exc), limit=200)}") from None
    if len(raw) > max_bytes:
        raise errors.InvalidInput(
            f"{where}: larger than document_max_bytes ({max_bytes} bytes)", code="connection.invalid"
        )
    return raw
