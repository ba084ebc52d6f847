"""What a transport hands over with a mail, and the answer it gets back.

A transport (SMTP/LMTP listener, IMAP poller, the pipe) knows the raw bytes and
its envelope — recipients, the authenticated login, whether a receiving MTA of
ours stood in front — and needs one answer: the ``Outcome``. Outcomes are values,
never exceptions (aiosmtpd's style: a handler returns ``"250 OK"``); the one
exception a transport must handle is ``errors.TemporaryFailure`` (answer 451,
leave the mail on the server, exit 75).

Transports import this module, ``errors``, ``logs`` and ``config`` — nothing
else of mailgate; ``app.py`` wires them to ``mailgate.intake``. Imports only the
standard library.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Envelope:
    """What the transport knows beyond the bytes (SMTP envelope, authenticated login).

    ``via_mta``: the mail passed a receiving MTA of ours, so a trusted
    Authentication-Results header on top is that MTA's (pipe, LMTP, IMAP). Mail that
    reached our own SMTP listener directly carries only what the sender wrote.
    """

    mail_from: str | None = None
    rcpt_tos: tuple[str, ...] = ()
    authenticated_as: str = ""
    via_mta: bool = True
    # The raw mail is in this file, not in the bytes handed over (then empty): the
    # listener writes a big mail straight to disk during DATA. The transport made the
    # file and removes it once it answered; never stored with the receipt.
    spool: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "mail_from": self.mail_from,
            "rcpt_tos": list(self.rcpt_tos),
            "authenticated_as": self.authenticated_as,
            "via_mta": self.via_mta,
        }

    @classmethod
    def from_json(cls, data: Any) -> Envelope:
        if not isinstance(data, dict):
            return cls()
        return cls(
            mail_from=data.get("mail_from") or None,
            rcpt_tos=tuple(str(r) for r in data.get("rcpt_tos") or ()),
            authenticated_as=str(data.get("authenticated_as") or ""),
            via_mta=bool(data.get("via_mta", True)),
        )


@dataclass(frozen=True)
class Outcome:
    """What became of one mail: the transport's answer and the log line's fields."""

    action: str  # created appended reopened rated duplicate ignored bounce list_alert quarantined
    message_id: str
    ticket: int | None = None
    tag: str | None = None
    reason: str = ""
    trace: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "ticket": self.ticket,
            "tag": self.tag,
            "message_id": self.message_id,
            "reason": self.reason,
            "trace": list(self.trace),
        }
