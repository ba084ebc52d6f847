"""`mailgate serve` as a process: kill -9 in the middle loses nothing, SIGTERM stops cleanly."""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mailgate.store import models as m
from tests.dovecot import ImapUser
from tests.relay import free_port
from tests.support import (
    compose,
    config_data,
    imap_account,
    load_config,
    start_serve,
    write_config,
)

pytestmark = pytest.mark.dovecot


def setup(tmp_path: Path, database_url: str, user: ImapUser) -> Path:
    account = imap_account(user.host, user.port, user.user, user.password, tmp_path, name="inbox")
    data = config_data(
        tmp_path, database_url, {"listener": {"port": free_port()}, "imap": [account]}
    )
    path = write_config(tmp_path / "mailgate.toml", data)
    done = subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(path), "db", "upgrade"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return path


def send(port: int, raw: bytes) -> bool:
    """One mail as an MTA sends it; True only when the gateway answered 250."""
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.sendmail("sender@customer.example", ["support@example.org"], raw)
        return True
    except (OSError, smtplib.SMTPException):
        return False


def test_kill_9_in_the_middle_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, database_url: str, imap_user: ImapUser
) -> None:
    path = setup(tmp_path, database_url, imap_user)
    port = load_config(path).listener.port
    smtp_mails = {
        f"<smtp-{i}@customer.example>": compose(
            message_id=f"<smtp-{i}@customer.example>",
            sender=f"c{i}@customer.example",
            subject=f"smtp mail {i}",
        )
        for i in range(40)
    }
    imap_mails = {
        f"<imap-{i}@customer.example>": compose(
            message_id=f"<imap-{i}@customer.example>",
            sender=f"i{i}@customer.example",
            subject=f"imap mail {i}",
        )
        for i in range(15)
    }
    accepted: set[str] = set()
    server = start_serve(path)

    def sender() -> None:
        for message_id, raw in smtp_mails.items():
            if send(port, raw):
                accepted.add(message_id)

    thread = threading.Thread(target=sender)
    thread.start()
    for raw in imap_mails.values():
        imap_user.append(raw)
    while len(accepted) < 12:
        time.sleep(0.01)
    server.send_signal(signal.SIGKILL)
    server.wait(10)
    thread.join(60)
    server = start_serve(path)
    # Like an MTA, retry what never got its 250.
    for message_id, raw in smtp_mails.items():
        if message_id not in accepted:
            assert send(port, raw), "the restarted gateway refused a retry"
    from tests.conftest import open_gateway

    open_gateway(load_config(path))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stored = {r.message_id for r in m.Receipt.select().where(m.Receipt.status == "processed")}
        if stored >= set(smtp_mails) | set(imap_mails) and imap_user.count("INBOX") == 0:
            break
        time.sleep(0.2)
    receipts = list(m.Receipt.select())
    ids = [r.message_id for r in receipts]
    assert sorted(ids) == sorted(set(smtp_mails) | set(imap_mails)), "lost or extra mail"
    assert {r.status for r in receipts} == {"processed"}
    assert m.Ticket.select().count() == len(smtp_mails) + len(imap_mails)
    assert m.Message.select().where(m.Message.direction == "in").count() == len(ids)
    started = time.monotonic()
    server.send_signal(signal.SIGTERM)
    assert server.wait(15) == 0
    assert time.monotonic() - started < 10
    m.db.close()


def test_sigterm_finishes_the_mail_in_flight(
    tmp_path: Path, database_url: str, imap_user: ImapUser
) -> None:
    path = setup(tmp_path, database_url, imap_user)
    port = load_config(path).listener.port
    server = start_serve(path)
    results: list[bool] = []
    big = compose(attachments=[("scan.pdf", "application/pdf", os.urandom(3_000_000))])
    thread = threading.Thread(target=lambda: results.append(send(port, big)))
    thread.start()
    time.sleep(0.1)
    server.send_signal(signal.SIGTERM)
    thread.join(30)
    assert server.wait(15) == 0
    log = (tmp_path / "serve.log").read_text()
    assert "serve.stopped" in log
    from tests.conftest import open_gateway

    open_gateway(load_config(path))
    # Either it got its 250 and is stored, or it was refused and the MTA still has it.
    assert m.Receipt.select().count() == (1 if results == [True] else 0)
    m.db.close()


def test_make_run_style_start_prints_where_it_listens(
    tmp_path: Path, database_url: str, imap_user: ImapUser
) -> None:
    path = setup(tmp_path, database_url, imap_user)
    server = start_serve(path)
    try:
        port = load_config(path).listener.port
        assert send(port, compose())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not list((tmp_path / "sent" / "new").glob("*")):
            time.sleep(0.05)
        assert list((tmp_path / "sent" / "new").glob("*")), "no acknowledgement within 10 s"
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(15)
    log = (tmp_path / "serve.log").read_text()
    assert f"smtp=127.0.0.1:{port}" in log and "mail.ingested" in log and "notice.sent" in log


def children_of(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc, Linux)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_a_dead_ingest_worker_is_replaced_and_no_mail_is_lost(
    tmp_path: Path, database_url: str, imap_user: ImapUser
) -> None:
    path = setup(tmp_path, database_url, imap_user)
    port = load_config(path).listener.port
    server = start_serve(path)
    try:
        children = children_of(server.pid)
        assert children, "serve runs ingest in a worker process"
        for pid in children:
            os.kill(pid, signal.SIGKILL)  # the worker dies, as under the OOM killer
        mails = [
            compose(message_id=f"<after-{i}@customer.example>", subject=f"after {i}")
            for i in range(3)
        ]
        answers = [send(port, raw) for raw in mails]
        # A mail that met the dead worker was refused (the MTA retries); later ones pass.
        assert answers[-1] is True
        for raw, accepted in zip(mails, answers, strict=True):
            if not accepted:
                assert send(port, raw)
        assert server.poll() is None
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(15) == 0
    from tests.conftest import open_gateway

    open_gateway(load_config(path))
    assert m.Ticket.select().count() == 3
    m.db.close()
