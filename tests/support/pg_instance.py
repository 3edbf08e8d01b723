"""A private PostgreSQL server for tests that stop, restart or lock out the database.

The machine's shared PostgreSQL must keep serving other tests, and it trusts every local
user, so a wrong password cannot be shown there. This one is created with `initdb` in a
temporary folder (as the `postgres` system user when run as root), listens on a free port
on 127.0.0.1, and asks role `seamflow` for a password (scram-sha-256).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.support.server import free_port

__all__ = ["PASSWORD", "PrivatePostgres", "private_postgres_unavailable"]

PASSWORD = "Pg-s3cret-Planted-71"


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def private_postgres_unavailable() -> str | None:
    """Why a private server cannot be started here, or None."""
    if _bin("initdb") is None or _bin("pg_ctl") is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) are not installed"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root needs runuser to start PostgreSQL as the postgres user"
    return None


class PrivatePostgres:
    """initdb + pg_ctl in a temporary folder; `url` has the right password, `url_with(password)` any."""

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="sf-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"

    def url_with(self, password: str) -> str:
        return f"postgresql://seamflow:{password}@127.0.0.1:{self.port}/seamflow"

    @property
    def url(self) -> str:
        return self.url_with(PASSWORD)

    def _as_postgres(self, *args: str) -> None:
        command = list(args)
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def create(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD)
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres", "postgres")
        self._as_postgres(
            str(_bin("initdb")), "-D", str(self.data), "-U", "seamflow", "--auth=scram-sha-256",
            f"--pwfile={pwfile}", "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        self.start()
        subprocess.run(
            [
                str(_bin("createdb") or "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "seamflow",
                "seamflow",
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "PGPASSWORD": PASSWORD},
            timeout=30,
        )

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} -c fsync=off"
        self._as_postgres(str(_bin("pg_ctl")), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._as_postgres(str(_bin("pg_ctl")), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.create()
        yield server
    finally:
        server.destroy()
