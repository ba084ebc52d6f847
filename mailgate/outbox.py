"""Deliver the outbox: queued mail leaves through the configured transport, exactly once.

States of an outbox item::

    queued ──claim──▶ claimed ──▶ sending ──250──▶ sent
      ▲                  │           │ 4xx / refused: back to queued, later (backoff)
      └── lease expired ─┘           │ 5xx: failed (event on the ticket)
                                     └ crash: uncertain — see below

Recipients are answered one by one: when some get 250 and others a 4xx, the
mail goes back to the queue for exactly the deferred ones (its recipient list
narrowed, so nobody who has it gets it twice); a 5xx recipient fails with an
event on the ticket, as when the whole mail fails.

``sending`` is committed right before a mail is handed over and ``sent``
right after, with the mail's Message-ID as the idempotency key. A crash in
between leaves the row ``sending``: for the Maildir transport we look whether
the file is there; for SMTP we cannot ask the relay, so the row becomes
``uncertain`` with an event on the ticket instead of being sent a second time
(``mailgate outbox retry ID`` sends it again on purpose). A ``claimed`` row
was never handed over: when its lease expires it is simply queued again, so a
crash never loses a queued notice.

One delivery run keeps one SMTP connection open for its whole batch; several
gateway processes may run this at once (claims use SKIP LOCKED on PostgreSQL).
Imports the store, config and errors; the SMTP client is the stdlib's.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import smtplib
import ssl
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

# ``m`` is the store's front door (utcnow, write_transaction, is_sqlite) under the name the
# models module had here, which keeps this module's diff small while delivery is reworked.
from mailgate import store as m
from mailgate.config import Config, read_password
from mailgate.errors import UsageError
from mailgate.logs import event, redact
from mailgate.store import events as event_rows
from mailgate.store import outbox as outbox_rows
from mailgate.store import sql
from mailgate.store.rows import OutboxRow

log = logging.getLogger("mailgate.outbox")

LEASE = dt.timedelta(minutes=5)
_BACKOFF_FIRST = 30
_BACKOFF_MAX = 6 * 3600


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


class Transport(Protocol):
    def send(
        self, sender: str, recipients: list[str], content: bytes, message_id: str
    ) -> list[Refusal]:
        """Hand one mail over; returns refused recipients (others were accepted)."""

    def delivered(self, message_id: str) -> bool | None:
        """Whether a mail with this Message-ID was handed over; None when unknowable."""

    def close(self) -> None: ...


# --- transports ---------------------------------------------------------------------------


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
        self, sender: str, recipients: list[str], content: bytes, message_id: str
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
            tmp.write_bytes(envelope + content)
            os.replace(tmp, self.root / "new" / name)
        except OSError as exc:
            raise TemporaryError(
                f"maildir {self.root}: {exc.strerror or exc}", unavailable=True
            ) from exc
        return []

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
        context = ssl.create_default_context()
        if not s.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        try:
            client: smtplib.SMTP
            if s.security == "tls":
                client = smtplib.SMTP_SSL(
                    s.host, s.port, local_hostname=self.helo, timeout=s.timeout, context=context
                )
            else:
                client = smtplib.SMTP(s.host, s.port, local_hostname=self.helo, timeout=s.timeout)
                if s.security == "starttls":
                    client.starttls(context=context)
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

    def delivered(self, message_id: str) -> bool | None:
        return None

    def send(
        self, sender: str, recipients: list[str], content: bytes, message_id: str
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
            refused = self._client.sendmail(sender, recipients, content, mail_options=options)
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


# --- delivery -----------------------------------------------------------------------------


@dataclass
class Report:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    uncertain: int = 0
    errors: list[str] = field(default_factory=list)


def backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=min(_BACKOFF_FIRST * 2 ** max(attempts - 1, 0), _BACKOFF_MAX))


@dataclass(frozen=True)
class _Item:
    id: int
    ticket_id: int | None
    notice: str
    sender: str
    recipients: list[str]
    content: bytes
    message_id: str
    attempts: int


def deliver(
    config: Config, transport: Transport | None = None, *, limit: int | None = None
) -> Report:
    """Send what is due, batch by batch, until nothing is due (or ``limit`` mails were tried)."""
    own_transport = transport is None
    transport = transport or transport_for(config)
    report = Report()
    worker = uuid.uuid4().hex
    try:
        recover(config, transport)
        tried = 0
        while limit is None or tried < limit:
            size = config.outbound.batch_size
            batch = _claim(size if limit is None else min(size, limit - tried), worker)
            if not batch:
                break
            tried += len(batch)
            if not _send_batch(config, transport, batch, report, worker):
                break
    finally:
        if own_transport:
            transport.close()
    return report


def _claim(size: int, worker: str) -> list[int]:
    now = m.utcnow()
    lock = "" if m.is_sqlite() else " FOR UPDATE SKIP LOCKED"
    with m.write_transaction():
        ids = [
            int(r[0])
            for r in sql.rows(
                "SELECT id FROM outbox_item WHERE status = 'queued' AND next_attempt_at <= ?"
                f" ORDER BY id LIMIT ?{lock}",
                sql.ts(now),
                size,
            )
        ]
        if ids:
            sql.run(
                "UPDATE outbox_item SET status = 'claimed', last_error = ?, next_attempt_at = ?"
                f" WHERE id IN ({sql.placeholders(len(ids))})",
                f"claimed by {worker}",
                sql.ts(now + LEASE),
                *ids,
            )
    return ids


def _release(ids: list[int]) -> None:
    if ids:
        with m.write_transaction():
            sql.run(
                "UPDATE outbox_item SET status = 'queued', next_attempt_at = ?"
                f" WHERE status = 'claimed' AND id IN ({sql.placeholders(len(ids))})",
                sql.ts(m.utcnow()),
                *ids,
            )


def _send_batch(
    config: Config, transport: Transport, batch: list[int], report: Report, worker: str
) -> bool:
    """Send a claimed batch; returns False when the transport is down (the rest is released).

    Each mail is marked ``sending`` in a commit of its own before it is handed over;
    the ``sent`` mark of the previous mail rides along in that same commit, so a
    mail costs one commit, and a crash leaves at most one mail ``sending``.
    """
    done: tuple[_Item, list[Refusal]] | None = None
    for index, item_id in enumerate(batch):
        with m.write_transaction():
            if done is not None:
                _mark_sent(config, *done, report)
                done = None
            item = _start(item_id, worker)
        if item is None:
            continue
        try:
            refused = transport.send(item.sender, item.recipients, item.content, item.message_id)
        except TemporaryError as exc:
            _deferred(config, item, exc, report)
            if exc.unavailable:
                _release(batch[index + 1 :])
                return False
            continue
        except PermanentError as exc:
            _failed(item, exc, report)
            continue
        except Exception as exc:
            log.exception("sending failed", extra={"mailgate_fields": {"id": item.id}})
            _failed(item, PermanentError(f"internal error: {type(exc).__name__}: {exc}"), report)
            continue
        done = (item, refused)
    if done is not None:
        with m.write_transaction():
            _mark_sent(config, *done, report)
    return True


def _start(item_id: int, worker: str) -> _Item | None:
    """Mark a mail ``sending`` — only if this worker still holds its claim."""
    row = sql.one(
        "SELECT id, ticket_id, notice, sender, recipients, content, message_id, attempts"
        " FROM outbox_item WHERE id = ? AND status = 'claimed' AND last_error = ?",
        item_id,
        f"claimed by {worker}",
    )
    if row is None:
        return None
    # A fresh lease from now: recovery treats the mail as stuck only after it.
    updated = sql.run(
        "UPDATE outbox_item SET status = 'sending', attempts = ?, next_attempt_at = ?"
        " WHERE id = ? AND status = 'claimed' AND last_error = ?",
        row[7] + 1,
        sql.ts(m.utcnow() + LEASE),
        item_id,
        f"claimed by {worker}",
    ).rowcount
    if updated != 1:
        return None
    return _Item(
        id=row[0],
        ticket_id=row[1],
        notice=row[2],
        sender=row[3],
        recipients=json.loads(row[4]),
        content=bytes(row[5]),
        message_id=row[6],
        attempts=row[7] + 1,
    )


def _mark_sent(config: Config, item: _Item, refused: list[Refusal], report: Report) -> None:
    """The relay took the mail: sent — or, for the recipients it deferred, queued again."""
    failed = [str(r) for r in refused if not r.temporary]
    deferred = [r for r in refused if r.temporary]
    if failed:
        _ticket_event(
            item.ticket_id,
            item.notice,
            "notice_failed",
            "some recipients refused: " + "; ".join(failed),
        )
    if deferred:
        _defer_recipients(config, item, deferred, report)
        return
    sql.run(
        "UPDATE outbox_item SET status = 'sent', sent_at = ?, last_error = ? WHERE id = ?",
        sql.ts(m.utcnow()),
        "; ".join(failed)[:2000],
        item.id,
    )
    report.sent += 1
    event(
        log,
        "notice.sent",
        id=item.id,
        notice=item.notice,
        recipients=len(item.recipients),
        message_id=item.message_id,
    )


def _defer_recipients(
    config: Config, item: _Item, deferred: list[Refusal], report: Report
) -> None:
    """The others have the mail; keep it queued for exactly the recipients answered 4xx."""
    detail = "; ".join(map(str, deferred))
    if item.attempts >= config.outbound.max_attempts:
        sql.run(
            "UPDATE outbox_item SET status = 'failed', last_error = ? WHERE id = ?",
            f"gave up on {detail}"[:2000],
            item.id,
        )
        _ticket_event(
            item.ticket_id,
            item.notice,
            "notice_failed",
            f"gave up after {item.attempts} attempts: {detail}",
        )
        report.failed += 1
    else:
        sql.run(
            "UPDATE outbox_item SET status = 'queued', recipients = ?, last_error = ?,"
            " next_attempt_at = ? WHERE id = ?",
            sql.js([r.recipient for r in deferred]),
            f"deferred for some recipients: {detail}"[:2000],
            sql.ts(m.utcnow() + backoff(item.attempts)),
            item.id,
        )
        report.retried += 1
    report.errors.append(detail)
    event(
        log,
        "notice.deferred",
        logging.WARNING,
        id=item.id,
        notice=item.notice,
        attempts=item.attempts,
        recipients=len(deferred),
        delivered=len(item.recipients) - len(deferred),
        error=redact(detail),
    )


def _deferred(config: Config, item: _Item, exc: TemporaryError, report: Report) -> None:
    give_up = item.attempts >= config.outbound.max_attempts
    with m.write_transaction():
        sql.run(
            "UPDATE outbox_item SET status = ?, last_error = ?, next_attempt_at = ? WHERE id = ?",
            "failed" if give_up else "queued",
            str(exc)[:2000],
            sql.ts(m.utcnow() + backoff(item.attempts)),
            item.id,
        )
        if give_up:
            _ticket_event(
                item.ticket_id,
                item.notice,
                "notice_failed",
                f"gave up after {item.attempts} attempts: {exc}",
            )
    if give_up:
        report.failed += 1
    else:
        report.retried += 1
    report.errors.append(str(exc))
    event(
        log,
        "notice.deferred",
        logging.WARNING,
        id=item.id,
        notice=item.notice,
        attempts=item.attempts,
        error=redact(str(exc)),
    )


def _failed(item: _Item, exc: PermanentError, report: Report) -> None:
    with m.write_transaction():
        sql.run(
            "UPDATE outbox_item SET status = 'failed', last_error = ? WHERE id = ?",
            str(exc)[:2000],
            item.id,
        )
        _ticket_event(item.ticket_id, item.notice, "notice_failed", str(exc))
    report.failed += 1
    report.errors.append(str(exc))
    event(
        log,
        "notice.failed",
        logging.WARNING,
        id=item.id,
        notice=item.notice,
        error=redact(str(exc)),
    )


def _ticket_event(ticket_id: int | None, notice: str, kind: str, detail: str) -> None:
    if ticket_id is None:
        return
    event_rows.add(ticket_id, kind, "system", new=notice, detail=redact(detail)[:1000])


def recover(config: Config, transport: Transport) -> None:
    """Settle rows a crashed sender left behind (expired claims, interrupted sends)."""
    now = m.utcnow()
    with m.write_transaction():
        outbox_rows.requeue_expired_claims(now)
        stale = outbox_rows.stuck_sending(now)
        for item in stale:
            done = transport.delivered(item.message_id)
            if done is True:
                outbox_rows.settle(item.id, "sent", sent_at=now)
            elif done is False:
                outbox_rows.settle(item.id, "queued", next_attempt_at=now)
            else:
                outbox_rows.settle(
                    item.id,
                    "uncertain",
                    last_error="the sender stopped while handing this mail over; not resent",
                )
                _ticket_event(
                    item.ticket_id,
                    item.notice,
                    "notice_uncertain",
                    "delivery uncertain after a crash; not sent again to avoid a duplicate"
                    f" (mailgate outbox retry {item.id} sends it)",
                )


def retry(item_id: int) -> OutboxRow:
    """Queue a failed or uncertain mail again, due now (an admin's decision)."""
    with m.write_transaction():
        item = outbox_rows.by_id(item_id)
        if item is None:
            raise UsageError(f"no outbox item {item_id}")
        if item.status not in ("failed", "uncertain"):
            # Queued or in flight: it goes anyway. Sent: sending again would be a duplicate.
            raise UsageError(
                f"outbox item {item_id} is {item.status}; only failed or uncertain mail is retried"
            )
        outbox_rows.settle(item.id, "queued", next_attempt_at=m.utcnow(), last_error="")
    return item
