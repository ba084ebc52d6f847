"""SMTP clients that send a mail from a file, a buffer at a time (notices carrying files).

A notice that carries files is composed into the blob store (``notices.queue``); the
outbox hands the relay a ``MailFile`` (its size and a way to open it: a file, or a
stream from a blob store elsewhere) instead of its bytes. ``smtplib.SMTP.sendmail``
passes the mail to ``data()``; here ``data()`` also takes a ``MailFile`` and sends the file
line by line, with smtplib's dot-stuffing (RFC 5321 4.5.2) and ending, never holding
more than ``BUFFER`` bytes. For ``bytes`` it is smtplib's own. Imports the stdlib only.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

BUFFER = 1 << 16


class MailFile:
    """A mail to be read from a file or a blob store, as ``sendmail`` takes it (its
    length is announced as SIZE)."""

    def __init__(self, size: int, open: Callable[[], BinaryIO]) -> None:
        self.size = size
        self.open = open

    @classmethod
    def from_path(cls, path: Path) -> MailFile:
        return cls(path.stat().st_size, lambda: path.open("rb"))

    def __len__(self) -> int:
        return self.size


class _FromFile:
    def data(self, msg: Any) -> tuple[int, bytes]:
        client: Any = self
        if not isinstance(msg, MailFile):
            return smtplib.SMTP.data(client, msg)
        client.putcmd("data")
        code, reply = client.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        pending = bytearray()
        last = b"\r\n"
        with msg.open() as source:
            for line in source:
                if line.startswith(b"."):
                    pending += b"."
                pending += line
                last = line
                if len(pending) >= BUFFER:
                    client.send(bytes(pending))
                    pending.clear()
        if not last.endswith(b"\r\n"):
            pending += b"\r\n"
        pending += b".\r\n"
        client.send(bytes(pending))
        return client.getreply()  # type: ignore[no-any-return]


class SMTP(_FromFile, smtplib.SMTP):
    pass


class SMTP_SSL(_FromFile, smtplib.SMTP_SSL):
    pass
