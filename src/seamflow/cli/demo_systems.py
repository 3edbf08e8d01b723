"""The processes `seamflow demo` starts besides Seamflow: the example CRM and ERP, and a mail server.

The CRM and the ERP (`examples/crm`, `examples/erp`) run as their own processes with their own
seeded SQLite files and log files; the mail server writes each mail it receives into a folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import click

__all__ = ["EXAMPLES", "Mailbox", "System", "read_mail", "serve_smtp", "start_system", "stop_system"]

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
"""The example systems and projects of the source tree."""


# -- the mail server ---------------------------------------------------------------------------
@dataclass
class Mailbox:
    """An aiosmtpd handler: each mail received becomes `<folder>/<n>.eml`."""

    folder: Path
    count: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Keep the received mail as the next numbered `.eml` file."""
        self.count += 1
        (self.folder / f"{self.count:05d}.eml").write_bytes(envelope.original_content or envelope.content)
        return "250 OK"


def read_mail(path: Path) -> tuple[str, str, str]:
    """(To, Subject, text body) of a received mail, headers decoded."""
    message = message_from_bytes(path.read_bytes())
    subject = str(make_header(decode_header(message["Subject"] or "")))
    to = str(make_header(decode_header(message["To"] or "")))
    part = next((p for p in message.walk() if p.get_content_type() == "text/plain"), message)
    payload = part.get_payload(decode=True)
    text = payload.decode(part.get_content_charset() or "utf-8") if isinstance(payload, bytes) else ""
    return to, subject, text


async def serve_smtp(mailbox: Mailbox, port: int) -> asyncio.Server:
    """A local SMTP server on `port` that hands each mail to `mailbox`."""
    from aiosmtpd.smtp import SMTP

    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: SMTP(mailbox, enable_SMTPUTF8=True, hostname="mail.demo.local"), "127.0.0.1", port
    )


# -- the example systems -------------------------------------------------------------------------
@dataclass
class System:
    """A CRM or ERP process with its URL and API token."""

    name: str
    url: str
    token: str
    process: subprocess.Popen[bytes]
    log: Path


async def start_system(name: str, args: list[str], env: dict[str, str], folder: Path, port: int) -> System:
    """Start the example system `name` on `port` and wait until it answers its health check."""
    import aiohttp  # only the demo needs it; `seamflow --help` should not pay for it

    log = folder / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603, ASYNC220 - our own interpreter and module; waited for in _stop_system
            [sys.executable, "-m", f"seamflow_{name}", *args, "--port", str(port), "--log-level", "warning"],
            stdout=out,
            stderr=out,
            env={**os.environ, **env, "PYTHONPATH": str(EXAMPLES / name)},
            cwd=folder,
            # its own session: Ctrl-C in the terminal reaches only the demo, which prints its summary
            # (reading these systems) and then stops them itself
            start_new_session=True,
        )
    system = System(name, f"http://127.0.0.1:{port}", "", process, log)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as client:
        while True:
            if process.poll() is not None:
                raise click.ClickException(f"the {name} exited at start:\n{log.read_text(errors='replace')[-2000:]}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with client.get(system.url + "/healthz") as answer:
                    if answer.status == 200:
                        return system
            if loop.time() > deadline:
                raise click.ClickException(f"the {name} did not start in 30 s; see {log}")
            await asyncio.sleep(0.1)


async def stop_system(system: System) -> None:
    """Stop a started system (terminate, then kill after 10 s)."""
    if system.process.poll() is None:
        system.process.terminate()
        try:
            await asyncio.to_thread(system.process.wait, 10)
        except subprocess.TimeoutExpired:
            system.process.kill()
            await asyncio.to_thread(system.process.wait)
