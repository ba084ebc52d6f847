"""The same mail re-encoded in transit is one mail (issue 9), through the pipe.

An MTA without 8BITMIME turns 8bit into quoted-printable, a hop turns CRLF into LF and
adds its Received header: the bytes differ, the mail does not. Equal From, Subject,
Date and decoded body text mean the same mail; another Date is another mail.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mailgate.context import Context
from mailgate.store import models as m

HEAD = (
    b"From: Carla Customer <carla@customer.example>\r\n"
    b"To: support@example.org\r\n"
    b"Subject: K\xc3\xa4se im Online-Banking\r\n"
    b"Date: Mon, 23 Nov 2026 09:00:00 +0100\r\n"
    b"MIME-Version: 1.0\r\n"
)
EIGHT_BIT = (
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    b"Gr\xc3\xbc\xc3\x9fe,   \r\nthe transfer hangs.\r\n\r\nCarla\r\n"
)
QUOTED_PRINTABLE = (
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"Gr=C3=BC=C3=9Fe,\r\nthe transfer hangs.\r\n\r\nCarla\r\n"
)
RECEIVED = (
    b"Received: from relay.customer.example (relay.customer.example [192.0.2.7])\r\n"
    b"\tby mx.example.org (Postfix) with ESMTP id 4Xyz; Mon, 23 Nov 2026 09:00:05 +0100\r\n"
)


def pipe(config_path: Path, raw: bytes) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(config_path), "ingest", "-"],
        input=raw,
        capture_output=True,
        timeout=60,
        cwd=config_path.parent,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.decode()


def lf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n")


def test_the_same_mail_reencoded_in_transit_is_a_duplicate(ctx: Context, config_path: Path) -> None:
    first = pipe(config_path, HEAD + b"Message-ID: <one@customer.example>\r\n" + EIGHT_BIT)
    assert first.startswith("created [")
    again = pipe(
        config_path,
        lf(RECEIVED + HEAD + b"Message-ID: <one@customer.example>\r\n" + QUOTED_PRINTABLE),
    )
    assert again.startswith("duplicate"), again
    assert m.Ticket.select().count() == 1


def test_a_mail_without_message_id_reencoded_is_a_duplicate(
    ctx: Context, config_path: Path
) -> None:
    assert pipe(config_path, HEAD + EIGHT_BIT).startswith("created [")
    again = pipe(config_path, lf(RECEIVED + HEAD + QUOTED_PRINTABLE))
    assert again.startswith("duplicate"), again
    assert first_ticket_count() == 1


def test_another_date_or_other_text_is_another_mail(ctx: Context, config_path: Path) -> None:
    assert pipe(config_path, HEAD + EIGHT_BIT).startswith("created [")
    later = HEAD.replace(b"09:00:00", b"09:30:00")
    assert pipe(config_path, later + EIGHT_BIT).startswith("created [")
    other = EIGHT_BIT.replace(b"hangs", b"works again")
    assert pipe(config_path, HEAD + other).startswith("created [")
    assert first_ticket_count() == 3


def first_ticket_count() -> int:
    return int(m.Ticket.select().count())
