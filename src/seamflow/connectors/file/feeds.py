"""The `files` and `rows` feeds: new files of a folder, each taken once, as events or as their rows.

A file is new while it is in the folder, matches the glob, has not changed for `settle`
and carries no `NAME.done` marker for its current size and modification time. Once the
events of a batch are committed, the batch's `ack` moves its finished files to `move_to`
(or writes their markers), so the cursor never has to remember which files were seen.
A file replaced by a new version (another size or time) is a new file.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from seamflow import errors
from seamflow.connectors.file.config import Root
from seamflow.connectors.file.failure import classify
from seamflow.connectors.file.inputs import FilesFeedInput
from seamflow.connectors.file.ledger import fsync_folder, replace_durably
from seamflow.ids import Json

__all__ = ["HASHED_BYTES", "FileVersion", "file_body", "finish", "new_files", "version_of"]

HASHED_BYTES = 1 << 20
"""Files up to this size carry the SHA-256 of their content (in the event and its dedupe key)."""
_MARKER = ".done"


@dataclass(frozen=True, slots=True)
class FileVersion:
    """One version of a file: its path and the size and modification time that identify the version."""

    path: Path
    shown: str
    size: int
    mtime_ns: int

    @property
    def key(self) -> str:
        """The version's identity in dedupe keys: `inbox/a.csv:1024:1764064800000000000`."""
        return f"{self.shown}:{self.size}:{self.mtime_ns}"

    @property
    def modified(self) -> datetime:
        return datetime.fromtimestamp(self.mtime_ns / 1e9, UTC)

    def identity(self) -> Json:
        """The version as it is kept in a cursor."""
        return {"path": self.shown, "size": self.size, "mtime_ns": self.mtime_ns}


def new_files(root: Root, params: FilesFeedInput, where: str) -> list[FileVersion]:
    """The settled, unfinished files of the feed's folder, oldest first. Blocking.

    Raises:
        errors.Permanent: the folder or glob is not allowed, or the folder is not there.
        errors.Transient: the file system failed for now.
    """
    folder = root.resolve(params.folder, where, what="folder")
    root.check_pattern(params.glob, where)
    done = root.resolve(params.move_to, where, what="move_to") if params.move_to else None
    # File times come from the operating system's clock, so they are compared with it, not clock.now().
    settled_before = time.time() - params.settle.total_seconds()
    found: list[FileVersion] = []
    try:
        if not folder.is_dir():
            raise errors.Permanent(f"folder {root.relative(folder) or '.'} does not exist", where=where)
        for path in folder.glob(params.glob):
            version = _candidate(root, folder, path, done, settled_before)
            if version is not None and (done is not None or not _is_marked(version)):
                found.append(version)
    except OSError as exc:
        raise classify(exc, params.folder, where) from None
    found.sort(key=lambda v: (v.mtime_ns, v.shown))
    return found


def _candidate(root: Root, folder: Path, path: Path, done: Path | None, settled_before: float) -> FileVersion | None:
    inside = path.relative_to(folder).parts
    if any(part.startswith(".") for part in inside) or path.name.endswith(_MARKER):
        return None  # hidden files: temporary files of writes and markers, the connector's own folder
    if done is not None and (path == done or path.is_relative_to(done)):
        return None
    try:
        info = path.stat()
    except FileNotFoundError:
        return None  # moved away while listing
    if not path.is_file() or not root.is_inside(path):
        return None
    # ctime too: a copy that keeps the source's old mtime still changes ctime while it is written.
    if max(info.st_mtime, info.st_ctime) > settled_before:
        return None
    return FileVersion(path, root.relative(path), info.st_size, info.st_mtime_ns)


def version_of(root: Root, identity: Json, where: str) -> FileVersion | None:
    """The file a cursor names, if it is still there as the same version."""
    if not isinstance(identity, dict) or not isinstance(identity.get("path"), str):
        return None
    path = root.resolve(str(identity["path"]), where)
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise classify(exc, str(identity["path"]), where) from None
    if info.st_size != identity.get("size") or info.st_mtime_ns != identity.get("mtime_ns"):
        return None
    return FileVersion(path, root.relative(path), info.st_size, info.st_mtime_ns)


def file_body(version: FileVersion, where: str) -> tuple[Json, str]:
    """The event body of a file and its dedupe key (with the content's SHA-256 for a small file). Blocking."""
    digest: str | None = None
    if version.size <= HASHED_BYTES:
        try:
            digest = hashlib.sha256(version.path.read_bytes()).hexdigest()
        except OSError as exc:
            raise classify(exc, version.shown, where) from None
    folder, _, name = version.shown.rpartition("/")
    body: Json = {
        "path": version.shown,
        "name": name,
        "folder": folder or ".",
        "size": version.size,
        "modified": version.modified.isoformat(),
        "sha256": digest,
    }
    return body, version.key + (f":{digest}" if digest else "")


def finish(root: Root, versions: list[FileVersion], move_to: str | None, where: str) -> None:
    """Move each file to `move_to` (or mark it done) unless it changed meanwhile. Blocking.

    Raises:
        errors.Permanent / errors.Transient: a file could not be moved or marked (named).
    """
    target = root.resolve(move_to, where, what="move_to") if move_to else None
    for version in versions:
        if version_of(root, version.identity(), where) is None:
            continue  # already moved, or a new version arrived: leave that one for a later poll
        try:
            if target is None:
                _mark(version)
            else:
                target.mkdir(parents=True, exist_ok=True)
                os.rename(version.path, free_name(target, version.path.name))
                fsync_folder(target)
        except OSError as exc:
            raise classify(exc, version.shown, where) from None


def free_name(folder: Path, name: str) -> Path:
    """`folder/name`, or `folder/stem-2.ext`, `-3`, … if a file of that name is already there."""
    candidate = folder / name
    stem, dot, ext = name.rpartition(".") if "." in name.lstrip(".") else (name, "", "")
    number = 1
    while candidate.exists():
        number += 1
        candidate = folder / f"{stem}-{number}{dot}{ext}"
    return candidate


def _marker_of(version: FileVersion) -> Path:
    return version.path.with_name(version.path.name + _MARKER)


def _is_marked(version: FileVersion) -> bool:
    try:
        return _marker_of(version).read_text(encoding="utf-8").strip() == f"{version.size}:{version.mtime_ns}"
    except (FileNotFoundError, UnicodeDecodeError):
        return False


def _mark(version: FileVersion) -> None:
    marker = _marker_of(version)
    temp = marker.with_name("." + marker.name + ".tmp")
    temp.write_text(f"{version.size}:{version.mtime_ns}\n", encoding="utf-8")
    replace_durably(temp, marker)
