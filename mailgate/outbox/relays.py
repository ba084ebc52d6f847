"""The relays the outbox hands mail to: a Maildir, or an SMTP server (STARTTLS or TLS, AUTH).

A transport hands over one mail and says which recipients it refused
(``Refusal``, 4xx or 5xx each); ``TemporaryError`` means try again later (with
``unavailable``: the transport itself is down), ``PermanentError`` that the relay
refused the mail for good. ``delivered`` tells recovery whether a mail with that
Message-ID was handed over (a Maildir knows; SMTP cannot). The SMTP client is
the stdlib's. Imports config, nothing of the database.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import smtplib
import ssl
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mailgate.config import Config, read_password
from mailgate.outbox import streaming


class TemporaryError(Exception):
    """The mail could not be handed over now; try again later.

    ``unavailable`` means the transport itself is down (no connection): the rest
    of the batch is not tried now either.
    """

    def __init__(self, message: str, *, unavailable: bool = False) -> None:
        super().__init__(message)
        self.unavailable = unavailable


class PermanentError(Exception):
    """The relay refused the mail for good (5xx)."""


@dataclass(frozen=True)
class Refusal:
    """One recipient the relay did not take, with its answer."""

    recipient: str
    code: int
    text: str

    @property
    def temporary(self) -> bool:
        return 400 <= self.code < 500

    def __str__(self) -> str:
        return f"{self.recipient}: {self.code} {self.text}"


# What a relay is handed: the mail's bytes, or where to read them (a notice with files).
Content = bytes | streaming.MailFile


@dataclass(frozen=True)
class Outgoing:
    """One mail of a round (``Transport.send_many``)."""

    sender: str
    recipients: tuple[str, ...]
    content: Content
    message_id: str


# What became of one mail: the recipients refused (the others took it), or why not sent.
Outcome = list[Refusal] | TemporaryError | PermanentError


def one_by_one(transport: Transport, mails: list[Outgoing]) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for mail in mails:
        try:
            outcomes.append(
                transport.send(mail.sender, list(mail.recipients), mail.content, mail.message_id)
            )
        except (TemporaryError, PermanentError) as exc:
            outcomes.append(exc)
    return outcomes


class Transport(Protocol):
    # How many mails ``send_many`` takes at once (one per connection).
    width: int

    def send_many(self, mails: list[Outgoing]) -> list[Outcome]:
        """Hand over up to ``width`` mails; what became of each, in order."""

    def send(
        self, sender: str, recipients: list[str], content: Content, message_id: str
    ) -> list[Refusal]:
        """Hand one mail over (its bytes, or where to read them); returns refused
        recipients (others were accepted)."""

    def delivered(self, message_id: str) -> bool | None:
        """Whether a mail with this Message-ID was handed over; None when unknowable."""

    def ready(self) -> None:
        """Reach the relay (or fail with ``TemporaryError``, unavailable) before a batch is
        composed."""

    def close(self) -> None: ...


class MaildirTransport:
    """Writes each mail into a Maildir (``new/``), named after its Message-ID: idempotent."""

    width = 1

    def __init__(self, directory: str | Path) -> None:
        self.root = Path(directory)

    def send_many(self, mails: list[Outgoing]) -> list[Outcome]:
        return one_by_one(self, mails)

    def _name(self, message_id: str) -> str:
        return hashlib.sha256(message_id.encode()).hexdigest()[:32] + ".mailgate"

    def delivered(self, message_id: str) -> bool | None:
        name = self._name(message_id)
        return (self.root / "new" / name).exists() or any(
            p.name.startswith(name) for p in (self.root / "cur").glob(name + "*")
        )

    def send(
        self, sender: str, recipients: list[str], content: Content, message_id: str
    ) -> list[Refusal]:
        try:
            for sub in ("tmp", "new", "cur"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
            name = self._name(message_id)
            if self.delivered(message_id):
                return []
            tmp = self.root / "tmp" / f"{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
            envelope = (
                f"Return-Path: <{sender}>\r\nDelivered-To: {', '.join(recipients)}\r\n"
            ).encode()
            with tmp.open("wb") as written:  # the mail is not copied once more
                written.write(envelope)
                if isinstance(content, streaming.MailFile):
                    with content.open() as source:
                        shutil.copyfileobj(source, written, 1 << 20)
                else:
                    written.write(content)
            os.replace(tmp, self.root / "new" / name)
        except OSError as exc:
            raise TemporaryError(
                f"maildir {self.root}: {exc.strerror or exc}", unavailable=True
            ) from exc
        return []

    def ready(self) -> None:
        return None

    def close(self) -> None:
        return None


class SmtpTransport:
    """A relay over SMTP: STARTTLS or implicit TLS, optional AUTH; ``connections`` kept
    open for a batch, each carrying one mail of a round (``send_many``)."""

    def __init__(self, config: Config) -> None:
        self.settings = config.outbound.smtp
        self.helo = config.gateway.domain
        self.width = self.settings.connections
        self._clients: list[streaming.Client | None] = [None] * self.width

    def _connect(self) -> streaming.Client:
        s = self.settings
        try:
            client: streaming.Client
            if s.security == "tls":
                client = streaming.SMTP_SSL(
                    s.host, s.port, local_hostname=self.helo, timeout=s.timeout,
                    context=self._tls(),
                )  # fmt: skip
            else:
                client = streaming.SMTP(s.host, s.port, local_hostname=self.helo, timeout=s.timeout)
                if s.security == "starttls":
                    client.starttls(context=self._tls())
                    client.ehlo()
            if s.username:
                client.login(
                    s.username, read_password(s.password_env, s.password_file, "outbound.smtp")
                )
        except smtplib.SMTPAuthenticationError as exc:
            detail = f"relay refused our login: {exc.smtp_code} {_text(exc.smtp_error)}"
            raise TemporaryError(detail, unavailable=True) from exc
        except (OSError, smtplib.SMTPException) as exc:
            detail = f"relay {s.host}:{s.port} unreachable: {exc}"
            raise TemporaryError(detail, unavailable=True) from exc
        return client

    def _tls(self) -> ssl.SSLContext:
        """Only for a relay spoken to over TLS: loading the system's CA certificates costs
        ~80 ms, which every delivery run paid even to a relay on localhost without TLS."""
        context = ssl.create_default_context()
        if not self.settings.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _client(self, index: int) -> streaming.Client:
        client = self._clients[index]
        if client is None:
            client = self._clients[index] = self._connect()
        return client

    def delivered(self, message_id: str) -> bool | None:
        return None

    def ready(self) -> None:
        self._client(0)

    def send(
        self, sender: str, recipients: list[str], content: Content, message_id: str
    ) -> list[Refusal]:
        (outcome,) = self.send_many([Outgoing(sender, tuple(recipients), content, message_id)])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def send_many(self, mails: list[Outgoing]) -> list[Outcome]:
        """Each mail over a connection of its own, in steps across them: every envelope
        (MAIL, RCPT, DATA at once where the relay pipelines), then every answer, then
        every mail, then every final answer. The relay works on all of them while we
        wait for the first: a round of mails costs the round trips of one. A connection
        that fails costs only its own mail."""
        outcomes: list[Outcome] = [[] for _ in mails]
        live: list[tuple[int, list[str], dict[str, tuple[int, bytes]]]] = []
        later: list[int] = []
        for index, mail in enumerate(mails):
            if index >= self.width:
                later.append(index)
                continue
            try:
                client = self._client(index)
            except TemporaryError as exc:
                if index == 0:
                    outcomes[index] = exc
                    continue
                # The relay takes fewer connections from us: the ones it took carry the
                # rest of this run (this mail goes over the first, after the round).
                self.width = index
                later.append(index)
                continue
            try:
                client.ehlo_or_helo_if_needed()
                options = self._options(client, mail)
                rcpts = client.begin(mail.sender, list(mail.recipients), len(mail.content), options)
            except PermanentError as exc:
                outcomes[index] = exc
                continue
            except (OSError, smtplib.SMTPException, UnicodeError, ValueError) as exc:
                outcomes[index] = self._failure(index, exc)
                continue
            live.append((index, rcpts, {}))
        for step in ("accepted", "content", "finish"):
            going: list[tuple[int, list[str], dict[str, tuple[int, bytes]]]] = []
            for index, rcpts, refused in live:
                client, mail = self._client(index), mails[index]
                try:
                    if step == "accepted":
                        refused = client.accepted(mail.sender, rcpts)
                    elif step == "content":
                        client.send_content(mail.content)
                    else:
                        outcomes[index] = _refusals(client.finish(None, refused, sent=True))
                except (OSError, smtplib.SMTPException, UnicodeError, ValueError) as exc:
                    outcomes[index] = self._failure(index, exc)
                    continue
                going.append((index, rcpts, refused))
            live = going
        for index in later:
            (outcomes[index],) = self.send_many([mails[index]])
        return outcomes

    def _options(self, client: smtplib.SMTP, mail: Outgoing) -> list[str]:
        if all(a.isascii() for a in (mail.sender, *mail.recipients)):
            return []
        # An internationalised address needs SMTPUTF8 (RFC 6531) all the way.
        if not client.has_extn("smtputf8"):
            raise PermanentError("an address is not ASCII and the relay does not offer SMTPUTF8")
        return ["SMTPUTF8"]

    def _failure(self, index: int, exc: Exception) -> Outcome:
        """What an exception of smtplib's means for the mail on connection ``index`` (the
        connection reset, or dropped when it broke)."""
        outcome: Outcome
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            self._reset(index)
            refusals = _refusals(exc.recipients)
            detail = "; ".join(map(str, refusals))
            if all(r.temporary for r in refusals):
                outcome = TemporaryError(detail)
            elif not any(r.temporary for r in refusals):
                outcome = PermanentError(detail)
            else:
                return refusals  # some may be tried again later, the others failed
        elif isinstance(exc, smtplib.SMTPResponseException):
            self._reset(index)
            detail = f"{exc.smtp_code} {_text(exc.smtp_error)}"
            if 500 <= exc.smtp_code < 600:
                outcome = PermanentError(detail)
            else:
                outcome = TemporaryError(detail)
        elif isinstance(exc, (OSError, smtplib.SMTPException)):
            self._drop(index)
            outcome = TemporaryError(f"relay connection failed: {exc}", unavailable=True)
        else:
            self._reset(index)
            outcome = PermanentError(f"this mail cannot be sent as it is: {exc}")
        outcome.__cause__ = exc
        return outcome

    def _reset(self, index: int) -> None:
        try:
            client = self._clients[index]
            if client is not None:
                client.rset()
        except (OSError, smtplib.SMTPException):
            self._drop(index)

    def _drop(self, index: int) -> None:
        client = self._clients[index]
        if client is not None:
            try:
                client.close()
            finally:
                self._clients[index] = None

    def close(self) -> None:
        for index, client in enumerate(self._clients):
            if client is not None:
                with contextlib.suppress(OSError, smtplib.SMTPException):
                    client.quit()
                self._drop(index)


def _refusals(refused: dict[str, tuple[int, bytes]]) -> list[Refusal]:
    return [Refusal(r, code, _text(text)) for r, (code, text) in refused.items()]


def _text(value: bytes | str) -> str:
    return (value.decode("utf-8", "replace") if isinstance(value, bytes) else value).strip()


def transport_for(config: Config) -> Transport:
    if config.outbound.transport == "smtp":
        return SmtpTransport(config)
    return MaildirTransport(config.outbound.maildir)
