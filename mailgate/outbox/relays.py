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


class Transport(Protocol):
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

    def __init__(self, directory: str | Path) -> None:
        self.root = Path(directory)

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
    """A relay over SMTP: STARTTLS or implicit TLS, optional AUTH; one connection per batch."""

    def __init__(self, config: Config) -> None:
        self.settings = config.outbound.smtp
        self.helo = config.gateway.domain
        self._client: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        try:
            client: smtplib.SMTP
            if s.security == "tls":
                client = streaming.SMTP_SSL(
                    s.host, s.port, local_hostname=self.helo, timeout=s.timeout,
                    context=self._tls(),
                )  # fmt: skip
            else:
                client = streaming.SMTP(
                    s.host, s.port, local_hostname=self.helo, timeout=s.timeout
                )
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

    def delivered(self, message_id: str) -> bool | None:
        return None

    def ready(self) -> None:
        if self._client is None:
            self._client = self._connect()

    def send(
        self, sender: str, recipients: list[str], content: Content, message_id: str
    ) -> list[Refusal]:
        if self._client is None:
            self._client = self._connect()
        options: list[str] = []
        if not all(a.isascii() for a in (sender, *recipients)):
            # An internationalised address needs SMTPUTF8 (RFC 6531) all the way.
            if not self._client.has_extn("smtputf8"):
                raise PermanentError(
                    "an address is not ASCII and the relay does not offer SMTPUTF8"
                )
            options.append("SMTPUTF8")
        try:
            # A file is sent from disk by streaming.SMTP's data(), a buffer at a time.
            refused = self._client.sendmail(
                sender, recipients, content, mail_options=options  # type: ignore[arg-type]
            )
        except smtplib.SMTPRecipientsRefused as exc:
            self._reset()
            refusals = _refusals(exc.recipients)
            detail = "; ".join(map(str, refusals))
            if all(r.temporary for r in refusals):
                raise TemporaryError(detail) from exc
            if not any(r.temporary for r in refusals):
                raise PermanentError(detail) from exc
            return refusals  # some may be tried again later, the others failed
        except smtplib.SMTPResponseException as exc:
            self._reset()
            detail = f"{exc.smtp_code} {_text(exc.smtp_error)}"
            if 500 <= exc.smtp_code < 600:
                raise PermanentError(detail) from exc
            raise TemporaryError(detail) from exc
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise TemporaryError(f"relay connection failed: {exc}", unavailable=True) from exc
        except (UnicodeError, ValueError) as exc:
            self._reset()
            raise PermanentError(f"this mail cannot be sent as it is: {exc}") from exc
        return _refusals(refused)

    def _reset(self) -> None:
        try:
            if self._client is not None:
                self._client.rset()
        except (OSError, smtplib.SMTPException):
            self._drop()

    def _drop(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            finally:
                self._client = None

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._client.quit()
            self._drop()


def _refusals(refused: dict[str, tuple[int, bytes]]) -> list[Refusal]:
    return [Refusal(r, code, _text(text)) for r, (code, text) in refused.items()]


def _text(value: bytes | str) -> str:
    return (value.decode("utf-8", "replace") if isinstance(value, bytes) else value).strip()


def transport_for(config: Config) -> Transport:
    if config.outbound.transport == "smtp":
        return SmtpTransport(config)
    return MaildirTransport(config.outbound.maildir)
