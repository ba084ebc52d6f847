"""How an MTA hands mail over: the pipe's envelope options and the LMTP socket's access.

The pipe (``mailgate ingest --recipient=… --sender=… -``) is run as Postfix runs it:
a process of its own, the mail on stdin, the exit status read by the MTA. The
socket's mode and group are checked on a real socket of a real ``serve``.
"""

from __future__ import annotations

import grp
import json
import os
import smtplib
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mailgate.store import models as m
from tests.conftest import open_gateway
from tests.support import compose, config_data, load_config, write_config


def mailgate(
    config: Path, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(config), *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=config.parent,
        check=False,
    )


@pytest.fixture
def upgraded(config_path: Path) -> Path:
    done = mailgate(config_path, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    return config_path


def tickets(config: Path) -> list[dict[str, Any]]:
    listed = mailgate(config, "tickets", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    result: list[dict[str, Any]] = json.loads(listed.stdout)
    return result


def test_the_pipe_files_a_mail_in_the_mailbox_of_its_envelope_recipient(upgraded: Path) -> None:
    # Bcc'd to banking@: the headers name support@, only the envelope knows better.
    mail = compose(to="support@example.org", subject="Raise my transfer limit")
    done = mailgate(
        upgraded,
        "ingest",
        "--sender=carla@customer.example",
        "--recipient=banking@example.org",
        "-",
        stdin=mail,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("created ")
    [ticket] = tickets(upgraded)
    assert ticket["team"] == "online-banking"


def test_the_pipe_recipient_with_a_ticket_number_reaches_that_ticket(upgraded: Path) -> None:
    first = mailgate(upgraded, "ingest", "--recipient=support@example.org", "-", stdin=compose())
    assert first.returncode == 0, first.stderr
    [ticket] = tickets(upgraded)
    # A fresh mail, no tag, no In-Reply-To: only the envelope's plus-address names the ticket.
    follow_up = compose(to="support@example.org", subject="Something else entirely")
    done = mailgate(
        upgraded,
        "ingest",
        "--sender=carla@customer.example",
        f"--recipient=support+{ticket['number']}@example.org",
        "-",
        stdin=follow_up,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"appended {ticket['tag']}")
    assert len(tickets(upgraded)) == 1


def test_a_pipe_recipient_that_is_no_mailbox_is_deferred_with_one_line_and_nothing_recorded(
    upgraded: Path,
) -> None:
    done = mailgate(upgraded, "ingest", "--recipient=postmaster@example.org", "-", stdin=compose())
    assert done.returncode == 75  # Postfix keeps the mail and retries; it never bounces it
    assert done.stderr.count("\n") == 1, done.stderr
    assert "no [[mailbox]] has the address p***@example.org; nothing was recorded" in done.stderr
    assert str(upgraded) in done.stderr and "Traceback" not in done.stderr
    assert tickets(upgraded) == []


def test_the_pipe_with_mailbox_still_files_where_it_says(upgraded: Path) -> None:
    done = mailgate(
        upgraded,
        "ingest",
        "--mailbox",
        "banking",
        "--recipient=postmaster@example.org",
        "--sender=",  # Postfix's null_sender= for bounces: an empty envelope sender
        "-",
        stdin=compose(to="someone@example.org"),
    )
    assert done.returncode == 0, done.stderr
    [ticket] = tickets(upgraded)
    assert ticket["team"] == "online-banking"


@pytest.mark.parametrize(
    ("listener", "message"),
    [
        ({"socket_mode": "rw-rw----"}, 'listener.socket_mode: octal digits like "0660"'),
        ({"socket_mode": "0o660"}, 'listener.socket_mode: octal digits like "0660"'),
        ({"socket_mode": "0960"}, 'listener.socket_mode: octal digits like "0660"'),
        ({"socket_mode": 432}, "listener.socket_mode: must be a string"),
        ({"socket_group": "no-such-group-here"}, "listener.socket_group: no group"),
        ({"socket": "", "socket_mode": "0660"}, "listener.socket_mode: applies only to a unix"),
        ({"socket": "", "socket_group": "daemon"}, "listener.socket_group: applies only to"),
    ],
)
def test_socket_mode_and_group_errors_are_one_line_naming_key_and_file(
    tmp_path: Path, listener: dict[str, Any], message: str
) -> None:
    settings = {"protocol": "lmtp", "socket": str(tmp_path / "lmtp.sock"), **listener}
    path = write_config(
        tmp_path / "bad.toml", config_data(tmp_path, "sqlite:///x.db", {"listener": settings})
    )
    done = mailgate(path, "check")
    assert done.returncode == 78
    assert done.stderr.count("\n") == 1, done.stderr
    assert message in done.stderr and f"(in {path})" in done.stderr


def test_the_lmtp_socket_gets_the_configured_mode_and_group(
    tmp_path: Path, database_url: str, serve_in_thread: Any
) -> None:
    # As root any group will do; otherwise a group of our own (chown allows only those).
    group = "daemon" if os.geteuid() == 0 else grp.getgrgid(os.getegid()).gr_name
    path = tmp_path / "lmtp.sock"
    settings = {
        "protocol": "lmtp",
        "socket": str(path),
        "socket_mode": "0660",
        "socket_group": group,
    }
    data = config_data(tmp_path, database_url, {"listener": settings})
    ctx = open_gateway(load_config(write_config(tmp_path / "mailgate.toml", data)))
    serve_in_thread(ctx, imap=False)

    info = path.stat()
    assert stat.S_ISSOCK(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o660
    assert grp.getgrgid(info.st_gid).gr_name == group
    client = smtplib.LMTP(str(path))
    client.sendmail("carla@customer.example", ["support@example.org"], compose())
    client.quit()
    assert m.Ticket.select().count() == 1
