"""Where a connection's API is: its `base_url`, or the first server of its OpenAPI document, checked before any call."""

from __future__ import annotations

import re

import yarl

from seamflow import errors
from seamflow.connectors.openapi.config import OpenApiConfig
from seamflow.connectors.openapi.document import Document

__all__ = ["base_url"]

_HOST = re.compile(r"[A-Za-z0-9._:\-]+")
"""A host name (IDNA-encoded) or an IPv6 literal: no braces of an unfilled server variable, no spaces."""


def base_url(config: OpenApiConfig, document: Document, url: yarl.URL | None, connection: str) -> yarl.URL:
    """`base_url`, or the document's first server, made absolute against the document's URL.

    Raises:
        errors.InvalidInput: `connection.invalid`: naming the connection, what it found and what was expected.
    """
    server = document.servers[0] if document.servers else None
    if config.base_url is not None:
        what, text = "base_url", config.base_url
    elif server is not None and server.startswith(("http://", "https://")):
        what, text = f"the first server of {document.source}", server
    elif url is not None:
        what, text = f"the first server of {document.source}, taken against its URL", server or "/"
    else:
        found = f"its first server is {server!r}" if server else "it names no server"
        raise errors.InvalidInput(
            f"connection {connection!r}: give base_url: the document {document.source} is a file and {found}",
            code="connection.invalid",
        )
    try:
        base = url.join(yarl.URL(text)) if url is not None and config.base_url is None else yarl.URL(text)
        host = base.raw_host or ""
        is_usable = base.scheme in ("http", "https") and _HOST.fullmatch(host) is not None and base.port is not None
    except (ValueError, TypeError):
        is_usable = False
    if not is_usable:
        raise errors.InvalidInput(
            f"connection {connection!r}: {what} is {errors.redact(text)}; expected an absolute http(s) URL"
            " with a host (and a port from 1 to 65535), its server variables given defaults",
            code="connection.invalid",
        )
    return base
