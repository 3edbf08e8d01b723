"""A private Dovecot IMAP server for tests of the `email` connector's `messages` feed.

Dovecot runs in the foreground (`dovecot -c CONFIG -F`) as a child of the test process, with
its own config, sockets, log and Maildirs in a temporary folder, on free ports of 127.0.0.1:
a plain port (which offers STARTTLS) and an implicit-TLS port, with a certificate for
127.0.0.1 from a private CA (`trustme`). Users and passwords come from a passwd-file.
If Dovecot is not installed, it is installed once with apt-get; if that fails the tests
are skipped with the reason. Mail is delivered by IMAP APPEND, as a mail server would file it.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import trustme

from tests.support.server import free_port

__all__ = ["PASSWORD", "USER", "Dovecot", "dovecot_unavailable"]

USER = "invoices"
PASSWORD = "Imap-s3cret-Planted-52"
DOVECOT = "/usr/sbin/dovecot"
_INSTALL = ["apt-get", "install", "-y", "--no-install-recommends", "dovecot-imapd"]
_install_failure: list[str] = []
"""Why the one install attempt of this test run failed (empty: not tried or it worked)."""


def dovecot_unavailable() -> str | None:
    """Why a private Dovecot cannot be started here, or None; installs it once if missing."""
    if os.path.exists(DOVECOT) and os.path.exists("/usr/lib/dovecot/imap"):
        return None
    if _install_failure:
        return _install_failure[0]
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        _install_failure.append("Dovecot is not installed (/usr/sbin/dovecot) and apt-get cannot run as root here")
        return _install_failure[0]
    print(f"installing Dovecot for the IMAP tests: {' '.join(_INSTALL)}")
    done = subprocess.run(
        _INSTALL,
        capture_output=True,
        text=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        timeout=600,
        check=False,
    )
    if done.returncode != 0 or not os.path.exists(DOVECOT):
        tail = " ".join(done.stderr.split()[-30:])
        _install_failure.append(f"Dovecot is not installed and `{' '.join(_INSTALL)}` failed: {tail}")
        return _install_failure[0]
    return None


class Dovecot:
    """One running Dovecot: `port` (plain, STARTTLS offered), `tls_port` (implicit TLS), `ca_file`."""

    def __init__(self) -> None:
        # Unix socket paths are limited to 108 bytes: keep the folder short, outside pytest's tmp.
        self.root = Path(tempfile.mkdtemp(prefix="sf-imap-"))
        self.root.chmod(0o711)  # Dovecot's auth process (user `dovecot`) reads the passwd-file in it
        self.port = free_port()
        self.tls_port = free_port()
        self.log = self.root / "dovecot.log"
        self.ca_file = str(self.root / "ca.pem")
        self._process: subprocess.Popen[bytes] | None = None
        is_root = os.geteuid() == 0
        self._mail_uid = 65534 if is_root else os.getuid()  # nobody
        self._mail_gid = 65534 if is_root else os.getgid()

    def start(self) -> None:
        """Write the config and certificates, start Dovecot and wait until it answers."""
        ca = trustme.CA()
        ca.cert_pem.write_to_path(self.ca_file)
        cert = ca.issue_cert("127.0.0.1", "localhost")
        cert.cert_chain_pems[0].write_to_path(str(self.root / "cert.pem"))
        for pem in cert.cert_chain_pems[1:]:
            pem.write_to_path(str(self.root / "cert.pem"), append=True)
        cert.private_key_pem.write_to_path(str(self.root / "key.pem"))
        (self.root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
        (self.root / "passwd").chmod(0o644)
        home = self.root / "home" / USER
        home.mkdir(parents=True)
        os.chown(home, self._mail_uid, self._mail_gid)
        config = self.root / "dovecot.conf"
        config.write_text(self._config())
        self._process = subprocess.Popen(
            [DOVECOT, "-c", str(config), "-F"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                stderr = self._process.stderr.read().decode(errors="replace") if self._process.stderr else ""
                raise RuntimeError(f"dovecot exited with {self._process.returncode}: {stderr} {self.log_text()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1) as probe:
                if probe.recv(100).startswith(b"* OK"):
                    return
            time.sleep(0.05)
        raise RuntimeError(f"dovecot did not answer on 127.0.0.1:{self.port} within 15 s: {self.log_text()}")

    def stop(self) -> None:
        """Stop Dovecot and remove its folder."""
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            if self._process.stderr:
                self._process.stderr.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def _config(self) -> str:
        root = self.root
        user = "root" if os.geteuid() == 0 else _current_user()
        # As root, Dovecot's own processes run as its `dovecot`/`dovenull` users and mail processes
        # as `nobody` (Dovecot never touches mail as root); otherwise everything runs as the test's user.
        internal = "" if os.geteuid() == 0 else f"default_internal_user = {user}\ndefault_login_user = {user}\n"
        return f"""
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
instance_name = sf-imap-{self.port}
log_path = {self.log}
info_log_path = {self.log}
{internal}first_valid_uid = 1
first_valid_gid = 1
disable_plaintext_auth = no
auth_mechanisms = plain login
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={self._mail_uid} gid={self._mail_gid} home={root}/home/%u
}}
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.tls_port}
    ssl = yes
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
protocol imap {{
  mail_max_userip_connections = 200
}}
"""

    # --- the mailbox, as a mail server and a mail client would change it ---------------------------

    @contextlib.contextmanager
    def client(self) -> Iterator[imaplib.IMAP4]:
        """A logged-in IMAP session of the test user."""
        imap = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        try:
            imap.login(USER, PASSWORD)
            yield imap
        finally:
            with contextlib.suppress(Exception):
                imap.logout()

    def deliver(self, raw: bytes, folder: str = "INBOX") -> None:
        """File a mail in `folder` (an ASCII name or already in IMAP's modified UTF-7), unread."""
        with self.client() as imap:
            typ, data = imap.append(_quoted(folder), "", None, raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
            assert typ == "OK", data

    def create_folder(self, folder: str) -> None:
        with self.client() as imap:
            typ, data = imap.create(_quoted(folder))
            assert typ == "OK", data

    def flags(self, folder: str = "INBOX") -> dict[int, set[str]]:
        """UID → flags of every mail in `folder`."""
        with self.client() as imap:
            typ, data = imap.select(_quoted(folder), readonly=True)
            assert typ == "OK", data
            if int(data[0] or 0) == 0:
                return {}
            typ, data = imap.uid("FETCH", "1:*", "(UID FLAGS)")
            assert typ == "OK", data
        found: dict[int, set[str]] = {}
        for line in data:
            assert isinstance(line, bytes)
            uid = int(line.split(b"UID ", 1)[1].split()[0].rstrip(b")"))
            flags = line.split(b"FLAGS (", 1)[1].split(b")", 1)[0].decode().split()
            found[uid] = set(flags)
        return found

    def reset_uidvalidity(self, folder: str = "INBOX") -> None:
        """Give `folder` a new UIDVALIDITY and renumber its mails, as a restored or migrated mailbox does."""
        # Dovecot keeps a Maildir's UIDVALIDITY in dovecot-uidlist: deleting it (and the
        # index) makes the next session assign a new UIDVALIDITY and new UIDs from 1.
        maildir = self.root / "home" / USER / "Maildir"
        box = maildir if folder == "INBOX" else maildir / f".{folder.replace('/', '.')}"
        next_second = int(time.time()) + 1  # a new UIDVALIDITY is taken from the clock in seconds
        while time.time() < next_second:
            time.sleep(0.01)
        for name in ("dovecot-uidlist", "dovecot.index", "dovecot.index.cache", "dovecot.index.log"):
            with contextlib.suppress(FileNotFoundError):
                (box / name).unlink()


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _current_user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name
