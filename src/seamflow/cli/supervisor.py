"""`seamflow serve --processes N`: N processes behind one port, so one command uses every core.

One Python process runs on one core. The first process makes sure the port is free, then it
and the N-1 copies of the same command it starts each listen on the port with SO_REUSEPORT:
the kernel spreads new connections over them by address hash. (With one shared listening
socket, the process that wakes first accepts every pending connection, and a client's 16
keep-alive connections all landed on one process.) A second `seamflow serve` on the same port
finds it in use, as it would without SO_REUSEPORT: the first process checks with a plain bind.

Every process has its own engine and its own group commit on the shared database (SQLite
writers take turns through a file lock; see `store/sqlite.py`), executes the runs it accepts
and claims others' like any worker. Only the first fires timers and schedules and runs feeds.
The others die with the first (Linux `PR_SET_PDEATHSIG`, set by each at its start), so a `kill
-9` of the command leaves nothing behind; one that dies on its own is started again. Only the
first watches `flows/`; after a reload it sends the others SIGHUP (`signal_others`), and any of
them asked to reload through the API sends the first SIGHUP (see `reload.py`).
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from seamflow import errors

__all__ = [
    "ServeGroup",
    "bind_port",
    "default_processes",
    "die_with_parent",
    "metrics_folder",
    "reuse_port_socket",
]

log = logging.getLogger("seamflow.serve")

_PR_SET_PDEATHSIG = 1
_RESTART_PAUSE_S = 1.0
_BIND_PATIENCE_S = 3.0
"""After a kill -9 the killed group's other processes may hold the port for a few more milliseconds."""


def metrics_folder(folder: Path) -> Path:
    """Empty `folder` (what an earlier group left, also after a kill -9) for the group's shared metrics."""
    shutil.rmtree(folder, ignore_errors=True)
    # exist_ok: a process of the group stopping just before may still write its file and make it again
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def default_processes() -> int:
    """Processes for `--processes auto`: one per core this process may use, at most 4."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))


class ServeGroup:
    """The first process of a serve group: binds the port, starts and watches the others.

    Raises:
        errors.Conflict: another process listens on the port (`serve.port_in_use`).

    Args:
        host: the address to listen on.
        port: the port to listen on.
        processes: how many processes serve, this one included.
        argv: the command line of the others, without `--member` and `--first-pid`.
        on_exit: called with the pid of another process that has ended.
    """

    def __init__(
        self,
        host: str,
        port: int,
        processes: int,
        argv: Sequence[str],
        *,
        on_exit: Callable[[int], None] = lambda pid: None,
    ) -> None:
        _wait_until_free(host, port)
        self.socket = reuse_port_socket(host, port)
        self._processes = processes
        self._argv = list(argv)
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._stopping = threading.Event()
        self._watchers: list[threading.Thread] = []
        self._on_exit = on_exit

    def start_others(self) -> None:
        """Start processes 1 … N-1, each watched by a thread that restarts it if it dies on its own."""
        for member in range(1, self._processes):
            self._children[member] = self._spawn(member)
            watcher = threading.Thread(target=self._watch, args=(member,), name=f"watch-{member}", daemon=True)
            watcher.start()
            self._watchers.append(watcher)

    def signal_others(self, sig: int = signal.SIGHUP) -> None:
        """Send `sig` to the others still running (SIGHUP: reload the flows)."""
        for child in list(self._children.values()):
            if child.poll() is None:
                child.send_signal(sig)

    def stop_others(self, grace_s: float) -> None:
        """Ask the others to drain and stop (SIGTERM); kill those still running after `grace_s`."""
        self._stopping.set()
        for child in self._children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for child in self._children.values():
            try:
                child.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    def _spawn(self, member: int) -> subprocess.Popen[bytes]:
        group = ["--member", str(member), "--first-pid", str(os.getpid())]
        # Its own process group: a terminal's Ctrl-C reaches only this process, which drains
        # and stops the others (SIGTERM); one still importing would otherwise die with a traceback.
        return subprocess.Popen([sys.executable, "-m", "seamflow", *self._argv, *group], process_group=0)  # noqa: S603 - our own command line

    def _watch(self, member: int) -> None:
        while not self._stopping.is_set():
            child = self._children[member]
            code = child.wait()
            self._on_exit(child.pid)
            if self._stopping.is_set():
                return
            log.error("serve process %d exited with %d; starting it again", member, code)
            time.sleep(_RESTART_PAUSE_S)
            if not self._stopping.is_set():
                self._children[member] = self._spawn(member)


def die_with_parent(first_pid: int) -> None:
    """In a serve process other than the first: get SIGKILL the moment the first dies, however it dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the others outlive a killed first process
        return
    if os.getppid() != first_pid:  # the first process died before prctl took effect
        os._exit(1)


def _wait_until_free(host: str, port: int) -> None:
    """A plain bind succeeds: nobody listens on the port (a killed group's others may hold it a few ms)."""
    deadline = time.monotonic() + _BIND_PATIENCE_S
    while True:
        try:
            with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind((host, port))
            return
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                message = f"cannot listen on {host}:{port}: {exc.strerror}"
                raise errors.InvalidInput(message, code="serve.port") from None
            if time.monotonic() >= deadline:
                raise errors.Conflict(
                    f"port {host}:{port} is in use by another process; expected a free port (--port)",
                    code="serve.port_in_use",
                ) from None
            time.sleep(0.05)


def bind_port(host: str, port: int) -> socket.socket:
    """The listening socket of a single process (`serve --processes 1`, `api`, `worker --port`).

    Bound before the server starts, so a taken port is one clear error instead of uvicorn's
    `[Errno 98]` after "Application startup complete".

    Raises:
        errors.Conflict: another process listens on the port (`serve.port_in_use`).
        errors.InvalidInput: the address cannot be used at all (`serve.port`).
    """
    try:
        return socket.create_server((host, port), backlog=2048)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise errors.Conflict(
                f"port {host}:{port} is in use by another process; expected a free port (--port)",
                code="serve.port_in_use",
            ) from None
        raise errors.InvalidInput(f"cannot listen on {host}:{port}: {exc.strerror}", code="serve.port") from None


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening socket on the port shared with the other processes of the group (SO_REUSEPORT)."""
    return socket.create_server((host, port), backlog=2048, reuse_port=True)
