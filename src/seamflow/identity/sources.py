"""Reading a resolution's sources: a CSV/XLSX export (any encoding, GBK too), a SQL query, or a
REST list (JSON, paged by a `next` URL). Each record comes out as (source key, entity fields).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from seamflow import errors, quality
from seamflow.identity.spec import SourceSpec

__all__ = ["SourceRecord", "read_source"]

SourceRecord = tuple[str, dict[str, Any]]
"""A record's key in its source and its entity fields (raw, as the source has them)."""
_MAX_PAGES = 100_000


def read_source(
    name: str, spec: SourceSpec, base: Path, resolve_url: Callable[[str], str] | None = None
) -> Iterator[SourceRecord]:
    """The records of source `name`, streamed.

    Args:
        base: the folder the resolution file is in (files are relative to it).
        resolve_url: a `sql` connection's name → its database URL (from the project's connections).

    Raises:
        errors.InvalidInput: the source cannot be read, or lacks its key or a mapped column.
    """
    if spec.http is not None:
        yield from _read_http(name, spec)
        return
    if spec.file is not None:
        table = quality.open_file(base / spec.file, encoding=spec.encoding, sheet=spec.sheet)
    else:
        assert spec.sql is not None
        url = spec.sql.url
        if url is None:
            if resolve_url is None:
                raise errors.InvalidInput(f"source {name}: a sql connection needs a project", code="identity.source")
            url = resolve_url(spec.sql.connection or "")
        url = _beside(url, base)
        table = quality.open_query(url, spec.sql.query, name=name)
    try:
        at = _positions(name, table.columns, spec)
        key_at = at.pop("")
        for row in table.rows:
            key = row[key_at]
            if key is None or str(key).strip() == "":
                continue
            yield str(key).strip(), {field: row[i] for field, i in at.items()}
    finally:
        table.close()


def _beside(url: str, base: Path) -> str:
    """A SQLite URL with a relative path is relative to the resolution file, as a `file:` source is."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix:
        return prefix + str((base / url[len(prefix) :]).resolve())
    return url


def _positions(name: str, columns: list[str], spec: SourceSpec) -> dict[str, int]:
    wanted = {"": spec.key, **spec.columns}
    missing = [column for column in wanted.values() if column not in columns]
    if missing:
        raise errors.InvalidInput(
            f"source {name} has no column {', '.join(missing)}; it has {', '.join(columns)}", code="identity.source"
        )
    return {field: columns.index(column) for field, column in wanted.items()}


def _read_http(name: str, spec: SourceSpec) -> Iterator[SourceRecord]:
    import httpx

    assert spec.http is not None
    url: str | None = spec.http.url
    with httpx.Client(timeout=spec.http.timeout_s) as client:
        for _ in range(_MAX_PAGES):
            if url is None:
                return
            try:
                answer = client.get(url)
                answer.raise_for_status()
                body = answer.json()
            except (httpx.HTTPError, ValueError) as exc:
                raise errors.InvalidInput(
                    f"source {name}: GET {url} failed: {type(exc).__name__}: {exc}", code="identity.source"
                ) from None
            items = body if isinstance(body, list) else body.get(spec.http.items) if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise errors.InvalidInput(
                    f"source {name}: GET {url} answered no list; expected an array or an object with"
                    f" {spec.http.items!r}",
                    code="identity.source",
                )
            for item in items:
                if isinstance(item, Mapping) and item.get(spec.key) not in (None, ""):
                    yield str(item[spec.key]), {field: item.get(column) for field, column in spec.columns.items()}
            following = body.get(spec.http.next) if isinstance(body, dict) and spec.http.next else None
            url = following if isinstance(following, str) and following else None
