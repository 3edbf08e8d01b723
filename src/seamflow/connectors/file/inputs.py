"""The actions and feeds of the `file` connector, and their inputs (a step's `with:`, a trigger's `with:`)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from seamflow.connectors.base import Action, Feed

__all__ = [
    "ACTIONS",
    "FEEDS",
    "FileFormat",
    "FilesFeedInput",
    "FormatInput",
    "ListInput",
    "MoveInput",
    "ReadInput",
    "RowsFeedInput",
    "WriteInput",
    "format_of",
]

_STRICT = ConfigDict(extra="forbid")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}

FileFormat = Literal["csv", "xlsx", "jsonl"]

_EXTENSIONS: dict[str, FileFormat] = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "csv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


def _duration(value: object) -> object:
    """`"2s"`, `"500ms"`, `"5m"` or a number of seconds, as a timedelta (other values left to pydantic)."""
    if isinstance(value, str) and (match := _DURATION.match(value)):
        return timedelta(seconds=float(match.group(1)) * _UNIT_S[match.group(2)])
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]


class FormatInput(BaseModel):
    """How a file's rows are encoded: shared by `read`, `write` and the `rows` feed."""

    model_config = _STRICT
    format: FileFormat | None = None
    """`csv`, `xlsx` or `jsonl`; by default from the extension (.csv .txt .tsv, .xlsx .xlsm, .jsonl .ndjson)."""
    encoding: str = "auto"
    """CSV text encoding: `auto` (detect when reading; `utf-8` when writing), `utf-8`, `utf-8-sig`, `gbk`, `gb18030`."""
    delimiter: str | None = Field(None, min_length=1, max_length=1)
    """CSV field separator; by default `,` (a tab for .tsv)."""
    header: bool = True
    """CSV/XLSX: the first row names the columns (rows are objects); without it rows are lists
    (or objects named by `columns`)."""
    columns: list[str] | None = Field(None, min_length=1)
    """Column names: for a file without a header row when reading; the column order when writing."""
    sheet: str | int = 0
    """XLSX: the sheet's name, or its index (0 is the first)."""

    @model_validator(mode="after")
    def _unique_columns(self) -> FormatInput:
        if self.columns is not None and len(set(self.columns)) != len(self.columns):
            raise ValueError("columns has a name twice; expected distinct names")
        return self


class ReadInput(FormatInput):
    """Inputs of `read`: a file and which of its rows."""

    path: str
    offset: int = Field(0, ge=0)
    """Rows to skip (the `next_offset` of the previous read)."""
    limit: int = Field(1000, ge=1, le=10_000)
    """Most rows returned; rows are journaled with the step, so read big files with a load, not here."""


class WriteInput(FormatInput):
    """Inputs of `write`: a file, its rows and whether it may exist."""

    path: str
    rows: list[Any]
    """Objects (column → value); lists when `header: false` and no `columns`; any JSON value for jsonl."""
    mode: Literal["create", "overwrite", "append"] = "create"
    """`create` refuses an existing file; `overwrite` replaces it; `append` adds rows (csv, jsonl)."""


class ListInput(BaseModel):
    """Inputs of `list`: the files of a folder whose names match a glob."""

    model_config = _STRICT
    folder: str = "."
    glob: str = Field("*", min_length=1)
    """Shell-style pattern, `**/` for sub-folders: `*.csv`, `2026-*/*.xlsx`."""
    limit: int = Field(1000, ge=1, le=10_000)


class MoveInput(BaseModel):
    """Inputs of `move`: a file and the folder it goes to."""

    model_config = _STRICT
    path: str
    to: str
    """The folder (relative to the root); created if missing."""
    overwrite: bool = False
    """Replace a file of the same name in `to`; otherwise that is a Permanent error."""


class FilesFeedInput(BaseModel):
    """Settings of the `files` feed (a `poll` trigger's `with:`)."""

    model_config = _STRICT
    folder: str = "."
    glob: str = Field("*", min_length=1)
    settle: Duration = timedelta(seconds=2)
    """A file changed more recently than this is still being written: it is taken by a later poll."""
    move_to: str | None = None
    """Folder a file is moved to once its events are committed; without it a `NAME.done` marker is written."""


class RowsFeedInput(FilesFeedInput, FormatInput):
    """Settings of the `rows` feed: which files, and how their rows are encoded."""


def format_of(inputs: FormatInput, path: str) -> FileFormat | None:
    """The file format: declared, or from the path's extension (None if neither says)."""
    if inputs.format is not None:
        return inputs.format
    dot = path.rfind(".")
    return _EXTENSIONS.get(path[dot:].lower()) if dot >= 0 else None


ACTIONS: dict[str, Action] = {
    "read": Action(
        "read",
        ReadInput,
        "Read up to `limit` rows from `offset`; returns {rows, next_offset, done}. Only reads.",
        is_idempotent=True,
    ),
    "write": Action(
        "write",
        WriteInput,
        "Write rows to a temporary file and rename it into place; returns {path, rows, bytes, mode}. "
        "The idempotency key is recorded in the root's .seamflow/writes ledger: a retry writes once.",
        is_idempotent=True,
    ),
    "list": Action(
        "list",
        ListInput,
        "List files matching a glob; returns {files: [{path, name, size, modified}], count, truncated}.",
        is_idempotent=True,
    ),
    "move": Action(
        "move",
        MoveInput,
        "Move a file into a folder; returns {path, from}. A retry finds the file already there: one effect.",
        is_idempotent=True,
    ),
}

FEEDS: dict[str, Feed] = {
    "files": Feed(
        "files",
        FilesFeedInput,
        "poll",
        "New files in a folder matching a glob, each once: {path, name, folder, size, modified, sha256}.",
    ),
    "rows": Feed(
        "rows",
        RowsFeedInput,
        "poll",
        "The rows of new files, one event each: {path, name, row_number, row}; resumes mid-file.",
    ),
}
