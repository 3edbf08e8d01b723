"""The write ledger: a record per idempotency key in the root's `.seamflow/writes/`; a retried write takes effect once.

A write first builds its file under a temporary name, then records `prepared` (with that
name), renames the file into place and records `done`. A retry that finds `done` returns
the stored result; one that finds `prepared` knows the rename happened if the temporary
file is gone, and otherwise builds the file again (nothing was changed yet).
"""

from __future__ import annotations

import hashlib
import os
import time
from datetime import timedelta
from pathlib import Path

from seamflow import codec
from seamflow.ids import Json

__all__ = ["WriteLedger", "fsync_folder", "replace_durably"]


class WriteLedger:
    """The records of the writes of one root folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def record(self, key: str) -> dict[str, Json] | None:
        """The record of `key` (`{"state": "prepared"|"done", "temp": name, "result": …}`), None if none."""
        try:
            data = self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        found = codec.loads(data)
        return found if isinstance(found, dict) else None

    def prepare(self, key: str, temp: str, result: Json) -> None:
        """Record that `temp` is about to be renamed into place, producing `result`."""
        self._store(key, {"state": "prepared", "temp": temp, "result": result})

    def finish(self, key: str, result: Json) -> None:
        """Record that the write of `key` is done."""
        self._store(key, {"state": "done", "result": result})

    def prune(self, older_than: timedelta) -> int:
        """Delete records older than `older_than` (retries come within minutes); return how many."""
        limit = time.time() - older_than.total_seconds()
        removed = 0
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return 0
        for entry in entries:
            if entry.name.endswith(".json") and entry.stat().st_mtime < limit:
                Path(entry.path).unlink(missing_ok=True)
                removed += 1
        return removed

    def _store(self, key: str, record: dict[str, Json]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(key)
        temp = path.with_suffix(".tmp")
        with temp.open("wb") as file:
            file.write(codec.dumps(record))
            file.flush()
            os.fsync(file.fileno())
        replace_durably(temp, path)

    def _path(self, key: str) -> Path:
        return self.folder / (hashlib.sha256(key.encode()).hexdigest() + ".json")


def replace_durably(source: Path, target: Path) -> None:
    """Rename `source` over `target` (atomic within one file system) and make the rename survive power loss."""
    os.replace(source, target)
    fsync_folder(target.parent)


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename, a new file) to disk; a no-op where folders cannot be opened."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass  # some file systems (network shares) refuse fsync on a folder; the rename itself is atomic
    finally:
        os.close(handle)
