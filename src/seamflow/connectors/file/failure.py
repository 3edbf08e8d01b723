"""File system errors sorted into Transient (retry with the same key) and Permanent (dead letter)."""

from __future__ import annotations

import errno

from seamflow import errors

__all__ = ["classify"]

_TRANSIENT = {
    errno.EAGAIN,
    errno.EBUSY,
    errno.EINTR,
    errno.EIO,
    errno.ENOSPC,
    errno.EDQUOT,
    errno.ESTALE,  # a network share's handle went stale
    errno.ETIMEDOUT,
    errno.EHOSTDOWN,
    errno.EHOSTUNREACH,
    errno.ENETDOWN,
    errno.ENETUNREACH,
    errno.ECONNRESET,
    errno.ENFILE,
    errno.EMFILE,
}
_WHY = {
    errno.ENOENT: "does not exist",
    errno.EACCES: "may not be accessed (permission denied)",
    errno.EPERM: "may not be changed (operation not permitted)",
    errno.EEXIST: "already exists",
    errno.ENOTDIR: "has a part that is not a folder",
    errno.EISDIR: "is a folder, not a file",
    errno.ENOSPC: "cannot be written: the disk is full",
    errno.EROFS: "cannot be written: the file system is read-only",
    errno.ENAMETOOLONG: "has too long a name",
}


def classify(exc: OSError, shown: str, where: str) -> errors.ConnectorError:
    """Return the Transient or Permanent error for `exc`, raised while working on `shown` (a relative path)."""
    why = _WHY.get(exc.errno or 0) or f"failed: {exc.strerror or type(exc).__name__}"
    message = f"{shown} {why}"
    if exc.errno in _TRANSIENT:
        return errors.Transient(message, where=where)
    return errors.Permanent(message, where=where)
