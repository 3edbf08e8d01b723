"""Who holds a long job's lease (a bulk load, a migration): `<kind>:<host>:<pid>`, and whether that process is gone."""

from __future__ import annotations

import os
import socket

__all__ = ["is_dead_local", "local_holder"]


def local_holder(kind: str) -> str:
    """This process as the holder of a `kind` job (`load`, `migrate`)."""
    return f"{kind}:{socket.gethostname()}:{os.getpid()}"


def is_dead_local(holder: str) -> bool:
    """Whether a `<kind>:<host>:<pid>` holder ran on this host and its process is gone.

    A holder on another host, or a process this user may not signal, counts as alive: its
    lease runs out instead.
    """
    _, host, pid = [*holder.split(":"), "", ""][:3]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
