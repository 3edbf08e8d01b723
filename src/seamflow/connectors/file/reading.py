"""Reading a file's rows piece by piece, from a position where a previous read stopped.

CSV and JSON Lines are read line by line from a byte offset, so memory stays flat however
big the file; a position is `{"offset": byte where the next row starts, "row": rows read
before it, "line": lines before it}`. XLSX positions are in `workbook.py`. Blank lines and
empty rows are skipped and not counted.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from seamflow import codec, errors
from seamflow.connectors.file.encoding import BOM, DETECT_BYTES, check_encoding, detect
from seamflow.connectors.file.failure import classify
from seamflow.connectors.file.inputs import FileFormat
from seamflow.ids import Json

__all__ = ["Layout", "RowSource", "Rows", "open_rows", "position_field"]

MAX_LINE_BYTES = 4 << 20
"""Longest line read; a longer one (a binary file, a missing newline) is an error, not a memory blow-up."""


@dataclass(frozen=True, slots=True)
class Layout:
    """How a file's rows are encoded, with the format resolved."""

    format: FileFormat
    encoding: str = "auto"
    delimiter: str = ","
    header: bool = True
    columns: list[str] | None = None
    sheet: str | int = 0


@dataclass(frozen=True, slots=True)
class Place:
    """The file being read: its path, its name as the step wrote it, and the step's `where`."""

    path: Path
    shown: str
    where: str


class RowSource(Protocol):
    """One format's reader: its rows, and the position after the last row it yielded."""

    def rows(self) -> Iterator[Json]: ...

    def position(self) -> Json: ...

    def is_exhausted(self) -> bool: ...

    def close(self) -> None: ...


class Rows:
    """A file's rows taken in slices; `position` is where the next slice starts."""

    def __init__(self, source: RowSource) -> None:
        self._source = source
        self._iter = source.rows()
        self._failure: errors.ConnectorError | None = None
        self.done = False
        """True once the end of the file was reached."""

    def take(self, count: int) -> list[Json]:
        """Return up to `count` rows; fewer only at the end of the file or before a bad row.

        A bad row after some good ones ends the slice; the next `take` raises its error, so the
        good rows can be used (and the position kept) first.

        Raises:
            errors.Permanent: a malformed row, naming the file and row.
            errors.Transient: the file system failed for now.
        """
        if self._failure is not None:
            raise self._failure
        rows: list[Json] = []
        try:
            for row in self._iter:
                rows.append(row)
                if len(rows) >= count:
                    break
            else:
                self.done = True
        except errors.Permanent as exc:
            if not rows:
                raise
            self._failure = exc
        if not self.done and self._source.is_exhausted():
            self.done = True
        return rows

    def raise_failure(self) -> None:
        """Raise the error of a bad row that ended the last slice, if any (for callers that want all or nothing)."""
        if self._failure is not None:
            raise self._failure

    @property
    def position(self) -> Json:
        """Where reading resumes after the rows taken so far."""
        return self._source.position()

    def close(self) -> None:
        """Close the file."""
        self._source.close()


def open_rows(place: Place, layout: Layout, start: Json) -> Rows:
    """Open `place` for reading its rows from `start` (None: the first row).

    Raises:
        errors.Permanent: the file is missing or unreadable as `layout` says, or `start` is not
            a position in it.
        errors.Transient: the file system failed for now.
    """
    if layout.format == "xlsx":
        from seamflow.connectors.file.workbook import XlsxSource  # openpyxl only when needed

        return Rows(XlsxSource(place, layout, start))
    try:
        file = place.path.open("rb")
    except OSError as exc:
        raise classify(exc, place.shown, place.where) from None
    try:
        return Rows(_LineSource(file, place, layout, start))
    except BaseException:
        file.close()
        raise


def csv_header(place: Place, layout: Layout) -> list[str] | None:
    """The column names in the header row of a CSV file (None if it is empty).

    Raises:
        errors.Permanent: the header cannot be read as `layout` says.
    """
    try:
        file = place.path.open("rb")
    except OSError as exc:
        raise classify(exc, place.shown, place.where) from None
    with file:
        return _LineSource(file, place, layout, None).names or None


def position_field(start: Json, name: str, place: Place) -> int:
    """The non-negative integer `name` of a position, or a Permanent error naming it."""
    value = start.get(name) if isinstance(start, dict) else None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise errors.Permanent(
            f"file {place.shown}: start {errors.redact(start)} has no {name}; "
            "expected a position from an earlier chunk, or null",
            where=place.where,
        )
    return value


class _Lines:
    """The decoded lines of a file from a byte offset, counting bytes and lines (fed to csv.reader)."""

    def __init__(self, file: BinaryIO, encoding: str, offset: int, line: int, place: Place) -> None:
        self._file, self._encoding, self._place = file, encoding, place
        self.offset, self.line = offset, line

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        data = self.raw()
        try:
            return data.decode(self._encoding)
        except UnicodeDecodeError as exc:
            raise errors.Permanent(
                f"file {self._place.shown} line {self.line}: bytes that are not {self._encoding} text at byte "
                f"{self.offset - len(data) + exc.start}; expected encoding: to name the file's encoding",
                where=self._place.where,
            ) from None

    def raw(self) -> bytes:
        """The next line's bytes (with its newline)."""
        try:
            data = self._file.readline(MAX_LINE_BYTES + 1)
        except OSError as exc:
            raise classify(exc, self._place.shown, self._place.where) from None
        if not data:
            raise StopIteration
        if len(data) > MAX_LINE_BYTES:
            raise errors.Permanent(
                f"file {self._place.shown} line {self.line + 1}: longer than {MAX_LINE_BYTES >> 20} MiB; "
                "expected a text file with rows on lines",
                where=self._place.where,
            )
        self.offset += len(data)
        self.line += 1
        return data


class _LineSource:
    """CSV and JSON Lines: rows on lines, resumable at a byte offset."""

    def __init__(self, file: BinaryIO, place: Place, layout: Layout, start: Json) -> None:
        self._file, self._place, self._layout = file, place, layout
        self._size = os.fstat(file.fileno()).st_size
        head = file.read(DETECT_BYTES)
        self._encoding = self._encoding_of(head)
        first = len(BOM) if self._encoding == "utf-8" and head.startswith(BOM) else 0
        self._names: list[str] | None = layout.columns
        if layout.format == "csv" and layout.header:
            first = self._read_header(first)
        else:
            self._first_line = 0
        if start is None:
            self._offset, self._row, self._line = first, 0, self._first_line
        else:
            self._offset = position_field(start, "offset", place)
            self._row = position_field(start, "row", place)
            self._line = position_field(start, "line", place)
            self._check_start(first)
        file.seek(self._offset)
        self._lines = _Lines(file, self._encoding, self._offset, self._line, place)

    def _encoding_of(self, head: bytes) -> str:
        if self._layout.format == "jsonl" or self._layout.encoding == "auto":
            return "utf-8" if self._layout.format == "jsonl" else detect(head, self._place.shown, self._place.where)
        codec_name = check_encoding(self._layout.encoding, self._place.where)
        return "utf-8" if codec_name == "utf-8-sig" else codec_name

    def _read_header(self, first: int) -> int:
        """Read the header row; return the offset of the first data row."""
        self._file.seek(first)
        lines = _Lines(self._file, self._encoding, first, 0, self._place)
        reader = csv.reader(lines, delimiter=self._layout.delimiter, strict=True)
        header: list[str] = []
        while not header:
            try:
                header = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                raise self._malformed(1, exc) from None
        if self._names is not None and header and len(header) != len(self._names):
            raise errors.Permanent(
                f"file {self._place.shown} header: {len(header)} columns, but columns: names {len(self._names)}; "
                "expected one name per column",
                where=self._place.where,
            )
        if self._names is None:
            if len(set(header)) != len(header):
                twice = sorted({name for name in header if header.count(name) > 1})
                raise errors.Permanent(
                    f"file {self._place.shown} header: column {errors.redact(twice[0])} appears twice; "
                    "expected distinct column names (or columns: to name them)",
                    where=self._place.where,
                )
            self._names = header
        self._first_line = lines.line
        return lines.offset

    def _check_start(self, first: int) -> None:
        ok = first <= self._offset <= self._size
        if ok and self._offset > first:
            self._file.seek(self._offset - 1)
            ok = self._file.read(1) == b"\n"
        if not ok:
            raise errors.Permanent(
                f"file {self._place.shown}: start offset {self._offset} is not where a row begins "
                f"(the file has {self._size} bytes; was it replaced?); expected a position from an earlier chunk",
                where=self._place.where,
            )

    @property
    def names(self) -> list[str] | None:
        """The column names (from the header row or `columns:`)."""
        return self._names

    def rows(self) -> Iterator[Json]:
        return self._json_rows() if self._layout.format == "jsonl" else self._csv_rows()

    def _csv_rows(self) -> Iterator[Json]:
        lines, names = self._lines, self._names
        width = len(names) if names else None
        reader = csv.reader(lines, delimiter=self._layout.delimiter, strict=True)
        while True:
            first_line = lines.line + 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise self._malformed(first_line, exc) from None
            if fields and width is not None and len(fields) != width:
                raise errors.Permanent(
                    f"file {self._place.shown} row {self._row + 1} (line {first_line}): "
                    f"expected {width} columns, found {len(fields)}",
                    where=self._place.where,
                )
            self._offset, self._line = lines.offset, lines.line
            if fields:
                self._row += 1
                yield dict(zip(names, fields, strict=True)) if names else list(fields)

    def _json_rows(self) -> Iterator[Json]:
        lines = self._lines
        while True:
            try:
                data = lines.raw()
            except StopIteration:
                return
            if data.strip():
                try:
                    row = codec.parse_untrusted(data)
                except errors.PayloadInvalid as exc:
                    raise errors.Permanent(
                        f"file {self._place.shown} row {self._row + 1} (line {lines.line}): {exc}",
                        where=self._place.where,
                    ) from None
                self._row += 1
                self._offset, self._line = lines.offset, lines.line
                yield row
            else:
                self._offset, self._line = lines.offset, lines.line

    def _malformed(self, line: int, exc: csv.Error) -> errors.Permanent:
        return errors.Permanent(
            f"file {self._place.shown} line {line}: {exc}; expected CSV separated by {self._layout.delimiter!r}",
            where=self._place.where,
        )

    def position(self) -> Json:
        return {"offset": self._offset, "row": self._row, "line": self._line}

    def is_exhausted(self) -> bool:
        return self._offset >= self._size

    def close(self) -> None:
        self._file.close()
