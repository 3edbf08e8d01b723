"""The `file` connector: reads and writes CSV, XLSX and JSON Lines files in one root folder.

File work blocks, so every action, poll and chunk runs in a worker thread. Paths are
relative to the connection's `root` and cannot leave it.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ValidationError

from seamflow import errors
from seamflow.connectors.base import Action, Batch, Chunk, Connection, Feed, Item, parse_config
from seamflow.connectors.file import feeds
from seamflow.connectors.file.config import FileConfig, Root
from seamflow.connectors.file.failure import classify
from seamflow.connectors.file.inputs import (
    ACTIONS,
    FEEDS,
    FilesFeedInput,
    ListInput,
    MoveInput,
    ReadInput,
    RowsFeedInput,
    WriteInput,
    format_of,
)
from seamflow.connectors.file.ledger import WriteLedger, fsync_folder
from seamflow.connectors.file.reading import Layout, Place, Rows, open_rows
from seamflow.connectors.file.row_feed import poll_rows
from seamflow.connectors.file.writing import write_rows
from seamflow.ids import Json

__all__ = ["FileConnector"]

M = type[BaseModel]
_LEDGER_KEPT = timedelta(days=7)
"""Write records older than this are deleted: a retry comes within minutes or hours."""


class FileConnector:
    """Files in a root folder: actions `read`, `write`, `list`, `move`; feeds `files` and `rows`; streams `read`.

    `write` is idempotent by key through the write ledger in `ROOT/.seamflow/writes/`;
    `move` is idempotent because a retry finds the file already moved.
    """

    kind: ClassVar[str] = "file"
    Config: ClassVar[type[BaseModel]] = FileConfig
    actions: ClassVar[Mapping[str, Action]] = ACTIONS
    feeds: ClassVar[Mapping[str, Feed]] = FEEDS

    def __init__(self) -> None:
        self._root: Root | None = None
        self._name = "file"
        self._pruned_at = 0.0
        self._writing = asyncio.Lock()  # two writes to one file must not both copy the old content

    async def open(self, connection: Connection) -> None:
        """Validate the connection's config. The root folder is checked by `check`, not here.

        Raises:
            errors.InvalidInput: the config is wrong; names the connection and field.
        """
        config = parse_config(FileConfig, connection)
        self._root = Root(Path(config.root))
        self._name = connection.name

    async def close(self) -> None:
        """Nothing to release: files are opened per call."""

    async def check(self) -> str:
        """Prove the root folder exists and can be read and written.

        Raises:
            errors.Permanent: the root is missing, not a folder, or not readable or writable.
        """
        root, where = self._opened("check")
        return await asyncio.to_thread(_check_root, root, where)

    async def call(self, action: str, params: Json, *, idempotency_key: str) -> Json:
        """Perform `read`, `write`, `list` or `move`.

        Raises:
            errors.Permanent: bad inputs, a path outside the root, a missing file, a malformed row.
            errors.Transient: the file system failed for now (a full disk, a network share away).
        """
        root, where = self._opened(action)
        spec = ACTIONS.get(action)
        if spec is None:
            raise errors.Permanent(
                f"unknown action {errors.redact(action)}; expected one of {', '.join(ACTIONS)}", where=where
            )
        inputs = _validate(spec.input, params, where)
        match inputs:
            case ReadInput():
                return await asyncio.to_thread(_read, root, inputs, where)
            case WriteInput():
                async with self._writing:
                    result = await asyncio.to_thread(write_rows, root, inputs, idempotency_key, where)
                await self._prune_ledger(root)
                return result
            case ListInput():
                return await asyncio.to_thread(_list, root, inputs, where)
            case MoveInput():
                return await asyncio.to_thread(_move, root, inputs, where)
        raise AssertionError(f"no work for {type(inputs).__name__}")

    async def stream(self, action: str, params: Json, *, start: Json, chunk_rows: int) -> AsyncIterator[Chunk]:
        """Yield the rows of `read` in chunks of `chunk_rows`, from `start` (a chunk's position, or None).

        Each chunk's `position` is where reading resumes after it: `{offset, row, line}` for
        CSV and JSON Lines, `{row, sheet_row}` for XLSX.

        Raises:
            errors.Permanent: not `read`, `offset`/`limit` given, or a malformed row (named).
        """
        root, where = self._opened(action)
        if action != "read":
            raise errors.Permanent(f"only read can be streamed, not {errors.redact(action)}", where=where)
        inputs = _validate(ReadInput, params, where)
        assert isinstance(inputs, ReadInput)
        if {"offset", "limit"} & inputs.model_fields_set:
            raise errors.Permanent("a stream starts at start: and has no offset or limit", where=where)
        rows = await asyncio.to_thread(_open, root, inputs, start, where)
        try:
            while not rows.done:
                taken = await asyncio.to_thread(rows.take, max(1, chunk_rows))
                if taken:
                    yield Chunk(taken, rows.position)
        finally:
            rows.close()

    async def poll(self, feed: str, params: Json, cursor: Json, *, limit: int) -> Batch:
        """Poll `files` (new files) or `rows` (their rows); the batch's ack moves or marks finished files.

        Raises:
            errors.Permanent: bad settings, or a file that cannot be read (named).
            errors.Transient: the file system failed for now.
        """
        root, where = self._opened(f"feed {feed}")
        spec = FEEDS.get(feed)
        if spec is None:
            raise errors.Permanent(
                f"unknown feed {errors.redact(feed)}; expected one of {', '.join(FEEDS)}", where=where
            )
        inputs = _validate(spec.input, params, where)
        if isinstance(inputs, RowsFeedInput):
            found = await asyncio.to_thread(poll_rows, root, inputs, cursor, max(1, limit), where)
            ack = _finisher(root, found.finished, inputs.move_to, where)
            return Batch(found.items, cursor=found.cursor(), more=found.more, ack=ack)
        assert isinstance(inputs, FilesFeedInput)
        waiting = await asyncio.to_thread(feeds.new_files, root, inputs, where)
        taken = waiting[: max(1, limit)]
        items = await asyncio.to_thread(_file_items, taken, where)
        ack = _finisher(root, taken, inputs.move_to, where)
        return Batch(items, cursor=None, more=len(waiting) > len(taken), ack=ack)

    def _opened(self, what: str) -> tuple[Root, str]:
        where = f"{self._name}.{what}"
        if self._root is None:
            raise errors.SeamflowError(f"{where}: connection not open", code="connector.closed")
        return self._root, where

    async def _prune_ledger(self, root: Root) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._pruned_at > 3600:
            self._pruned_at = now
            ledger = WriteLedger(root.path / ".seamflow" / "writes")
            await asyncio.to_thread(ledger.prune, _LEDGER_KEPT)


def _validate(model: M, params: Json, where: str) -> BaseModel:
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        problems = "; ".join(
            f"with.{'.'.join(map(str, e['loc']))}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)
        )
        raise errors.Permanent(f"invalid input: {problems}", where=where) from None


def _finisher(
    root: Root, versions: list[feeds.FileVersion], move_to: str | None, where: str
) -> Callable[[], Awaitable[None]] | None:
    """The ack of a batch: move or mark the files it finished (after its events are committed)."""
    if not versions:
        return None

    async def ack() -> None:
        await asyncio.to_thread(feeds.finish, root, versions, move_to, where)

    return ack


def _file_items(versions: list[feeds.FileVersion], where: str) -> list[Item]:
    items = []
    for version in versions:
        body, key = feeds.file_body(version, where)
        items.append(Item(body=body, key=key, at=version.modified))
    return items


def _open(root: Root, inputs: ReadInput, start: Json, where: str) -> Rows:
    path = root.resolve(inputs.path, where)
    shown = root.relative(path)
    file_format = format_of(inputs, inputs.path)
    if file_format is None:
        raise errors.Permanent(f"cannot tell the format of {shown}; expected format: csv, xlsx or jsonl", where=where)
    delimiter = inputs.delimiter or ("\t" if shown.lower().endswith(".tsv") else ",")
    layout = Layout(file_format, inputs.encoding, delimiter, inputs.header, inputs.columns, inputs.sheet)
    return open_rows(Place(path, shown, where), layout, start)


def _read(root: Root, inputs: ReadInput, where: str) -> Json:
    rows = _open(root, inputs, None, where)
    try:
        skipped = 0
        while skipped < inputs.offset and not rows.done:
            skipped += len(rows.take(min(10_000, inputs.offset - skipped)))
            rows.raise_failure()
        taken = rows.take(inputs.limit) if not rows.done else []
        rows.raise_failure()  # a bad row within the page: the page is refused, not cut short
        return {"rows": taken, "next_offset": skipped + len(taken), "done": rows.done}
    finally:
        rows.close()


def _list(root: Root, inputs: ListInput, where: str) -> Json:
    folder = root.resolve(inputs.folder, where, what="folder")
    root.check_pattern(inputs.glob, where)
    found: list[Json] = []
    truncated = False
    try:
        for path in sorted(folder.glob(inputs.glob)):
            if any(p.startswith(".") for p in path.relative_to(folder).parts) or not path.is_file():
                continue
            if not root.is_inside(path):
                continue
            if len(found) >= inputs.limit:
                truncated = True
                break
            info = path.stat()
            modified = datetime.fromtimestamp(info.st_mtime, UTC).isoformat()
            found.append({"path": root.relative(path), "name": path.name, "size": info.st_size, "modified": modified})
    except OSError as exc:
        raise classify(exc, inputs.folder, where) from None
    return {"files": found, "count": len(found), "truncated": truncated}


def _move(root: Root, inputs: MoveInput, where: str) -> Json:
    source = root.resolve(inputs.path, where)
    folder = root.resolve(inputs.to, where, what="to")
    target = folder / source.name
    shown, moved = root.relative(source), root.relative(target)
    if source == target:
        return {"path": moved, "from": shown}
    try:
        if not source.exists():
            if target.exists():  # a retry: the first attempt moved it
                return {"path": moved, "from": shown}
            raise errors.Permanent(f"{shown} does not exist; expected a file to move", where=where)
        if not source.is_file():
            raise errors.Permanent(f"{shown} is not a file; expected a file to move", where=where)
        if target.exists() and not inputs.overwrite:
            raise errors.Permanent(f"{moved} already exists; expected another folder, or overwrite: true", where=where)
        folder.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        fsync_folder(folder)
    except OSError as exc:
        raise classify(exc, shown, where) from None
    return {"path": moved, "from": shown}


def _check_root(root: Root, where: str) -> str:
    folder = root.path
    if not folder.exists():
        raise errors.Permanent(f"root folder {folder} does not exist; expected an existing folder", where=where)
    if not folder.is_dir():
        raise errors.Permanent(f"root {folder} is not a folder; expected a folder", where=where)
    try:
        entries = sum(1 for _ in os.scandir(folder))
    except OSError as exc:
        raise errors.Permanent(f"root folder {folder} cannot be read: {exc.strerror}", where=where) from None
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".seamflow-check-"):
            pass
    except OSError as exc:
        raise errors.Permanent(f"root folder {folder} cannot be written: {exc.strerror}", where=where) from None
    return f"folder {folder} is readable and writable ({entries} entries)"
