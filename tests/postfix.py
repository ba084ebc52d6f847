"""A private Postfix, configured from the README's own recipe, for tests/test_postfix.py.

The README quotes the files of ``contrib/postfix/`` verbatim (each fenced block
marked ``<!-- contrib/FILE -->``) and the shell steps an admin runs (``<!-- shell:
NAME -->``). These helpers read those blocks from README.md and swap only the
paths (``/etc/postfix`` → a temporary directory, …): what the README shows is what
runs here. What a Debian host's main.cf says already (its hostname, its domain in
``mydestination``) and what makes the instance private (its own directories,
127.0.0.1 and a free port, no chroot, a log file, the test relay as relayhost) is
written by the test and kept apart in ``PRIVATE_MAIN_CF``.

Needs root (a Postfix master and ``user=`` of a pipe) and Debian's ``postfix``
package; without them the tests skip, under CI=true they fail.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.relay import free_port
from tests.support import service_missing

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
UNIT = REPO / "contrib" / "systemd" / "mailgate.service"
# Where Debian keeps the master.cf a fresh install starts from.
MASTER_CF_DEFAULTS = (
    Path("/usr/share/postfix/master.cf.dist"),
    Path("/etc/postfix/master.cf.proto"),
)
# A fresh Debian machine's PATH: `python3` is the system's, as for an admin.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
USERS_LOCK = Path("/tmp/mailgate-tests-useradd.lock")

_BLOCK = re.compile(
    r"^<!-- (?P<name>contrib/\S+|shell: [a-z-]+) -->\n```[a-z]*\n(?P<body>.*?)^```$",
    re.MULTILINE | re.DOTALL,
)

PRIVATE_MAIN_CF = """\
# --- the test's own: a private instance (not part of the recipe) ---
compatibility_level = 3.6
config_directory = {etc}
queue_directory = {spool}
data_directory = {lib}
maillog_file = {base}/postfix.log
maillog_file_prefixes = {base}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.example.org
mydestination = example.org, localhost
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
relayhost = [127.0.0.1]:{relay_port}
smtp_dns_support_level = disabled
# --- the README's recipe: contrib/postfix/main.cf ---
"""


def readme_blocks() -> dict[str, str]:
    """The README's marked fenced blocks by marker: ``contrib/postfix/main.cf``, ``shell: user``."""
    return {m["name"]: m["body"] for m in _BLOCK.finditer(README.read_text())}


@dataclass(frozen=True)
class Layout:
    """The recipe's paths, each swapped for a directory of this test."""

    base: Path
    venv: Path

    @property
    def swaps(self) -> dict[str, str]:
        return {
            "/opt/mailgate/src": str(REPO),
            "/opt/mailgate/.venv": str(self.venv),
            "/etc/mailgate": str(self.base / "etc-mailgate"),
            "/var/lib/mailgate": str(self.base / "var-lib-mailgate"),
            "/etc/postfix": str(self.base / "postfix-etc"),
            "/var/spool/postfix": str(self.base / "postfix-spool"),
        }

    def localize(self, text: str) -> str:
        """The recipe with this test's paths, and nothing else changed."""
        for original, here in self.swaps.items():
            text = text.replace(original, here)
        return text

    @property
    def config(self) -> Path:
        return self.base / "etc-mailgate" / "mailgate.toml"

    @property
    def var(self) -> Path:
        return self.base / "var-lib-mailgate"

    @property
    def postfix_etc(self) -> Path:
        return self.base / "postfix-etc"

    @property
    def postfix_spool(self) -> Path:
        return self.base / "postfix-spool"


def recipe(name: str, layout: Layout) -> str:
    """A README block with this test's paths; it must exist (the README is the source)."""
    blocks = readme_blocks()
    assert name in blocks, f"README.md has no block marked <!-- {name} -->"
    return layout.localize(blocks[name])


def run_shell(script: str, cwd: Path, what: str) -> None:
    """An admin's shell step from the README, as root, with a fresh machine's PATH."""
    with USERS_LOCK.open("a") as lock:  # useradd by two test runs at once would race
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=cwd,
            env={"PATH": SYSTEM_PATH, "LANG": "C.UTF-8"},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert done.returncode == 0, (
        f"README step {what!r} failed:\n{script}\n{done.stdout}{done.stderr}"
    )


def new_base(prefix: str) -> Path:
    """A directory mailgate and postfix can reach (pytest's tmp_path is 0700 under root),
    with a short path: unix socket paths are limited to 107 bytes."""
    base = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    os.chmod(base, 0o755)  # noqa: S103
    return base


def requirements() -> None:
    if os.geteuid() != 0:
        service_missing("the Postfix tests run a Postfix master and a pipe user: they need root")
    for tool in ("postfix", "postmap", "swaks", "runuser", "useradd", "install"):
        if shutil.which(tool, path=SYSTEM_PATH) is None:
            service_missing(f"{tool} is missing (Debian: apt-get install postfix swaks)")
    if not Path("/usr/bin/python3").exists():
        service_missing("the README installs mailgate with the system's python3")


class Postfix:
    """A private Postfix instance: the README's main.cf/master.cf/transport, a free port."""

    def __init__(
        self, layout: Layout, relay_port: int, *, transport: str, master: str = ""
    ) -> None:
        self.layout = layout
        self.port = free_port()
        etc, spool = layout.postfix_etc, layout.postfix_spool
        lib = layout.base / "postfix-lib"
        for directory in (etc, spool, lib):
            directory.mkdir(exist_ok=True)
        shutil.chown(lib, "postfix")
        main = PRIVATE_MAIN_CF.format(
            etc=etc, spool=spool, lib=lib, base=layout.base, relay_port=relay_port
        )
        (etc / "main.cf").write_text(main + recipe("contrib/postfix/main.cf", layout))
        defaults = next((p for p in MASTER_CF_DEFAULTS if p.exists()), None)
        if defaults is None:
            service_missing("Debian's default master.cf is missing (apt-get install postfix)")
        assert defaults is not None
        (etc / "master.cf").write_text(
            _private_master(defaults.read_text(), self.port)
            + (recipe(master, layout) if master else "")
        )
        (etc / "mailgate_transport").write_text(recipe(transport, layout))
        self.postfix("postmap", str(etc / "mailgate_transport"))
        self.postfix("postfix", "start")
        try:
            self._wait_listening()
        except BaseException:
            self.stop()  # never leave a master process behind
            raise

    def postfix(self, command: str, *args: str) -> str:
        done = subprocess.run(
            [command, "-c", str(self.layout.postfix_etc), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"{command} {args}: {done.stderr}\n{self.log()}"
        return done.stdout

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=2) as conn,
            ):
                if conn.recv(100).startswith(b"220"):
                    return
            time.sleep(0.1)
        raise AssertionError(f"postfix did not answer on {self.port}:\n{self.log()}")

    def log(self) -> str:
        path = self.layout.base / "postfix.log"
        return path.read_text(errors="replace") if path.exists() else "(no postfix.log)"

    def swaks(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Mail as a customer's MTA sends it: swaks to the private smtpd."""
        return subprocess.run(
            ["swaks", "-s", f"127.0.0.1:{self.port}", "--timeout", "30", *args],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )

    def stop(self) -> None:
        pid_file = self.layout.postfix_spool / "pid" / "master.pid"
        subprocess.run(
            ["postfix", "-c", str(self.layout.postfix_etc), "stop"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text().split()[0])
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
                time.sleep(0.1)


def _private_master(text: str, port: int) -> str:
    """Debian's master.cf with smtpd on 127.0.0.1:PORT instead of port 25, nothing chrooted.

    A chroot would need Debian's init script to copy system files into the queue
    directory; the recipe's socket path is relative to the queue directory and works
    either way.
    """
    lines = []
    for line in text.splitlines():
        if re.match(r"^smtp\s+inet\s", line):
            line = re.sub(r"^smtp\s+inet", f"127.0.0.1:{port} inet", line)
        fields = line.split()
        if line and not line[0].isspace() and not line.startswith("#") and len(fields) >= 8:
            fields[4] = "n"  # the chroot column
            line = "  ".join(fields)
        lines.append(line)
    return "\n".join(lines) + "\n"


# --- mailgate serve as the systemd unit runs it ------------------------------------------


def unit_service() -> dict[str, str]:
    """The [Service] settings of contrib/systemd/mailgate.service (the last of each key)."""
    settings: dict[str, str] = {}
    section = ""
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            settings[key] = value
    return settings


class Serve:
    """``mailgate serve`` started as the unit starts it: its ExecStart, User, Group,
    WorkingDirectory and UMask, with a notify socket standing in for systemd."""

    def __init__(self, layout: Layout, *, ready: bool = True) -> None:
        unit = unit_service()
        self.layout = layout
        self.notify_path = layout.base / "notify.sock"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(self.notify_path))
        os.chmod(self.notify_path, 0o666)  # noqa: S103 - like systemd's: the service user sends
        self.notify.settimeout(60)
        self.log_path = layout.base / "serve.log"
        command = shlex.split(layout.localize(unit["ExecStart"]))
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                user=unit["User"],
                group=unit["Group"],
                extra_groups=[],
                umask=int(unit["UMask"], 8),
                cwd=layout.localize(unit["WorkingDirectory"]),
                env={
                    "PATH": SYSTEM_PATH,
                    "LANG": "C.UTF-8",
                    "NOTIFY_SOCKET": str(self.notify_path),
                },
                stdout=log,
                stderr=log,
            )
        self.messages: list[str] = []
        if ready:
            try:
                self.wait_for_state("READY=1")
            except BaseException:
                self.stop()
                raise

    def wait_for_state(self, state: str) -> None:
        while state not in self.messages:
            try:
                self.messages.extend(self.notify.recv(4096).decode().splitlines())
            except TimeoutError:
                raise AssertionError(f"serve never said {state}:\n{self.log()}") from None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, as systemd stops it; the notify messages until it exited are kept."""
        if self.process.poll() is None:
            self.process.terminate()
            self.notify.settimeout(0.1)
            deadline = time.monotonic() + 60
            while self.process.poll() is None and time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):
                    self.messages.extend(self.notify.recv(4096).decode().splitlines())
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait()
            self.notify.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                while True:
                    self.messages.extend(self.notify.recv(4096).decode().splitlines())
        self.notify.close()
        return self.process.returncode


def as_mailgate(layout: Layout, *args: str) -> subprocess.CompletedProcess[str]:
    """An admin command, run as the README says: as the user mailgate."""
    return subprocess.run(
        [
            "runuser",
            "-u",
            "mailgate",
            "--",
            str(layout.venv / "bin" / "mailgate"),
            "--config",
            str(layout.config),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": SYSTEM_PATH, "LANG": "C.UTF-8"},
        check=False,
    )
