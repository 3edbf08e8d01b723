"""Reading a connection's OpenAPI document: from a file, or from an http(s) URL when the connection opens.

A document fetched from a URL is kept in the connection's state folder (the project's
`.seamflow/connections/<name>/`). When the URL does not answer later (the system is down,
the network is away), the kept copy is used and a warning logged, so a process that only
reads (or a restart while the system is down) does not need the system; the actions fail
as transient errors until it is back, and are retried.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import zlib
from pathlib import Path

import aiohttp
import yarl

from seamflow import errors, redact
from seamflow.connectors.openapi.document import Document, load_data, parse_document

__all__ = ["read_document", "read_local_document"]

log = logging.getLogger("seamflow.connectors.openapi")


async def read_document(
    source: str,
    session: aiohttp.ClientSession,
    *,
    max_bytes: int,
    connection: str,
    keep_in: Path | None = None,
) -> tuple[Document, yarl.URL | None]:
    """Read, parse and check the document; return it with the URL it came from (None: a file).

    Args:
        source: a file path or an http(s) URL.
        session: fetches a URL.
        max_bytes: the largest document read.
        connection: the connection's name, for messages.
        keep_in: where a fetched document is kept, and read from when the URL does not answer.

    Raises:
        errors.InvalidInput: `connection.invalid`: no such file, a 4xx answer, not JSON/YAML, a broken document.
        errors.Transient: the URL did not answer, or answered 5xx, and no kept copy exists.
    """
    kept: Path | None = None
    is_fetched = False
    if source.startswith(("http://", "https://")):
        url = yarl.URL(source)
        kept = _kept_copy(keep_in, source)
        try:
            raw = await _fetch(url, session, max_bytes, connection)
        except errors.Transient as exc:
            if kept is None or not kept.exists():
                raise
            # info, not warning: a command that only reads would print it; serve logs it at its default level
            log.info(
                "%s; using the copy kept at %s", redact.mask_text(exc.message), kept, extra={"connection": connection}
            )
            raw = await asyncio.to_thread(kept.read_bytes)
        else:
            is_fetched = True
    else:
        url = None
        raw = await asyncio.to_thread(_read_file, Path(source), max_bytes, connection)
    shown = redact.mask_text(str(url.with_query(None)) if url is not None else source)
    document = await asyncio.to_thread(lambda: parse_document(load_data(raw, shown), shown))
    if is_fetched and kept is not None:  # only a document that parsed is kept
        await asyncio.to_thread(_keep, kept, raw)
    return document, url


def read_local_document(source: str, root: Path, *, max_bytes: int, connection: str) -> Document | None:
    """The document of a connection whose `document` is a file, read now (for `flow validate`); None for a URL.

    A relative path is taken against the working folder, as when the connection opens, else against `root`.

    Raises:
        errors.InvalidInput: `connection.invalid`: no such file, not JSON/YAML, a broken document.
    """
    if source.startswith(("http://", "https://")) or "{{" in source:
        return None
    path = Path(source)
    if not path.is_absolute() and not path.exists():
        path = root / path
    try:
        stat = path.stat()
    except OSError:
        stat = None
    key = (str(path.absolute()), stat.st_mtime_ns, stat.st_size, source) if stat is not None else None
    document = _READ.get(key) if key is not None else None
    if document is None:
        document = parse_document(load_data(_read_file(path, max_bytes, connection), source), source)
        if key is not None:
            _READ[key] = document
            while len(_READ) > _READ_KEPT:
                del _READ[next(iter(_READ))]
    return document


_READ: dict[tuple[str, int, int, str], Document] = {}
"""Documents read for validation, by file, modification time and size: `serve` validates again on every
change of a flow, and a public document takes a second to read."""
_READ_KEPT = 16


def _kept_copy(folder: Path | None, source: str) -> Path | None:
    """Where the document of `source` is kept: named by a digest, as the URL may carry a key."""
    if folder is None:
        return None
    return folder / f"openapi-{hashlib.sha256(source.encode()).hexdigest()[:16]}.document"


def _keep(path: Path, raw: bytes) -> None:
    """Write the copy whole or not at all (a reader never sees half a document)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_bytes(raw)
        os.replace(partial, path)
    except OSError as exc:  # a read-only project folder: the connection works, only offline starts do not
        log.warning("cannot keep the OpenAPI document at %s: %s", path, exc.strerror or type(exc).__name__)


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
    if raw[:2] == _GZIP_MAGIC and len(raw) <= max_bytes:  # `stripe.json.gz`: large documents keep compressed
        raw = _gunzip(raw, max_bytes, path, connection)
    if len(raw) > max_bytes:
        raise errors.InvalidInput(
            f"connection {connection!r}: the OpenAPI document {str(path)!r} is larger than document_max_bytes "
            f"({max_bytes} bytes)",
            code="connection.invalid",
        )
    return raw


_GZIP_MAGIC = b"\x1f\x8b"


def _gunzip(raw: bytes, max_bytes: int, path: Path, connection: str) -> bytes:
    """The document of a gzip file, at most `max_bytes + 1` bytes of it (a larger one is refused by the caller)."""
    inflate = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
    try:
        return inflate.decompress(raw, max_bytes + 1)
    except zlib.error as exc:
        raise errors.InvalidInput(
            f"connection {connection!r}: the OpenAPI document {str(path)!r} starts like gzip but does not"
            f" decompress ({exc}); expected a .json.gz or .yaml.gz file, or plain JSON/YAML",
            code="connection.invalid",
        ) from None


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
