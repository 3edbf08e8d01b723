"""XLSX workbooks: rows read with openpyxl's read-only mode and written with its write-only mode.

A position in a sheet is `{"row": data rows read, "sheet_row": the sheet row (1-based) to
read next}`. Numbers come typed: whole numbers as int, fractions as Decimal made from the
shortest text of the stored double (`1999.9` → `Decimal("1999.9")`, never
`1999.90000000000009`); dates and times as ISO 8601 text (a date-time at midnight as a date).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl  # type: ignore[import-untyped]  # openpyxl ships no type information
from openpyxl.cell import WriteOnlyCell  # type: ignore[import-untyped]
from openpyxl.utils import get_column_letter  # type: ignore[import-untyped]
from openpyxl.utils.exceptions import InvalidFileException  # type: ignore[import-untyped]

from seamflow import codec, errors
from seamflow.connectors.file.failure import classify
from seamflow.connectors.file.reading import Layout, Place, position_field
from seamflow.ids import Json

__all__ = ["XlsxSource", "cell_value", "write_workbook"]


class XlsxSource:
    """The rows of one sheet of a workbook, resumable at a sheet row."""

    def __init__(self, place: Place, layout: Layout, start: Json) -> None:
        self._place, self._layout = place, layout
        self._book = _open_book(place)
        try:
            self._sheet = self._pick_sheet(layout.sheet)
            self._names = layout.columns
            first = self._read_header() if layout.header else 1
            if start is None:
                self._row, self._next = 0, first
            else:
                self._row = position_field(start, "row", place)
                self._next = max(position_field(start, "sheet_row", place), first)
        except BaseException:
            self._book.close()
            raise

    def _pick_sheet(self, sheet: str | int) -> Any:
        names: list[str] = list(self._book.sheetnames)
        if isinstance(sheet, int) and 0 <= sheet < len(names):
            return self._book[names[sheet]]
        if isinstance(sheet, str) and sheet in names:
            return self._book[sheet]
        raise errors.Permanent(
            f"file {self._place.shown} has no sheet {errors.redact(sheet)}; expected one of "
            f"{', '.join(map(repr, names))} or an index from 0 to {len(names) - 1}",
            where=self._place.where,
        )

    def _read_header(self) -> int:
        """Read the first non-empty row as the column names; return the sheet row after it."""
        for number, values in enumerate(self._sheet.iter_rows(values_only=True), start=1):
            if any(v is not None for v in values):
                header = list(values)
                while header and header[-1] is None:
                    header.pop()
                if self._names is None:
                    self._names = self._header_names(header, number)
                elif len(header) != len(self._names):
                    raise self._bad(number, f"{len(header)} header columns, but columns: names {len(self._names)}")
                return number + 1
        self._names = self._names or []
        return 1

    def _header_names(self, header: list[Any], number: int) -> list[str]:
        names: list[str] = []
        for index, value in enumerate(header, start=1):
            if value is None or str(value) == "":
                raise self._bad(number, f"column {get_column_letter(index)} has no name; expected a header name")
            name = str(cell_value(value))
            if name in names:
                raise self._bad(number, f"column {errors.redact(name)} appears twice; expected distinct names")
            names.append(name)
        return names

    def rows(self) -> Iterator[Json]:
        names = self._names
        width = len(names) if names else None
        for number, values in enumerate(self._sheet.iter_rows(min_row=self._next, values_only=True), self._next):
            if all(v is None for v in values):
                self._next = number + 1
                continue
            cells = [cell_value(v) for v in values]
            if width is not None:
                extra = next((i for i in range(width, len(cells)) if cells[i] is not None), None)
                if extra is not None:
                    raise self._bad(
                        number, f"a value in column {get_column_letter(extra + 1)}, beyond the {width} named"
                    )
                cells = cells[:width] + [None] * (width - len(cells))
            self._next, self._row = number + 1, self._row + 1
            yield dict(zip(names, cells, strict=True)) if names else cells

    def _bad(self, number: int, problem: str) -> errors.Permanent:
        return errors.Permanent(
            f"file {self._place.shown} sheet {self._sheet.title!r} row {number}: {problem}", where=self._place.where
        )

    def position(self) -> Json:
        return {"row": self._row, "sheet_row": self._next}

    def is_exhausted(self) -> bool:
        return False

    def close(self) -> None:
        self._book.close()


def _open_book(place: Place) -> Any:
    try:
        return openpyxl.load_workbook(place.path, read_only=True, data_only=True)
    except OSError as exc:
        raise classify(exc, place.shown, place.where) from None
    except (zipfile.BadZipFile, InvalidFileException, KeyError, ValueError) as exc:
        raise errors.Permanent(
            f"file {place.shown} is not an XLSX workbook ({type(exc).__name__}); expected an .xlsx file",
            where=place.where,
        ) from None


def cell_value(value: Any) -> Json:
    """A cell's value as JSON: numbers exact (Decimal for fractions), dates and times as ISO text."""
    if value is None or isinstance(value, bool | int | str | Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() and value.tzinfo is None else value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return Decimal(str(value.total_seconds()))
    return str(value)


def write_workbook(target: Path, sheet: str, header: Sequence[str] | None, rows: Iterator[list[Json]]) -> int:
    """Write one sheet with `header` (if any) then `rows` into `target`; return the rows written.

    Strings stay text (one that starts with `=` is not made a formula), numbers stay numbers.
    """
    book = openpyxl.Workbook(write_only=True)
    ws = book.create_sheet(title=sheet)
    if header is not None:
        ws.append([_text_cell(ws, name) for name in header])
    count = 0
    for values in rows:
        ws.append([_write_value(ws, v) for v in values])
        count += 1
    book.save(target)
    return count


def _write_value(ws: Any, value: Json) -> Any:
    if isinstance(value, str):
        return _text_cell(ws, value)
    if isinstance(value, dict | list):
        return _text_cell(ws, codec.dumps_text(value))
    return value


def _text_cell(ws: Any, text: str) -> Any:
    cell = WriteOnlyCell(ws, value=text)
    cell.data_type = "s"  # "=..." is text from a system, not a formula for Excel to run
    return cell
