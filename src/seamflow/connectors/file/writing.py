"""The `write` action: rows encoded as CSV, XLSX or JSON Lines into a temporary file renamed into place.

Readers of the folder see the old file or the whole new one, never half a file; the write
ledger (`ledger.py`) makes a retry with the same idempotency key take effect once. CSV cells
are written as text: a string as it is, a Decimal in plain notation, null as an empty cell.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO

from seamflow import codec, errors
from seamflow.connectors.file.config import STATE_FOLDER, Root
from seamflow.connectors.file.encoding import BOM, DETECT_BYTES, check_encoding, detect
from seamflow.connectors.file.failure import classify
from seamflow.connectors.file.inputs import FileFormat, WriteInput, format_of
from seamflow.connectors.file.ledger import WriteLedger, replace_durably
from seamflow.connectors.file.reading import Layout, Place, csv_header
from seamflow.ids import Json

__all__ = ["write_rows"]


@dataclass(frozen=True, slots=True)
class _Job:
    inputs: WriteInput
    format: FileFormat
    target: Path
    shown: str
    where: str


def write_rows(root: Root, inputs: WriteInput, idempotency_key: str, where: str) -> Json:
    """Write `inputs.rows` to `inputs.path` once per idempotency key; return `{path, rows, bytes, mode}`.

    Blocking: call from a worker thread.

    Raises:
        errors.Permanent: a bad path, format, mode or row (named), or a value the encoding cannot hold.
        errors.Transient: the file system failed for now (a full disk, a network share away).
    """
    target = root.resolve(inputs.path, where)
    shown = root.relative(target)
    file_format = format_of(inputs, inputs.path)
    if file_format is None:
        raise errors.Permanent(f"cannot tell the format of {shown}; expected format: csv, xlsx or jsonl", where=where)
    job = _Job(inputs, file_format, target, shown, where)
    ledger = WriteLedger(root.path / STATE_FOLDER / "writes")
    try:
        return _write_once(job, ledger, idempotency_key)
    except OSError as exc:
        raise classify(exc, shown, where) from None


def _write_once(job: _Job, ledger: WriteLedger, key: str) -> Json:
    record = ledger.record(key)
    if record is not None:
        if record.get("state") == "done":
            return record.get("result")
        temp = job.target.parent / str(record.get("temp"))
        if not temp.exists():  # renamed into place before the crash: the write is done
            ledger.finish(key, record.get("result"))
            return record.get("result")
        temp.unlink()
    exists = job.target.exists()
    if job.target.is_dir():
        raise errors.Permanent(f"{job.shown} is a folder; expected a file path", where=job.where)
    if exists and job.inputs.mode == "create":
        raise errors.Permanent(
            f"{job.shown} already exists; expected a new file name, or mode: overwrite or append", where=job.where
        )
    if job.inputs.mode == "append" and job.format == "xlsx":
        raise errors.Permanent("mode append is for csv and jsonl; expected mode: create or overwrite", where=job.where)
    job.target.parent.mkdir(parents=True, exist_ok=True)
    temp = job.target.parent / f".{job.target.name}.{hashlib.sha256(key.encode()).hexdigest()[:16]}.tmp"
    try:
        count = _build(job, temp, appending=exists and job.inputs.mode == "append")
        result: Json = {"path": job.shown, "rows": count, "bytes": temp.stat().st_size, "mode": job.inputs.mode}
        ledger.prepare(key, temp.name, result)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    replace_durably(temp, job.target)
    ledger.finish(key, result)
    return result


def _build(job: _Job, temp: Path, *, appending: bool) -> int:
    """Write the whole new file under `temp`, flushed to disk; return the rows written."""
    if job.format == "xlsx":
        from seamflow.connectors.file.workbook import write_workbook  # openpyxl only when needed

        names, cells = _table(job, job.inputs.columns)
        sheet = job.inputs.sheet if isinstance(job.inputs.sheet, str) else "Sheet1"
        count = write_workbook(temp, sheet, names if job.inputs.header else None, cells)
        with temp.open("rb+") as file:
            os.fsync(file.fileno())
        return count
    with temp.open("wb") as out:
        if appending:
            _copy_existing(job.target, out)
        count = _write_jsonl(job, out) if job.format == "jsonl" else _write_csv(job, out, appending=appending)
        out.flush()
        os.fsync(out.fileno())
    return count


def _copy_existing(target: Path, out: BinaryIO) -> None:
    with target.open("rb") as existing:
        shutil.copyfileobj(existing, out, 1 << 20)
        if out.tell() > 0:
            existing.seek(-1, os.SEEK_END)
            if existing.read(1) != b"\n":
                out.write(b"\r\n")


def _write_jsonl(job: _Job, out: BinaryIO) -> int:
    for row in job.inputs.rows:
        out.write(codec.dumps(row) + b"\n")
    return len(job.inputs.rows)


class _Encoded:
    """The `write` target of csv.writer: encodes each row's text in the file's encoding."""

    def __init__(self, out: BinaryIO, encoding: str) -> None:
        self._out, self._encoding = out, encoding

    def write(self, text: str) -> int:
        return self._out.write(text.encode(self._encoding))


def _write_csv(job: _Job, out: BinaryIO, *, appending: bool) -> int:
    encoding, names = _csv_encoding(job, appending), job.inputs.columns
    if appending and job.inputs.header:
        names = _existing_header(job, encoding) or names
    if encoding == "utf-8-sig":
        if out.tell() == 0:
            out.write(BOM)
        encoding = "utf-8"
    writer = csv.writer(_Encoded(out, encoding), delimiter=_delimiter(job), lineterminator="\r\n")
    header, cells = _table(job, names)
    index = -1
    try:
        if header is not None and job.inputs.header and out.tell() <= len(BOM):
            writer.writerow(header)
        for values in cells:
            index += 1
            writer.writerow([_csv_text(v) for v in values])
    except UnicodeEncodeError as exc:
        where = f"rows[{index}]" if index >= 0 else "the header"
        raise errors.Permanent(
            f"{where}: {errors.redact(exc.object[exc.start : exc.end])} cannot be written in {encoding}; "
            "expected text the encoding can hold, or encoding: utf-8-sig (Excel opens it) or gb18030",
            where=job.where,
        ) from None
    return len(job.inputs.rows)


def _csv_encoding(job: _Job, appending: bool) -> str:
    declared = job.inputs.encoding
    if declared != "auto":
        found = check_encoding(declared, job.where)
        return "utf-8" if appending and found == "utf-8-sig" else found
    if not appending:
        return "utf-8"
    with job.target.open("rb") as existing:
        return detect(existing.read(DETECT_BYTES), job.shown, job.where)


def _delimiter(job: _Job) -> str:
    return job.inputs.delimiter or ("\t" if job.target.suffix.lower() == ".tsv" else ",")


def _existing_header(job: _Job, encoding: str) -> list[str] | None:
    layout = Layout("csv", encoding, _delimiter(job), header=True)
    return csv_header(Place(job.target, job.shown, job.where), layout)


def _table(job: _Job, names: list[str] | None) -> tuple[list[str] | None, Iterator[list[Json]]]:
    """The column names and each row's cells in their order.

    Raises:
        errors.Permanent: a row of the wrong shape, or with a column not in the names.
    """
    rows = job.inputs.rows
    if names is None and rows and isinstance(rows[0], dict):
        names = list(rows[0])
    for index, row in enumerate(rows):
        if names is not None and not isinstance(row, dict):
            raise errors.Permanent(f"rows[{index}] is not an object; expected column: value", where=job.where)
        if names is None and not isinstance(row, list):
            raise errors.Permanent(f"rows[{index}] is not a list; expected a list of cells", where=job.where)
        if isinstance(row, dict) and names is not None:
            unknown = [name for name in row if name not in names]
            if unknown:
                raise errors.Permanent(
                    f"rows[{index}] has column {errors.redact(unknown[0])}, which is not in the header; "
                    f"expected only {', '.join(map(repr, names))}",
                    where=job.where,
                )

    def cells() -> Iterator[list[Json]]:
        for row in rows:
            yield [row.get(name) for name in names] if names is not None else list(row)

    return names, cells()


def _csv_text(value: Json) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, int | float):
        return repr(value)
    return codec.dumps_text(value)
