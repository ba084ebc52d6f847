"""SMTP clients that pipeline (RFC 2920) and send a mail from a file, a buffer at a time.

``sendmail`` writes MAIL, the RCPTs and DATA at once to a relay that offers
PIPELINING: per mail, two round trips instead of three plus one per recipient
(the round trips, not our code, were most of a notice's delivery time).

A notice that carries files is composed into the blob store (``notices.snapshot``); the
outbox hands the relay a ``MailFile`` (its size and a way to open it: a file, or a
stream from a blob store elsewhere) instead of its bytes. ``smtplib.SMTP.sendmail``
passes the mail to ``data()``; here ``data()`` also takes a ``MailFile`` and sends the file
line by line, with smtplib's dot-stuffing (RFC 5321 4.5.2) and ending, never holding
more than ``BUFFER`` bytes. For ``bytes`` it is smtplib's own. Imports the stdlib only.
"""

from __future__ import annotations

import re
import smtplib
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

BUFFER = 1 << 16
# A line that starts with a dot gets another (RFC 5321 4.5.2), as smtplib does it.
_STUFF = re.compile(rb"(?m)^\.")


# A plain address (dot-atoms on both sides of the @): what smtplib's ``quoteaddr`` makes of
# it is the address in <>, without running the stdlib's address parser (~0.3 ms of CPU an
# envelope, more than composing the mail's headers).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


def quoteaddr(address: str) -> str:
    """``smtplib.quoteaddr``: the same answer for every address, cheaper for plain ones."""
    if _PLAIN_ADDRESS.fullmatch(address):
        return f"<{address}>"
    return smtplib.quoteaddr(address)


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
    _envelope: tuple[list[str], list[str]] = ([], [])

    def sendmail(
        self,
        from_addr: str,
        to_addrs: Any,
        msg: Any,
        mail_options: Any = (),
        rcpt_options: Any = (),
    ) -> dict[str, tuple[int, bytes]]:
        """smtplib's ``sendmail``, with MAIL, every RCPT and DATA written at once when the
        relay offers PIPELINING (RFC 2920): two round trips a mail instead of three and
        one per recipient. The answers, refusals and exceptions are smtplib's."""
        client: Any = self
        client.ehlo_or_helo_if_needed()
        if not (client.does_esmtp and client.has_extn("pipelining")) or isinstance(msg, str):
            return smtplib.SMTP.sendmail(
                client, from_addr, to_addrs, msg, mail_options, rcpt_options
            )
        recipients = self.begin(from_addr, to_addrs, len(msg), mail_options, rcpt_options)
        refused = self.accepted(from_addr, recipients)
        return self.finish(msg, refused)

    # sendmail in three steps, so that one thread can keep several connections busy: the
    # envelopes go out on each, then their answers are read, then the mails, then theirs.

    def begin(
        self,
        from_addr: str,
        to_addrs: Any,
        size: int,
        mail_options: Any = (),
        rcpt_options: Any = (),
    ) -> list[str]:
        """Write MAIL, the RCPTs and DATA at once (the relay offers PIPELINING), or keep
        them for ``accepted`` to say one by one; returns the recipients."""
        client: Any = self
        client.ehlo_or_helo_if_needed()
        recipients = [to_addrs] if isinstance(to_addrs, str) else list(to_addrs)
        options = [*([f"size={size}"] if client.has_extn("size") else []), *mail_options]
        if any(o.lower() == "smtputf8" for o in options):
            if not client.has_extn("smtputf8"):
                raise smtplib.SMTPNotSupportedError("SMTPUTF8 not supported by server")
            client.command_encoding = "utf-8"
        self._envelope = (options, list(rcpt_options))
        if not (client.does_esmtp and client.has_extn("pipelining")):
            return recipients
        tail = " " + " ".join(rcpt_options) if rcpt_options else ""
        lines = [f"MAIL FROM:{quoteaddr(from_addr)}{' ' + ' '.join(options) if options else ''}"]
        lines += [f"RCPT TO:{quoteaddr(r)}{tail}" for r in recipients]
        lines.append("DATA")
        for line in lines:
            if "\r" in line or "\n" in line:
                raise ValueError(f"command contains a line break: {line!r}")
        client.send("".join(f"{line}\r\n" for line in lines))
        return recipients

    def accepted(self, from_addr: str, recipients: list[str]) -> dict[str, tuple[int, bytes]]:
        """The answers to ``begin``'s envelope: the refused recipients, the relay then
        waiting for the mail (354); smtplib's exceptions when it will not take it."""
        client: Any = self
        options, rcpt_options = self._envelope
        if not (client.does_esmtp and client.has_extn("pipelining")):
            return self._accepted_one_by_one(from_addr, recipients, options, rcpt_options)
        code, resp = client.getreply()
        refused: dict[str, tuple[int, bytes]] = {}
        answers = [client.getreply() for _ in recipients]
        data_code, data_resp = client.getreply()
        if code != 250:
            if data_code == 354:  # a relay that took DATA anyway: end it empty
                client.send(".\r\n")
                client.getreply()
            self._give_up(code)
            raise smtplib.SMTPSenderRefused(code, resp, from_addr)
        for recipient, (rcode, rresp) in zip(recipients, answers, strict=True):
            if rcode not in (250, 251):
                refused[recipient] = (rcode, rresp)
        if len(refused) == len(recipients):
            if data_code == 354:
                client.send(".\r\n")
                client.getreply()
            client._rset()
            raise smtplib.SMTPRecipientsRefused(refused)
        if data_code != 354:
            self._give_up(data_code)
            raise smtplib.SMTPDataError(data_code, data_resp)
        return refused

    def _give_up(self, code: int) -> None:
        """After a refusal: a relay closing the session (421) is closed; otherwise the
        transaction is reset (RSET), so the connection can take the next mail."""
        client: Any = self
        if code == 421:
            client.close()
        else:
            client._rset()

    def _accepted_one_by_one(
        self, from_addr: str, recipients: list[str], options: list[str], rcpt_options: list[str]
    ) -> dict[str, tuple[int, bytes]]:
        """smtplib's ``sendmail`` up to DATA's 354, for a relay without PIPELINING."""
        client: Any = self
        code, resp = client.mail(from_addr, options)
        if code != 250:
            self._give_up(code)
            raise smtplib.SMTPSenderRefused(code, resp, from_addr)
        refused: dict[str, tuple[int, bytes]] = {}
        for recipient in recipients:
            code, resp = client.rcpt(recipient, rcpt_options)
            if code not in (250, 251):
                refused[recipient] = (code, resp)
            if code == 421:
                client.close()
                raise smtplib.SMTPRecipientsRefused(refused)
        if len(refused) == len(recipients):
            client._rset()
            raise smtplib.SMTPRecipientsRefused(refused)
        client.putcmd("data")
        code, resp = client.getreply()
        if code != 354:
            self._give_up(code)
            raise smtplib.SMTPDataError(code, resp)
        return refused

    def send_content(self, msg: Any) -> None:
        """After 354: the mail, dot-stuffed and ended (its answer is read by ``finish``)."""
        client: Any = self
        if not isinstance(msg, MailFile):
            stuffed = _STUFF.sub(b"..", bytes(msg))
            if not stuffed.endswith(b"\r\n"):
                stuffed += b"\r\n"
            client.send(stuffed + b".\r\n")
            return
        # A buffer at a time, stuffed by the regex (not a Python loop over the lines: a
        # file's base64 is ~13,000 lines a MiB). A buffer that starts inside a line (the
        # one before did not end with LF) must not get a dot for its first byte.
        tail, pending = b"\r\n", b""
        with msg.open() as source:
            while chunk := source.read(BUFFER):
                if pending:
                    client.send(pending)
                pending = _STUFF.sub(b"..", chunk)
                if not tail.endswith(b"\n") and chunk.startswith(b"."):
                    pending = pending[1:]
                tail = (tail + chunk)[-2:]
        client.send(pending + (b".\r\n" if tail == b"\r\n" else b"\r\n.\r\n"))

    def finish(
        self, msg: Any, refused: dict[str, tuple[int, bytes]], *, sent: bool = False
    ) -> dict[str, tuple[int, bytes]]:
        """Send the mail (unless ``sent``: ``send_content`` did) and read its answer."""
        client: Any = self
        if not sent:
            self.send_content(msg)
        code, resp = client.getreply()
        if code != 250:
            self._give_up(code)
            raise smtplib.SMTPDataError(code, resp)
        return refused

    def data(self, msg: Any) -> tuple[int, bytes]:
        client: Any = self
        if not isinstance(msg, MailFile):
            return smtplib.SMTP.data(client, msg)
        client.putcmd("data")
        code, reply = client.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        self.send_content(msg)
        return client.getreply()  # type: ignore[no-any-return]


class SMTP(_FromFile, smtplib.SMTP):
    pass


class SMTP_SSL(_FromFile, smtplib.SMTP_SSL):
    pass


Client = SMTP | SMTP_SSL
