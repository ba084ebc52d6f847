"""``mailgate serve`` under systemd's notify protocol, with a real datagram socket standing
in for systemd and a real serve process; and the unit file in contrib/systemd."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailgate import systemd
from tests.relay import free_port
from tests.support import config_data, load_config, write_config

REPO = Path(__file__).resolve().parents[1]


class FakeSystemd:
    """The receiving end of $NOTIFY_SOCKET: what serve said, and when."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address.replace("@", "\0", 1) if address.startswith("@") else address)
        self.said: list[tuple[float, str]] = []

    def listen(self, until: str, timeout: float = 60) -> None:
        """Collect states until ``until`` arrives (or fail after ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while until not in self.states():
            left = deadline - time.monotonic()
            assert left > 0, f"systemd never heard {until}; it heard {self.states()}"
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.said.extend((time.monotonic(), line) for line in data.decode().splitlines())

    def collect(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                break
            self.said.extend((time.monotonic(), line) for line in data.decode().splitlines())

    def states(self) -> list[str]:
        return [state for _, state in self.said]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def fake_systemd(tmp_path: Path) -> Iterator[FakeSystemd]:
    listener = FakeSystemd(str(tmp_path / "notify"))
    yield listener
    listener.close()


def start_serve(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    data = config_data(
        tmp_path, f"sqlite:///{tmp_path / 'mailgate.db'}", {"listener": {"port": port}}
    )
    path = write_config(tmp_path / "mailgate.toml", data)
    load_config(path)
    upgraded = subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(path), "db", "upgrade"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert upgraded.returncode == 0, upgraded.stderr
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFY_", "WATCHDOG_"))}
    log = (tmp_path / "serve.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "mailgate", "--config", str(path), "serve", "--no-imap"],
        env={**clean, **env},
        stdout=log,
        stderr=log,
        cwd=tmp_path,
    )
    return process, port


def stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


def test_serve_says_ready_when_it_accepts_mail_pings_the_watchdog_and_says_stopping(
    tmp_path: Path, fake_systemd: FakeSystemd
) -> None:
    # WatchdogSec=0.6s: systemd passes it as WATCHDOG_USEC; serve pings every 0.3 s.
    process, port = start_serve(
        tmp_path, {"NOTIFY_SOCKET": fake_systemd.address, "WATCHDOG_USEC": "600000"}
    )
    try:
        fake_systemd.listen("READY=1")
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:  # ready means ready
            assert client.noop()[0] == 250
        ready_at = next(t for t, state in fake_systemd.said if state == "READY=1")
        fake_systemd.collect(2.5)
        pings = [t for t, state in fake_systemd.said if state == "WATCHDOG=1" and t >= ready_at]
        # About eight at 0.3 s: a loaded machine may delay some, but never all of them; and
        # never a flood (a loop that forgot to wait).
        assert 3 <= len(pings) <= 15, fake_systemd.states()
    finally:
        code = stop(process)
    fake_systemd.collect(0.5)
    assert code == 0, (tmp_path / "serve.log").read_text()
    states = fake_systemd.states()
    assert "STOPPING=1" in states
    assert states.index("READY=1") < states.index("STOPPING=1")


def test_serve_sends_no_watchdog_ping_meant_for_another_process(
    tmp_path: Path, fake_systemd: FakeSystemd
) -> None:
    # WATCHDOG_PID names the process the watchdog is for (here: one that is not serve).
    process, _ = start_serve(
        tmp_path,
        {"NOTIFY_SOCKET": fake_systemd.address, "WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"},
    )
    try:
        fake_systemd.listen("READY=1")
        fake_systemd.collect(1.0)
    finally:
        assert stop(process) == 0
    assert "WATCHDOG=1" not in fake_systemd.states()


def test_notify_reaches_an_abstract_socket_and_does_nothing_outside_systemd(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listener = FakeSystemd(f"@mailgate-test-{uuid.uuid4().hex}")
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", listener.address)
        assert systemd.notify("READY=1", "STATUS=serving")
        listener.collect(1.0)
        assert listener.states() == ["READY=1", "STATUS=serving"]
    finally:
        listener.close()
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert systemd.notify("READY=1") is False


def test_a_notify_socket_that_went_away_is_a_warning_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone"))
    with caplog.at_level(logging.WARNING, logger="mailgate.systemd"):
        assert systemd.notify("WATCHDOG=1") is False
    assert "systemd notify failed" in caplog.text


def test_the_watchdog_interval_is_half_of_what_systemd_asks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert systemd.watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert systemd.watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_USEC", "0")
    assert systemd.watchdog_interval() is None


def test_the_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = (REPO / "contrib" / "systemd" / "mailgate.service").read_text()
    for needed in (
        "Type=notify",
        "WatchdogSec=",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/mailgate",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        "EnvironmentFile=",
        "User=mailgate",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ):
        assert needed in unit, needed
    # The ExecStart binary does not exist here; everything else must be valid as written.
    copy = tmp_path / "mailgate.service"
    copy.write_text(
        unit.replace("/opt/mailgate/.venv/bin/mailgate", sys.executable + " -m mailgate")
    )
    done = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
