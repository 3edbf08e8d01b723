"""The `rows` feed: the rows of new files, one event each, with a cursor that resumes mid-file.

The cursor is `{"file": the file being read (path, size, mtime_ns), "position": where its
next row starts, "finished": files whose last rows were in the previous batch}`. A batch's
`ack` moves (or marks) the files it finished; a file named in `finished` that is still
there (the ack did not happen before a crash) is finished by the next batch's ack without
reading it again. The cursor stays small: at most `_MAX_FILES` files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from seamflow import errors
from seamflow.connectors.base import Item
from seamflow.connectors.file.config import Root
from seamflow.connectors.file.feeds import FileVersion, new_files, version_of
from seamflow.connectors.file.inputs import RowsFeedInput, format_of
from seamflow.connectors.file.reading import Layout, Place, open_rows
from seamflow.ids import Json

__all__ = ["RowsPoll", "poll_rows"]

_MAX_FILES = 100
"""Most files finished by one batch (many small files), which bounds the cursor."""


@dataclass(slots=True)
class RowsPoll:
    """What one poll of the `rows` feed found."""

    items: list[Item] = field(default_factory=list)
    finished: list[FileVersion] = field(default_factory=list)
    """Files whose every row is in this batch or an earlier one: moved or marked by the ack."""
    current: FileVersion | None = None
    position: Json = None
    more: bool = False

    def cursor(self) -> Json:
        return {
            "file": self.current.identity() if self.current else None,
            "position": self.position,
            "finished": [v.identity() for v in self.finished],
        }


def poll_rows(root: Root, params: RowsFeedInput, cursor: Json, limit: int, where: str) -> RowsPoll:
    """Read up to `limit` rows of new files after `cursor`. Blocking.

    Raises:
        errors.Permanent: a file cannot be read (its name and row are given); the feed stops
            at that file until it is fixed (a fixed file is a new version, read from its start)
            or removed.
        errors.Transient: the file system failed for now.
    """
    state = cursor if isinstance(cursor, dict) else {}
    found = RowsPoll()
    finished = state.get("finished")
    for identity in finished if isinstance(finished, list) else []:
        version = version_of(root, identity, where)
        if version is not None:
            found.finished.append(version)
    found.current = version_of(root, state.get("file"), where)
    found.position = state.get("position") if found.current else None
    waiting: list[FileVersion] | None = None
    while len(found.items) < limit and len(found.finished) < _MAX_FILES:
        if found.current is None:
            if waiting is None:
                seen = {v.shown for v in found.finished}
                waiting = [v for v in new_files(root, params, where) if v.shown not in seen]
            if not waiting:
                return found
            found.current, found.position = waiting.pop(0), None
        if not _read(root, params, found, limit, where):
            found.more = True
            return found
    found.more = True
    return found


def _read(root: Root, params: RowsFeedInput, found: RowsPoll, limit: int, where: str) -> bool:
    """Add rows of `found.current` from `found.position`; False if the batch must end here."""
    version = found.current
    assert version is not None
    file_format = format_of(params, version.shown)
    if file_format is None:
        raise errors.Permanent(
            f"cannot tell the format of {version.shown}; expected format: csv, xlsx or jsonl", where=where
        )
    delimiter = params.delimiter or _default_delimiter(version)
    layout = Layout(file_format, params.encoding, delimiter, params.header, params.columns, params.sheet)
    before = _row_count(found.position)
    try:
        rows = open_rows(Place(version.path, version.shown, where), layout, found.position)
        try:
            taken = rows.take(limit - len(found.items))
            position, done = rows.position, rows.done
        finally:
            rows.close()
    except errors.Permanent:
        if found.items or found.finished:
            return False  # deliver what came before the bad file; the next poll reports it
        raise
    for number, row in enumerate(taken, start=before + 1):
        body: Json = {"path": version.shown, "name": version.path.name, "row_number": number, "row": row}
        found.items.append(Item(body=body, key=f"{version.key}:{number}", at=version.modified))
    if done:
        found.finished.append(version)
        found.current, found.position = None, None
        return True
    found.position = position
    return False  # the batch is full, or a bad row comes next


def _row_count(position: Json) -> int:
    count = position.get("row") if isinstance(position, dict) else 0
    return count if isinstance(count, int) else 0


def _default_delimiter(version: FileVersion) -> str:
    return "\t" if version.shown.lower().endswith(".tsv") else ","
