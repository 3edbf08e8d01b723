"""Request read deadlines at the HTTP protocol level: a slow client cannot hold a connection forever.

uvicorn has no header or body read timeout: its keep-alive timer only runs between requests
and every received byte resets it, so a client that sends its headers a byte at a time keeps
a connection (and a file descriptor) for as long as it likes (slowloris). An ASGI middleware
cannot help, since the app is called only once the headers are in. `guarded_http_protocol`
subclasses uvicorn's httptools protocol: a connection must send complete headers within
`header_timeout` of connecting (or of the first byte of its next request) and its body within
`body_timeout` of the headers; otherwise it is closed (a 408 is written first when the headers
never completed). Responses, however long the app takes, are not affected.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["ReadTimeouts", "guarded_http_protocol"]

_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 42\r\nconnection: close\r\n\r\nthe request headers did not arrive in time"
)


@dataclass(frozen=True, slots=True)
class ReadTimeouts:
    """How long a client may take to send a request."""

    header_timeout: timedelta = timedelta(seconds=10)
    """From connecting (or the first byte of the next request) to the end of the headers."""
    body_timeout: timedelta = timedelta(seconds=60)
    """From the end of the headers to the end of the body (a 10 MiB webhook on a slow link)."""


class _GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the header and body deadlines of `ReadTimeouts`."""

    timeouts: ReadTimeouts = ReadTimeouts()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._is_reading_headers = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._is_reading_headers:  # the next request of a kept-alive connection
            self._arm_header_deadline()

    def on_headers_complete(self) -> None:
        self._disarm()
        self._is_reading_headers = False
        super().on_headers_complete()
        self._deadline = self.loop.call_later(self.timeouts.body_timeout.total_seconds(), self._body_too_slow)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def _arm_header_deadline(self) -> None:
        self._disarm()
        self._is_reading_headers = True
        self._deadline = self.loop.call_later(self.timeouts.header_timeout.total_seconds(), self._headers_too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _is_gone(self) -> bool:
        """Closing already, or handed to another protocol (a WebSocket upgrade): not ours to close."""
        return self.transport.is_closing() or self.transport.get_protocol() is not self

    def _headers_too_slow(self) -> None:
        self._deadline = None
        if self._is_gone():
            return
        if self.cycle is None or self.cycle.response_complete:  # no request of this connection is being answered
            self.transport.write(_REQUEST_TIMEOUT)
        self.transport.close()

    def _body_too_slow(self) -> None:
        self._deadline = None
        if not self._is_gone():
            self.transport.close()  # the app's receive() gets http.disconnect


def guarded_http_protocol(timeouts: ReadTimeouts) -> type[asyncio.Protocol]:
    """The protocol class to pass as uvicorn's `http=`, with these read deadlines."""
    return type("GuardedHttpProtocol", (_GuardedProtocol,), {"timeouts": timeouts})
