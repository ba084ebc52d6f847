"""Importing history (issue 13): `mailgate import` of an mbox, a Maildir, a folder of .eml files.

The import runs as an admin runs it (the CLI, in its own process) against the gateway's
database; the relay and the outbox show that nobody was told anything.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import mailbox
import random
from pathlib import Path

import pytest

from mailgate.store import models as m
from tests.desk import Desk
from tests.support import compose

START = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)


def history(threads: int) -> list[bytes]:
    """``threads`` conversations of a customer's mail and a reply a day later (2 mails each)."""
    mails = []
    for n in range(threads):
        sent = START + dt.timedelta(hours=n)
        first_id = f"<hist-{n}@customer.example>"
        first = compose(
            sender=f"Customer {n} <customer{n}@customer.example>",
            subject=f"Question number {n}",
            body=f"Hello,\n\nquestion {n}.\n",
            message_id=first_id,
            headers={},
        ).replace(b"Date: ", b"X-Old-Date: ", 1)
        date = email.utils.format_datetime(sent).encode()
        mails.append(b"Date: " + date + b"\r\n" + first)
        reply = compose(
            sender=f"customer{n}@customer.example",
            subject=f"Re: Question number {n}",
            body="Thanks, solved!\n",
            message_id=f"<hist-{n}-re@customer.example>",
            in_reply_to=first_id,
            references=first_id,
        ).replace(b"Date: ", b"X-Old-Date: ", 1)
        later = email.utils.format_datetime(sent + dt.timedelta(days=1)).encode()
        mails.append(b"Date: " + later + b"\r\n" + reply)
    random.Random(13).shuffle(mails)  # the file's order is not the order of the dates
    return mails


def write_mbox(path: Path, mails: list[bytes]) -> Path:
    box = mailbox.mbox(path)
    for raw in mails:
        box.add(raw)
    box.flush()
    box.close()
    return path


def imported(desk: Desk, *args: str) -> str:
    result = desk.cli("import", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def test_a_500_mail_mbox_is_imported_once_in_silence(desk: Desk, tmp_path: Path) -> None:
    path = write_mbox(tmp_path / "support.mbox", history(250))
    output = imported(desk, str(path))
    assert "imported 500 mails: 250 tickets, 250 replies, 0 already there, 0 quarantined" in output
    assert "500/500 mails" in output  # the progress, as plain lines off a terminal
    # Not a word to anyone, and the breaker never heard of it.
    assert m.OutboxItem.select().count() == 0
    assert m.AutoMailLog.select().count() == 0 and m.MailCounter.select().count() == 0
    assert desk.deliver() == []
    # Threaded as it happened, dated as it happened, and still open.
    ticket = desk.ticket(int(str(m.Ticket.get(m.Ticket.subject == "Question number 7").number)))
    assert ticket["created_at"] == "2025-03-01T16:00:00Z"
    assert [x["date"] for x in ticket["messages"]] == ["2025-03-01T16:00:00Z", "2025-03-02T16:00:00Z"]
    assert ticket["status"] == "open"  # "Thanks, solved!" resolves nothing by itself
    # Run again: nothing new.
    again = imported(desk, str(path))
    assert "0 tickets, 0 replies, 500 already there" in again
    assert m.Ticket.select().count() == 250
    assert m.OutboxItem.select().count() == 0


def test_a_maildir_and_a_folder_of_eml_files(desk: Desk, tmp_path: Path) -> None:
    mails = history(3)
    maildir = mailbox.Maildir(tmp_path / "Maildir", create=True)
    for raw in mails:
        if b"<hist-2" not in raw:
            maildir.add(raw)
    folder = tmp_path / "eml"
    (folder / "2025").mkdir(parents=True)
    for n, raw in enumerate(r for r in mails if b"<hist-2" in r):
        (folder / "2025" / f"{n}.eml").write_bytes(raw)
    first = imported(desk, str(tmp_path / "Maildir"), "--status", "closed")
    second = imported(desk, str(folder), "--mailbox", "banking")
    assert "2 tickets, 2 replies" in first and "1 tickets, 1 replies" in second
    by_box = {t.subject: (t.mailbox, t.status) for t in m.Ticket.select()}
    assert by_box["Question number 0"] == ("support", "closed")
    assert by_box["Question number 2"] == ("banking", "open")
    assert m.OutboxItem.select().count() == 0
    bad = desk.cli("import", str(tmp_path / "nothing-here"))
    assert bad.returncode != 0 and "no such file" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("status", ["closed"])
def test_since_and_status(desk: Desk, tmp_path: Path, status: str) -> None:
    path = write_mbox(tmp_path / "support.mbox", history(4))
    output = imported(desk, str(path), "--since", "2025-03-02", "--status", status)
    assert "4 replies" in output or "4 tickets" in output  # only the replies are that late
    assert "4 before --since" in output
    assert {t.status for t in m.Ticket.select()} == {status}
