"""One writer for a serve group on SQLite: the other processes relay their run units to the first.

SQLite lets one transaction write at a time. With a writer per process, the processes of one
`seamflow serve --processes N` took turns on the write lock, each paying its own fsync, and
a webhook waited for the other processes' commits before its own. Now the first process's
writer commits for everyone: another process sends each unit of the journal (`store.transact`
with a `functools.partial` of a module-level function, e.g. `journal.accept` with its event)
over a Unix socket; the first process runs it in its next group commit, beside its own units,
and answers with the result once that transaction committed. One fsync serves every process's
batch, and the 202 still follows the commit of the event.

The socket is a file beside the database (or, for a long path, in a private folder under the
temporary directory), mode 0600; a connecting process must run as the same user (SO_PEERCRED),
and a unit may only name functions and classes of `seamflow` and a few plain types.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import logging
import os
import pickle
import socket
import struct
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from seamflow import errors
from seamflow.store.group_commit import GroupCommitter

__all__ = ["RelayClient", "RelayServer", "encode", "relay_socket_path"]

log = logging.getLogger("seamflow.store")

_HEADER = struct.Struct("<IQ")  # payload length, request id
_MAX_PATH = 100  # sockaddr_un holds 108 bytes
_ALLOWED = {
    ("functools", "partial"),
    ("datetime", "datetime"),
    ("datetime", "date"),
    ("datetime", "time"),
    ("datetime", "timedelta"),
    ("datetime", "timezone"),
    ("decimal", "Decimal"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
}
_GONE = "the serve group's writer (its first process) is gone"


def relay_socket_path(database: Path) -> Path:
    """The socket of a database's group writer: beside it, or in a private temporary folder if that path is too long."""
    beside = database.with_name(database.name + "-writer.sock")
    if len(os.fsencode(beside)) <= _MAX_PATH:
        return beside
    digest = hashlib.sha256(os.fsencode(database.resolve())).hexdigest()[:24]
    folder = Path(tempfile.gettempdir()) / f"seamflow-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    if folder.stat().st_uid != os.getuid():
        raise errors.StoreError(f"{folder} belongs to another user; expected a folder of this user for the socket")
    return folder / f"{digest}.sock"


def encode(unit: object) -> bytes | None:
    """A unit as bytes for the group writer; None if it cannot travel (run it here).

    Only a `functools.partial` of a module-level function travels (its data, not a closure
    over this process's state), and only if its arguments pickle.
    """
    if not isinstance(unit, functools.partial) or "<locals>" in getattr(unit.func, "__qualname__", "<locals>"):
        return None
    try:
        return pickle.dumps(unit, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        return None


class _Unpickler(pickle.Unpickler):
    """Loads only `seamflow`'s own functions and classes and a few plain types."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "seamflow" or module.startswith("seamflow.") or (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} may not travel to the group writer")


def _load(payload: bytes) -> Any:
    return _Unpickler(io.BytesIO(payload)).load()


def _frame(request_id: int, payload: bytes) -> bytes:
    return _HEADER.pack(len(payload), request_id) + payload


def _answer(result: Any, error: BaseException | None) -> bytes:
    """The pickled answer to a unit: (True, result) or (False, error); an unpicklable error becomes a StoreError."""
    if error is None:
        try:
            return pickle.dumps((True, result), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # a unit's result must travel back; a bug if it does not
            error = errors.StoreError(f"the unit's result could not be sent back: {exc}")
    if not isinstance(error, errors.SeamflowError):
        error = errors.StoreError(f"committing failed: {error}")
    try:
        return pickle.dumps((False, error), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # an attribute of the error does not pickle: keep its class's meaning, not its object
        return pickle.dumps((False, errors.StoreError(str(error))), protocol=pickle.HIGHEST_PROTOCOL)


class RelayServer:
    """In the first process: accepts the other processes' units and runs them in its group commit.

    The units are read on the event loop (no thread of its own to contend for the GIL with
    it); the writer thread answers them after their commit, one write per process and batch.

    Args:
        path: the Unix socket to listen on (a stale one is replaced).
        committer: the first process's writer.
        wrap: turns a relayed unit into a unit of the committer (gives it the transaction's `RunTx`).
    """

    def __init__(self, path: Path, committer: GroupCommitter, wrap: Callable[[Any], Callable[[Any], Any]]) -> None:
        self._path = path
        self._committer = committer
        self._wrap = wrap
        self._server: asyncio.AbstractServer | None = None
        self._incoming: set[_Incoming] = set()
        self.is_closed = False
        committer.after_answers(self._flush)

    async def start(self) -> None:
        """Listen on the socket (mode 0600)."""
        self._path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            listener.bind(str(self._path))
        finally:
            os.umask(old_umask)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(lambda: _Incoming(self, loop), sock=listener, backlog=16)

    def close(self) -> None:
        """Stop accepting and drop the connections (their processes see the writer gone)."""
        self.is_closed = True
        if self._server is not None:
            self._server.close()
            self._server = None
            self._path.unlink(missing_ok=True)
        for incoming in list(self._incoming):
            incoming.close()

    def _flush(self) -> None:
        for incoming in list(self._incoming):
            incoming.flush()


class _Incoming(asyncio.Protocol):
    """One other process's connection: its units go to the writer, their answers come back in one write per batch."""

    def __init__(self, server: RelayServer, loop: asyncio.AbstractEventLoop) -> None:
        self._server = server
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._frames: list[bytes] = []
        self._lock = threading.Lock()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _, uid, _ = struct.unpack("3i", creds)
        if uid != os.getuid():
            log.warning("refused a writer connection from uid %d; expected this process's user", uid)
            transport.close()
            return
        if self._server.is_closed:  # accepted just before the server closed
            transport.close()
            return
        self._transport = transport  # type: ignore[assignment]  # a Unix stream transport
        self._server._incoming.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._server._incoming.discard(self)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        while len(buffer) - start >= _HEADER.size:
            size, request_id = _HEADER.unpack_from(buffer, start)
            end = start + _HEADER.size + size
            if len(buffer) < end:
                break
            payload = bytes(buffer[start + _HEADER.size : end])
            start = end
            try:
                unit = _load(payload)
            except Exception as exc:  # answered to the sender; the relay keeps serving
                self._reply(request_id)(None, errors.StoreError(f"a relayed unit could not be read: {exc}"))
                self.flush()
                continue
            self._server._committer.submit(self._server._wrap(unit), self._reply(request_id))
        del buffer[:start]

    def _reply(self, request_id: int) -> Callable[[Any, BaseException | None], None]:
        def reply(result: Any, error: BaseException | None) -> None:
            frame = _frame(request_id, _answer(result, error))
            with self._lock:
                self._frames.append(frame)

        return reply

    def flush(self) -> None:
        """From any thread: send the collected answers (through the event loop, which owns the transport)."""
        with self._lock:
            frames, self._frames = self._frames, []
        if frames and self._transport is not None:
            try:
                self._loop.call_soon_threadsafe(self._write, b"".join(frames))
            except RuntimeError:  # the loop is closed: the process is stopping
                pass

    def _write(self, data: bytes) -> None:
        if self._transport is not None:
            self._transport.write(data)


class RelayClient(asyncio.Protocol):
    """In another process of the group: sends units to the first process's writer and awaits their commit."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._buffer = bytearray()
        self._next_id = 0
        self._outgoing: list[bytes] = []

    @classmethod
    async def connect(cls, path: Path) -> RelayClient:
        """Connect to the group writer's socket.

        Raises:
            OSError: nobody listens there.
        """
        _, client = await asyncio.get_running_loop().create_unix_connection(cls, str(path))
        return client

    @property
    def is_connected(self) -> bool:
        return self._transport is not None

    async def send(self, payload: bytes) -> Any:
        """Run an `encode`d unit in the group writer's next transaction; its result once committed."""
        if self._transport is None:
            raise errors.StoreError(_GONE)
        request_id = self._next_id
        self._next_id += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        if not self._outgoing:  # the units of one turn of the event loop go out in one write
            asyncio.get_running_loop().call_soon(self._send_outgoing)
        self._outgoing.append(_frame(request_id, payload))
        return await future

    def _send_outgoing(self) -> None:
        frames, self._outgoing = self._outgoing, []
        if self._transport is not None:
            self._transport.write(b"".join(frames))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a Unix stream transport

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        while len(buffer) - start >= _HEADER.size:
            size, request_id = _HEADER.unpack_from(buffer, start)
            end = start + _HEADER.size + size
            if len(buffer) < end:
                break
            is_ok, value = _load(bytes(buffer[start + _HEADER.size : end]))
            start = end
            future = self._pending.pop(request_id, None)
            if future is None or future.done():
                continue
            if is_ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        del buffer[:start]

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(errors.StoreError(_GONE))
