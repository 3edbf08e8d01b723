"""`seamflow dev`: tools for trying flows locally; `dev receiver` records the HTTP requests a flow sends.

The receiver is the target of the connection `seamflow init` scaffolds (`http://127.0.0.1:9000`): it
prints each request (method, path, headers with credentials masked, the JSON body pretty-printed)
and answers `201` with a small JSON body, so a first run succeeds and shows what arrived.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

import click

from seamflow import errors
from seamflow.cli.signals import stop_on_ctrl_c

__all__ = ["describe_request", "dev"]

_MAX_BODY_CHARS = 4000
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key"})
_CREDENTIAL_WORDS = ("token", "secret", "password", "signature")
_TRANSPORT_HEADERS = frozenset({"host", "content-length", "connection", "accept-encoding"})
"""Left out of the printout: they say how the request travelled, not what the flow sent."""


def _shown_header(name: str, value: str) -> str:
    """A header's value as printed: credentials are `***` (an Authorization keeps its scheme)."""
    lowered = name.lower()
    if lowered in _CREDENTIAL_HEADERS or any(word in lowered for word in _CREDENTIAL_WORDS):
        scheme, _, rest = value.partition(" ")
        return f"{scheme} ***" if lowered.endswith("authorization") and rest else "***"
    return value


def _shown_body(body: bytes, content_type: str) -> str:
    if not body:
        return "(no body)"
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return f"({len(body)} bytes, not UTF-8 text)"
    if "json" in content_type:
        try:
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError:
            text = f"(not valid JSON) {text}"
    if len(text) > _MAX_BODY_CHARS:
        text = text[:_MAX_BODY_CHARS] + f"… [{len(text) - _MAX_BODY_CHARS} more characters]"
    return text


def describe_request(number: int, method: str, path: str, headers: list[tuple[str, str]], body: bytes) -> str:
    """What the receiver prints for its `number`th request: a title line, the headers, the body."""
    content_type = next((value for name, value in headers if name.lower() == "content-type"), "")
    lines = [f"#{number} {method} {path}"]
    lines += [
        f"  {name}: {_shown_header(name, value)}" for name, value in headers if name.lower() not in _TRANSPORT_HEADERS
    ]
    lines += ["  " + line for line in _shown_body(body, content_type).splitlines()]
    return "\n".join(lines)


def _stop(*_: object) -> None:
    raise KeyboardInterrupt


def _handler(status: int) -> Any:
    """A request handler class that records each request and answers `status` (http.server loads on use)."""
    from http.server import BaseHTTPRequestHandler

    lock = threading.Lock()

    class Receiver(BaseHTTPRequestHandler):
        server_version = "seamflow-dev-receiver"
        count = 0

        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
            with lock:
                Receiver.count += 1
                number = Receiver.count
                answer = json.dumps({"id": number, "received": True}).encode()
                click.echo(describe_request(number, self.command, self.path, list(self.headers.items()), body))
                click.echo(f"  -> {status} {answer.decode()}\n")
                sys.stdout.flush()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        do_POST = do_PUT = do_PATCH = do_DELETE = do_GET = _record

        def log_message(self, format: str, *args: object) -> None:
            """Silence the stdlib's access log: `_record` prints each request itself."""

    return Receiver


@click.group()
def dev() -> None:
    """Tools for trying flows on your machine (not for production)."""


@dev.command("receiver")
@click.option("--port", default=9000, show_default=True, type=int, help="the port to listen on")
@click.option("--host", default="127.0.0.1", show_default=True, help="the address to listen on")
@click.option(
    "--status",
    default=201,
    show_default=True,
    type=click.IntRange(200, 599),
    help="the HTTP status to answer with (e.g. 503 to watch a flow retry)",
)
def receiver(port: int, host: str, status: int) -> None:
    """Record HTTP requests: print each one (headers with credentials masked, JSON body) and answer 201."""
    import signal
    from http.server import ThreadingHTTPServer

    stop_on_ctrl_c()
    signal.signal(signal.SIGTERM, _stop)  # `kill` ends it as Ctrl-C does: with its summary, exit 0
    handler = _handler(status)
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        taken = errors.Conflict(
            f"cannot listen on {host}:{port} ({exc.strerror}); expected a free port: stop what uses it or pass --port",
            code="dev.port_in_use",
        )
        click.echo(f"error [{taken.code}]: {taken.message}", err=True)
        sys.exit(taken.exit_code)
    click.echo(f"Receiving on http://{host}:{port}/ (answering {status}); Ctrl-C stops", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo(f"stopped after {handler.count} request(s)", err=True)
    finally:
        server.server_close()
