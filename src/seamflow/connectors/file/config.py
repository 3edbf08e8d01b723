"""The settings of a `file` connection, and its root folder: every path of a step lives inside it.

A step names files relative to the root. `Root.resolve` refuses what would leave it: an
absolute path, a `..` component, or a symbolic link that points outside.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath

from pydantic import BaseModel, ConfigDict, Field

from seamflow import errors

__all__ = ["STATE_FOLDER", "FileConfig", "Root"]

STATE_FOLDER = ".seamflow"
"""The connector's own folder inside the root (the write ledger); no step may name it."""


class FileConfig(BaseModel):
    """The settings of a `file` connection in `connections.yaml`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    root: str = Field(min_length=1)
    """The folder every path of a step is relative to, e.g. `/srv/exchange/pos`."""


class Root:
    """The root folder of a connection; turns a step's relative path into a path inside it."""

    def __init__(self, folder: Path) -> None:
        self.path = folder.expanduser().resolve()

    def resolve(self, relative: str, where: str, *, what: str = "path") -> Path:
        """Return the absolute path of `relative`, checked to stay inside the root.

        Raises:
            errors.Permanent: `relative` is absolute, has a `..` component, names the state
                folder, or reaches outside the root through a symbolic link.
        """
        problem = _problem(relative)
        if problem:
            raise errors.Permanent(
                f"{what} {errors.redact(relative)} {problem}; expected a path relative to the root folder", where=where
            )
        joined = self.path.joinpath(*PurePosixPath(relative).parts)
        real = joined.resolve()  # follows every symbolic link that exists
        if real != self.path and not real.is_relative_to(self.path):
            raise errors.Permanent(
                f"{what} {errors.redact(relative)} leads outside the root folder through a symbolic link; "
                "expected a path inside the root folder",
                where=where,
            )
        return joined

    def check_pattern(self, pattern: str, where: str) -> None:
        """Refuse a glob that could match outside its folder (absolute, or with a `..` component).

        Raises:
            errors.Permanent: naming the pattern and what is wrong.
        """
        problem = _problem(pattern)
        if problem:
            raise errors.Permanent(
                f"glob {errors.redact(pattern)} {problem}; expected a pattern such as *.csv", where=where
            )

    def relative(self, path: Path) -> str:
        """The step-facing name of `path` (inside the root): forward slashes, no leading `./`."""
        return path.relative_to(self.path).as_posix()

    def is_inside(self, path: Path) -> bool:
        """True if `path`, with its symbolic links followed, is inside the root."""
        try:
            real = path.resolve()
        except OSError:
            return False
        return real == self.path or real.is_relative_to(self.path)


def _problem(relative: str) -> str | None:
    if "\x00" in relative:
        return "holds a NUL character"
    if relative.strip() == "":
        return "is empty"
    if os.path.isabs(relative) or PureWindowsPath(relative).is_absolute() or PureWindowsPath(relative).drive:
        return "is absolute"
    parts = PurePosixPath(relative.replace("\\", "/")).parts
    if ".." in parts:
        return "has a '..' component"
    if parts and parts[0] == STATE_FOLDER:
        return f"is inside the connector's own folder {STATE_FOLDER}/"
    return None
