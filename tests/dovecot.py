"""A real, throwaway Dovecot for the IMAP tests (Debian's dovecot-imapd, 2.3).

One server per test session (starting and stopping cost about a second), one
user per test. Without Dovecot the tests skip with the reason; under CI=true
they fail instead (``.ci/run`` installs the package).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import imapclient
import pytest

from tests.relay import free_port
from tests.support import service_missing

_USERS = 300
CONFIG = """\
protocols = imap
first_valid_uid = 1
listen = 127.0.0.1
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {base}/passwd
}}
userdb {{
  driver = passwd-file
  args = {base}/passwd
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


@dataclass
class ImapUser:
    host: str
    port: int
    user: str
    password: str

    def client(self) -> imapclient.IMAPClient:
        client = imapclient.IMAPClient(self.host, port=self.port, ssl=False, timeout=10)
        client.login(self.user, self.password)
        return client

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        client = self.client()
        try:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            client.append(folder, raw)
        finally:
            client.logout()

    def count(self, folder: str = "INBOX") -> int:
        client = self.client()
        try:
            if not client.folder_exists(folder):
                return 0
            return int(client.select_folder(folder, readonly=True)[b"EXISTS"])
        finally:
            client.logout()

    def flags(self, folder: str = "INBOX") -> list[tuple[bytes, ...]]:
        client = self.client()
        try:
            client.select_folder(folder, readonly=True)
            data = client.fetch(client.search("ALL"), ["FLAGS"])
            return [data[uid][b"FLAGS"] for uid in sorted(data)]
        finally:
            client.logout()


class Dovecot:
    def __init__(self, binary: str) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="mg-dovecot-", dir="/tmp"))
        os.chmod(self.base, 0o755)  # noqa: S103 - auth runs as another user and must read it
        self.port = free_port()
        root = os.geteuid() == 0
        self.uid = 65534 if root else os.geteuid()
        self.gid = 65534 if root else os.getegid()
        me = "root" if root else _username()
        (self.base / "passwd").write_text("")
        (self.base / "mail").mkdir()
        (self.base / "state").mkdir()
        self.conf = self.base / "dovecot.conf"
        self.conf.write_text(
            CONFIG.format(
                base=self.base,
                port=self.port,
                login_user="nobody" if root else me,
                internal_user=me,
                internal_group="root" if root else me,
            )
        )
        # Users are written once, before the start: Dovecot notices a changed passwd-file by
        # its mtime, which two writes within one second would not change.
        self._free = [self._make_user() for _ in range(_USERS)]
        (self.base / "passwd").write_text("".join(line for _, line in self._free))
        self.process = subprocess.Popen(
            [binary, "-F", "-c", str(self.conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self.process.stdout.read().decode() if self.process.stdout else ""
                log = (
                    (self.base / "dovecot.log").read_text()
                    if (self.base / "dovecot.log").exists()
                    else ""
                )
                raise RuntimeError(f"dovecot exited: {output} {log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                    if conn.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("dovecot did not answer within 15 s")

    def _make_user(self) -> tuple[str, str]:
        name = f"u{uuid.uuid4().hex[:10]}"
        home = self.base / "mail" / name
        home.mkdir()
        if os.geteuid() == 0:
            os.chown(home, self.uid, self.gid)
        return name, f"{name}:{{PLAIN}}secret:{self.uid}:{self.gid}::{home}\n"

    def add_user(self) -> ImapUser:
        """A fresh mailbox user (password "secret")."""
        name, _ = self._free.pop()
        return ImapUser("127.0.0.1", self.port, name, "secret")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.base, ignore_errors=True)


def _username() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or next(
        (p for p in ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot") if os.access(p, os.X_OK)), None
    )


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[Dovecot]:
    binary = dovecot_binary()
    if binary is None:
        service_missing("Dovecot is not installed (Debian: apt-get install dovecot-imapd)")
    assert binary is not None
    server = Dovecot(binary)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def imap_user(dovecot_server: Dovecot) -> ImapUser:
    return dovecot_server.add_user()
