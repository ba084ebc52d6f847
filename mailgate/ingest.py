"""The one front door: raw bytes in, a ticket or a threaded reply out, exactly once.

Every transport (SMTP/LMTP listener, IMAP poller, ``mailgate ingest`` pipe)
calls ``ingest()``. It works in two steps:

1. **store** — the raw bytes go to the blob store and one ``receipt`` row is
   committed. From here on nothing can be lost: a crash, a bug or a database
   outage leaves the receipt behind, and a re-delivery of the same mail is
   recognised (by Message-ID, or by the sha256 of mails without one).
2. **process**, in ONE transaction: parse → classify → find the ticket →
   decide → apply → queue notices. On an unexpected error everything rolls
   back and the receipt is marked *quarantined* with the reason; a database
   that is unavailable raises ``TemporaryFailure`` so the transport can
   answer 451 (SMTP), leave the mail on the server (IMAP) or exit 75 (pipe).

The outcome is a value (``Outcome``), never an exception. ``explain()`` runs
the same steps as a dry run and writes nothing.

Imports tickets, notify, models and ``mailgate.mail``; never a transport.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import peewee as pw

from mailgate import agents, notify, routing, sql, tickets
from mailgate import models as m
from mailgate.config import Mailbox
from mailgate.context import Context
from mailgate.errors import TemporaryFailure, UsageError
from mailgate.logs import event, redact
from mailgate.mail import classify as classifier
from mailgate.mail import html as html_text
from mailgate.mail import quotes
from mailgate.mail.charsets import decode_header
from mailgate.mail.parse import (
    Address,
    HashSink,
    ParsedMail,
    Unparseable,
    first_message_id,
    parse,
    synthesized_message_id,
)

log = logging.getLogger("mailgate.ingest")

# A mail that crashed the process this many times is quarantined without another try.
MAX_ATTEMPTS = 3
# How long one delivery may take before another process may take the mail over.
LEASE = dt.timedelta(minutes=5)


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
    action: str  # created appended reopened duplicate ignored bounce quarantined
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


def ingest(
    ctx: Context,
    raw: bytes,
    *,
    source: str,
    mailbox: str | None = None,
    envelope: Envelope | None = None,
) -> Outcome:
    """Record one mail exactly once; raises only ``TemporaryFailure`` (retry later)."""
    envelope = envelope or Envelope()
    if mailbox is not None:
        ctx.config.mailbox(mailbox)  # an unknown name is a usage error, before anything is stored
    sha256 = hashlib.sha256(raw).hexdigest()
    message_id, sender = _peek(raw, sha256)
    ctx.blobs.put(raw, sha256)
    fingerprint = _fingerprint(raw)
    try:
        receipt, duplicate = _receive(
            message_id, sha256, sender, len(raw), source, mailbox or "", envelope, fingerprint
        )
    except TemporaryFailure:
        raise
    except (pw.DataError, ValueError, UnicodeError):  # a value the database refused:
        # keep the mail under its bytes alone
        log.exception("receipt refused; storing the mail under its sha256")
        receipt, duplicate = _receive(
            synthesized_message_id(sha256),
            sha256,
            "",
            len(raw),
            source,
            mailbox or "",
            envelope,
            fingerprint,
        )
    if duplicate is not None:
        outcome = Outcome(
            "duplicate",
            receipt.message_id,
            ticket=duplicate,
            tag=tickets.tag(ctx.config, duplicate) if duplicate else None,
            reason=(
                f"already received {receipt.received_at:%Y-%m-%d %H:%M:%S} UTC"
                if receipt.status != "received"
                else "another delivery of this mail is being processed right now"
            ),
        )
        _log(source, sender, outcome)
        return outcome
    outcome = process(ctx, receipt, raw, envelope)
    _log(source, sender, outcome)
    return outcome


def _log(source: str, sender: str, outcome: Outcome) -> None:
    event(
        log,
        "mail.ingested",
        source=source,
        sender=redact(sender),
        action=outcome.action,
        ticket=outcome.ticket,
        message_id=outcome.message_id,
        reason=outcome.reason if outcome.action in ("quarantined", "ignored") else None,
    )


_HEADER_LINE = re.compile(rb"^(message-id|from)[ \t]*:(.*(?:\r?\n[ \t].*)*)", re.I | re.M)
_BRACKETED = re.compile(r"<([^<>\s]+@[^<>\s]+)>")


def _peek(raw: bytes, sha256: str) -> tuple[str, str]:
    """Message-ID and sender address from the header block alone: the idempotency key.

    A regular expression over the header bytes, not a parser: this runs before the
    mail is safely stored, so it must be cheap and must not fail on garbage.
    """
    end = raw.find(b"\n\n")
    crlf = raw.find(b"\r\n\r\n")
    if crlf != -1 and (end == -1 or crlf < end):
        end = crlf
    head = raw[: end if end != -1 else min(len(raw), 256 * 1024)]
    found: dict[bytes, str] = {}
    for match in _HEADER_LINE.finditer(head):
        found.setdefault(match.group(1).lower(), match.group(2).decode("ascii", "surrogateescape"))
    message_id = first_message_id(found.get(b"message-id", ""))
    if not _printable_ascii(message_id) or len(message_id) > 900:
        # An ID with raw bytes or control characters is no key anyone else would send
        # again the same way: the bytes themselves are the better key.
        message_id = ""
    sender_field = found.get(b"from", "")
    bracketed = _BRACKETED.search(sender_field)
    if bracketed:
        sender = bracketed.group(1)
    else:
        sender = email.utils.parseaddr(decode_header(sender_field))[1]
    sender = "".join(sender.split()).lower()
    if not _printable_ascii(sender):
        sender = sql.clean(decode_header(sender))
    return message_id or synthesized_message_id(sha256), sender


def _printable_ascii(text: str) -> bool:
    return text.isascii() and text.isprintable()


def _fingerprint(raw: bytes) -> str:
    """The sha256 of the body: equal for one mail delivered twice (only trace headers
    differ), different for two mails a broken client sent with the same Message-ID."""
    end = raw.find(b"\r\n\r\n")
    lf = raw.find(b"\n\n")
    cut = min(x for x in (end + 4 if end != -1 else len(raw), lf + 2 if lf != -1 else len(raw)))
    return hashlib.sha256(memoryview(raw)[cut:]).hexdigest()


def _receive(
    message_id: str,
    sha256: str,
    sender: str,
    size: int,
    source: str,
    mailbox: str,
    envelope: Envelope,
    fingerprint: str,
) -> tuple[m.Receipt, int | None]:
    """Commit the receipt and take the lease on it.

    Returns the receipt and, when this delivery must not process it, a ticket number
    (0 if none): a duplicate of a finished mail, or of one another delivery is
    processing right now (the same mail reaching two processes at once).
    """
    now = m.utcnow()
    # A Message-ID reused for another mail (other sender, or other text: broken clients
    # and monitoring tools do this) is not a duplicate: such a mail gets a derived key.
    with m.write_transaction():
        for key in _keys(message_id, sha256):
            # ON CONFLICT makes the first delivery win atomically, on every backend.
            created = sql.one(
                "INSERT INTO receipt (message_id, sha256, fingerprint, size, sender, source,"
                " mailbox, envelope, status, action, reason, attempts, received_at, lease_until)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'received', '', '', 1, ?, ?)"
                " ON CONFLICT (message_id) DO NOTHING RETURNING id",
                key,
                sha256,
                fingerprint,
                size,
                sender[:320],
                source,
                mailbox,
                sql.js(envelope.as_json()),
                sql.ts(now),
                sql.ts(now + LEASE),
            )
            if created is not None:
                return m.Receipt(
                    id=created[0],
                    message_id=key,
                    sha256=sha256,
                    fingerprint=fingerprint,
                    size=size,
                    sender=sender[:320],
                    source=source,
                    mailbox=mailbox,
                    envelope=envelope.as_json(),
                    status="received",
                    action="",
                    reason="",
                    attempts=1,
                    received_at=now,
                ), None
            existing = _receipt_by_message_id(key)
            if existing is None or not _same_mail(existing, sender, fingerprint):
                continue
            if existing.status != "received" or not _claim(existing, now):
                # Finished, or being processed by another delivery right now.
                number = sql.value("SELECT number FROM ticket WHERE id = ?", existing.ticket_id)
                return existing, int(number or 0)
            return existing, None
    raise TemporaryFailure(f"no receipt key left for {message_id}")


def _keys(message_id: str, sha256: str) -> list[str]:
    return [message_id, f"{message_id[:-1]}.{sha256[:16]}>", synthesized_message_id(sha256)]


def stop(raw: bytes, reason: str) -> Outcome | None:
    """Processing of ``raw`` was stopped from outside (a deadline): quarantine its receipt.

    The outcome as stored when it had finished after all; None when it was never stored.
    """
    sha256 = hashlib.sha256(raw).hexdigest()
    for key in _keys(_peek(raw, sha256)[0], sha256):
        receipt = _receipt_by_message_id(key)
        if receipt is None or receipt.sha256 != sha256:
            continue
        if receipt.status == "received":
            return quarantine(receipt, reason)
        return Outcome(receipt.action or receipt.status, receipt.message_id, reason=receipt.reason)
    return None


def _same_mail(existing: m.Receipt, sender: str, fingerprint: str) -> bool:
    if existing.sender and sender and existing.sender != sender:
        return False
    return not (existing.fingerprint and fingerprint and existing.fingerprint != fingerprint)


def _claim(receipt: m.Receipt, now: dt.datetime) -> bool:
    """Take over an unfinished mail whose lease ran out; False when someone else holds it.

    Every take-over counts as an attempt: a mail that kills the process (a parser bug,
    memory) is quarantined unread after MAX_ATTEMPTS instead of killing it forever.
    The update is conditional, so of two processes only one wins.
    """
    row = sql.one(
        "UPDATE receipt SET attempts = attempts + 1, lease_until = ?"
        " WHERE id = ? AND status = 'received' AND (lease_until IS NULL OR lease_until < ?)"
        " RETURNING attempts",
        sql.ts(now + LEASE),
        receipt.id,
        sql.ts(now),
    )
    if row is None:
        return False
    receipt.attempts = int(row[0])
    if receipt.attempts > MAX_ATTEMPTS:
        receipt.status = receipt.action = "quarantined"
        receipt.reason = f"processing did not finish in {MAX_ATTEMPTS} attempts"
        sql.run(
            "UPDATE receipt SET status = 'quarantined', action = 'quarantined', reason = ?"
            " WHERE id = ? AND status = 'received'",
            receipt.reason,
            receipt.id,
        )
    return True


def _receipt_by_message_id(message_id: str) -> m.Receipt | None:
    row = sql.one(
        "SELECT id, sha256, size, sender, source, mailbox, status, action, reason, attempts,"
        " ticket_id, received_at, fingerprint, envelope FROM receipt WHERE message_id = ?",
        message_id,
    )
    if row is None:
        return None
    return m.Receipt(
        fingerprint=row[12],
        envelope=json.loads(row[13] or "{}"),
        id=row[0],
        message_id=message_id,
        sha256=row[1],
        size=row[2],
        sender=row[3],
        source=row[4],
        mailbox=row[5],
        status=row[6],
        action=row[7],
        reason=row[8],
        attempts=row[9],
        ticket=row[10],
        received_at=sql.read_ts(row[11]),
    )


def process(ctx: Context, receipt: m.Receipt, raw: bytes, envelope: Envelope) -> Outcome:
    """Step 2 for a stored receipt (also used by ``quarantine retry`` and crash recovery)."""
    if receipt.status == "quarantined":
        return Outcome("quarantined", receipt.message_id, reason=receipt.reason)
    try:
        mail = parse(raw, ctx.blobs, sha256=receipt.sha256)
    except Unparseable as exc:
        return quarantine(receipt, str(exc))
    except TemporaryFailure:
        _release(receipt)
        raise
    except Exception as exc:
        log.exception("parser failed", extra={"mailgate_fields": {"receipt": receipt.id}})
        return quarantine(receipt, f"parser error: {type(exc).__name__}: {exc}")
    for attempt in range(3):
        try:
            with m.write_transaction():
                return _apply(ctx, receipt, mail, envelope)
        except _Quarantine as exc:
            return quarantine(receipt, str(exc))
        except pw.IntegrityError as exc:
            # Another process created the same contact or ticket number a moment ago.
            if attempt == 2:
                return quarantine(receipt, f"database conflict: {exc}")
        except TemporaryFailure as exc:
            # Two processes locked the same tickets in opposite order: PostgreSQL aborted
            # one transaction; doing it again sees what the other one did.
            if _worth_retrying(exc) and attempt < 2:
                continue
            _release(receipt)
            raise
        except Exception as exc:
            log.exception("processing failed", extra={"mailgate_fields": {"receipt": receipt.id}})
            return quarantine(receipt, f"processing error: {type(exc).__name__}: {exc}")
    raise AssertionError("unreachable")


def _worth_retrying(exc: TemporaryFailure) -> bool:
    text = str(exc).lower()
    return "deadlock detected" in text or "could not serialize" in text


def _release(receipt: m.Receipt) -> None:
    """Give the lease back after a failure, so the sender's retry may process it at once.

    When the database is down this fails too; the lease then simply runs out and the
    recovery job finishes the mail.
    """
    with contextlib.suppress(TemporaryFailure, pw.PeeweeException), m.write_transaction():
        sql.run(
            "UPDATE receipt SET lease_until = NULL WHERE id = ? AND status = 'received'",
            receipt.id,
        )


def quarantine(receipt: m.Receipt, reason: str) -> Outcome:
    with m.write_transaction():
        m.Receipt.update(
            status="quarantined",
            action="quarantined",
            reason=reason[:2000],
            processed_at=m.utcnow(),
        ).where(m.Receipt.id == receipt.id).execute()
    return Outcome("quarantined", receipt.message_id, reason=reason)


# --- the decision, as a plan --------------------------------------------------------------


@dataclass
class Plan:
    """What processing a mail will do; ``explain`` prints it, ``_apply`` carries it out."""

    mail: ParsedMail
    verdict: classifier.Verdict
    mailbox: Mailbox
    sender: Address | None
    found: tickets.Found | None = None
    role: tickets.Role = "unknown"
    decision: str = "ignore"
    reason: str = ""
    trace: list[str] = field(default_factory=list)
    identity: agents.Identity | None = None
    request: agents.AgentMail | None = None
    routed: routing.Routed | None = None
    recipients: tuple[str, ...] = ()


def plan(ctx: Context, mail: ParsedMail, envelope: Envelope, mailbox_name: str = "") -> Plan:
    """Classify and thread a parsed mail. Reads the database, writes nothing."""
    config = ctx.config
    verdict = classifier.classify(
        mail, own_addresses=config.own_addresses, loop_token=ctx.loop_token
    )
    box = _mailbox(ctx, mailbox_name, envelope, mail)
    sender = mail.sender
    if sender is None and envelope.mail_from:
        sender = Address(envelope.mail_from.lower())
    result = Plan(mail, verdict, box, sender)
    result.trace.append(f"class {verdict.kind} ({verdict.reason})")
    if verdict.kind == "loop":
        result.reason = f"mail from this gateway ({verdict.reason})"
        result.trace.append("recorded and ignored")
        return result
    if verdict.kind == "bounce":
        result.found = _bounce_target(mail, config)
        result.trace.extend(result.found.trace)
        result.decision = "bounce" if result.found.ticket else "ignore"
        result.reason = (
            "delivery report for a mail of ours"
            if result.found.ticket
            else "delivery report about no mail of ours"
        )
        return result
    if sender is None:
        result.decision = "quarantine"
        result.reason = "no sender address (no From header and no envelope sender)"
        return result
    found = tickets.find_ticket(mail, config, envelope.rcpt_tos)
    result.found = found
    result.trace.extend(found.trace)
    result.recipients = (*envelope.rcpt_tos, *(a.email for a in mail.recipients))
    role = tickets.sender_role(found.ticket, sender.email, config)
    result.role = role
    if role == "agent" and found.ticket is not None:
        # Every class: a forged "agent" mail must not slip in by looking like list mail.
        identity = agents.identify(
            ctx,
            mail,
            found.ticket,
            result.recipients,
            envelope.authenticated_as,
            via_mta=envelope.via_mta,
        )
        result.identity = identity
        if identity is not None and identity.verified and verdict.kind == "person":
            result.trace.append(f"sender is agent {identity.agent.key}: authentic ({identity.how})")
            result.request = agents.read_mail(ctx, found.ticket, identity, mail, result.recipients)
        elif identity is not None and identity.verified:
            result.trace.append(
                f"sender is agent {identity.agent.key}: authentic, but a "
                f"{verdict.kind.replace('_', '-')}: no commands read"
            )
        elif identity is not None:
            result.trace.append(
                f"sender claims to be agent {identity.agent.key} but is unverified ({identity.how})"
                " → stored as an external message, nothing relayed, no command run"
            )
    elif found.ticket is None:
        result.trace.append(
            f"sender {sender.email} {'is an agent' if role == 'agent' else 'becomes the requester'}"
        )
    elif role == "unknown":
        result.trace.append(f"sender {sender.email} is not on the ticket")
    else:
        result.trace.append(f"sender is {'the' if role == 'requester' else 'a'} {role}")
    if found.ticket is None and verdict.kind in ("auto_reply", "bulk"):
        result.reason = f"{verdict.kind.replace('_', '-')} about no ticket of ours"
        result.trace.append("recorded and ignored")
        return result
    if verdict.kind == "bulk":
        result.decision, result.reason = "append", "list mail on a known ticket, appended quietly"
        result.trace.append(result.reason)
        return result
    decision, why = tickets.decide(found.ticket, role, verdict.kind, config, m.utcnow())
    result.decision, result.reason = decision, why
    result.trace.append(why)
    if decision in ("create", "follow_up"):
        result.routed = routing.route(config, box, mail, result.recipients)
        result.trace.append(result.routed.describe())
    return result


def _mailbox(ctx: Context, name: str, envelope: Envelope, mail: ParsedMail) -> Mailbox:
    config = ctx.config
    if name:
        return config.mailbox(name)
    candidates = [
        *envelope.rcpt_tos,
        *(a.email for a in mail.recipients),
        *mail.headers.get("delivered-to", ()),
        *mail.headers.get("x-original-to", ()),
    ]
    return config.mailbox_for(candidates) or config.mailboxes[0]


def _bounce_target(mail: ParsedMail, config: Any) -> tickets.Found:
    report = mail.report
    ids = [report.original_message_id] if report and report.original_message_id else []
    ids += [*mail.in_reply_to, *reversed(mail.references)]
    trace: list[str] = []
    for message_id in ids:
        ticket_id = sql.value(
            "SELECT ticket_id FROM message WHERE message_id = ? AND direction = 'out'", message_id
        )
        if ticket_id is not None:
            ticket = tickets.by_id(int(ticket_id))
            trace.append(
                f"report is about our {message_id} of {tickets.tag(config, ticket.number)}"
            )
            return tickets.Found(ticket, "bounce", tuple(trace), message_id)
    trace.append("the report names no message we sent")
    return tickets.Found(None, "bounce", tuple(trace))


# --- applying -----------------------------------------------------------------------------


def _apply(ctx: Context, receipt: m.Receipt, mail: ParsedMail, envelope: Envelope) -> Outcome:
    config = ctx.config
    # Another process may have finished this mail meanwhile (the same mail delivered to
    # two gateway processes at once): the row lock makes the second one see it.
    lock = "" if m.is_sqlite() else " FOR UPDATE"
    if sql.value(f"SELECT status FROM receipt WHERE id = ?{lock}", receipt.id) != "received":
        return Outcome("duplicate", receipt.message_id, reason="processed by another process")
    p = plan(ctx, mail, envelope, receipt.mailbox)
    changes = tickets.Changes()
    action, ticket = "ignored", None
    if p.decision == "quarantine":
        raise _Quarantine(p.reason)
    locked: m.Ticket | None = None
    if p.decision in ("append", "reopen", "follow_up") and p.found and p.found.ticket:
        # The plan read the ticket unlocked; another process may have changed it since
        # (reopened it, merged it). Decide again on the locked, current row.
        locked = tickets.lock_final(p.found.ticket)
        if p.verdict.kind != "bulk":
            decision, why = tickets.decide(locked, p.role, p.verdict.kind, config, m.utcnow())
            if decision != p.decision or locked.id != p.found.ticket.id:
                p.trace.append(f"decided again on the current ticket: {why}")
                p.decision, p.reason = decision, why
    if p.decision == "bounce" and p.found is not None and p.found.ticket is not None:
        ticket = tickets.lock(p.found.ticket)
        message = _store_message(ctx, ticket, receipt, p, kind="bounce", text=mail.text)
        notify.record_bounce(ctx, ticket, mail, message, changes, p.found.message_id)
        action = "bounce"
    elif p.decision == "create":
        assert p.sender is not None
        actor = _actor(p)
        ticket = _new_ticket(ctx, p, changes, actor)
        kind = tickets.message_kind("requester", p.verdict.kind)
        message = _store_message(ctx, ticket, receipt, p, kind=kind, text=mail.text, touch=False)
        changes.add(tickets.Change(ticket, "message", actor, new="customer", message=message))
        action = "created"
    elif p.decision == "follow_up":
        assert p.sender is not None and locked is not None
        actor = _actor(p)
        old = locked
        # Only someone on the old ticket continues it (its subject and team); a stranger
        # naming its tag must not learn its subject from our acknowledgement.
        continues = old if p.role in ("requester", "collaborator") else None
        ticket = _new_ticket(ctx, p, changes, actor, follow_up_of=continues)
        tickets.link(ticket, old, changes, actor=actor)
        message = _store_message(
            ctx, ticket, receipt, p, kind="customer", text=_visible(mail), touch=False
        )
        changes.add(tickets.Change(ticket, "message", actor, new="customer", message=message))
        action = "created"
    elif p.decision in ("append", "reopen"):
        assert locked is not None
        actor = _actor(p)
        ticket = locked
        if p.identity is not None and p.request is not None:
            kind = agents.message_kind(p.request)
            message = _store_message(
                ctx, ticket, receipt, p, kind=kind, text=p.request.text, verified=True
            )
            changes.add(tickets.Change(ticket, "message", actor, new=kind, message=message))
            agents.handle_mail(ctx, ticket, p.identity, p.request, message, changes, p.trace)
            sql.run("UPDATE message SET trace = ? WHERE id = ?", sql.js(p.trace), message.id)
            kind = "agent"
        elif p.identity is not None and not p.identity.verified:
            kind = "external"
            message = _store_message(ctx, ticket, receipt, p, kind=kind, text=_visible(mail))
            changes.add(tickets.Change(ticket, "message", actor, new=kind, message=message))
            changes.add(
                tickets.Change(
                    ticket, "unverified_agent_mail", actor, message=message, detail=p.identity.how
                )
            )
        else:
            kind = tickets.message_kind(p.role, p.verdict.kind)
            message = _store_message(ctx, ticket, receipt, p, kind=kind, text=_visible(mail))
            changes.add(tickets.Change(ticket, "message", actor, new=kind, message=message))
        if p.decision == "reopen":
            tickets.reopen(ticket, changes, actor=actor, message=message)
            action = "reopened"
        else:
            action = "appended"
            if kind == "customer" and ticket.status == "pending":
                tickets.set_status(ticket, "open", changes, actor=actor)
        if kind == "customer" and p.verdict.kind == "person":
            tickets.add_collaborators(ticket, mail.recipients, config, changes, actor=actor)
    notify.queue(ctx, changes.items, mail=mail, verdict=p.verdict)
    changes.flush()
    sql.run(
        "UPDATE receipt SET status = 'processed', action = ?, reason = ?, ticket_id = ?,"
        " processed_at = ?, mailbox = ? WHERE id = ?",
        action,
        p.reason if action == "ignored" else "",
        ticket.id if ticket is not None else None,
        sql.ts(m.utcnow()),
        p.mailbox.name,
        receipt.id,
    )
    number = ticket.number if ticket is not None else None
    return Outcome(
        action,
        receipt.message_id,
        ticket=number,
        tag=tickets.tag(config, number) if number else None,
        reason=p.reason,
        trace=tuple(p.trace),
    )


class _Quarantine(Exception):
    """Raised inside the transaction to roll it back and quarantine with a reason."""


def _actor(p: Plan) -> str:
    assert p.sender is not None
    if p.identity is not None and p.identity.verified:
        return p.identity.actor
    if p.identity is not None:
        return f"unverified:{p.sender.email}"
    if p.role == "agent":
        return f"agent:{p.sender.email}"
    return f"customer:{p.sender.email}"


def _new_ticket(
    ctx: Context,
    p: Plan,
    changes: tickets.Changes,
    actor: str,
    follow_up_of: m.Ticket | None = None,
) -> m.Ticket:
    """Create the ticket where routing sends it; Cc'd people join; the team may auto-assign.

    A follow-up keeps the subject and team of the ticket it continues: the customer
    answered our notice, whose subject ("Resolved: …") is no name for a ticket.
    """
    assert p.sender is not None
    config = ctx.config
    routed = p.routed or routing.route(config, p.mailbox, p.mail, p.recipients)
    team_key, subject = routed.team, None
    if follow_up_of is not None:
        subject = follow_up_of.subject
        if follow_up_of.team is not None:
            team_key = follow_up_of.team.key
    ticket = tickets.create_ticket(
        p.mail,
        p.mailbox,
        config,
        changes,
        actor=actor,
        requester=p.sender,
        team_key=team_key,
        priority=routed.priority,
        category=routed.category,
        tags=routed.tags,
        subject=subject,
    )
    tickets.add_collaborators(ticket, p.mail.recipients, config, changes, actor=actor)
    if routed.assignee:
        tickets.assign(
            ticket, routed.assignee, config, changes, actor=f"system:route:{routed.rule}"
        )
    elif team_key:
        agents.auto_assign(config, ticket, team_key, changes)
    return ticket


def _visible(mail: ParsedMail) -> str:
    return quotes.visible_text(mail.text)


def _store_message(
    ctx: Context,
    ticket: m.Ticket,
    receipt: m.Receipt,
    p: Plan,
    *,
    kind: str,
    text: str,
    touch: bool = True,
    verified: bool = False,
) -> m.Message:
    mail = p.mail
    message = tickets.add_message(
        ticket,
        direction="in",
        kind=kind,
        message_id=receipt.message_id,
        sender=p.sender,
        to=[str(a) for a in mail.to],
        cc=[str(a) for a in mail.cc],
        subject=mail.subject,
        date=mail.date,
        text=text,
        full_text=mail.text,
        html=html_text.sanitize_html(mail.html) if mail.html else "",
        raw_sha256=mail.sha256,
        trace=p.trace,
        receipt=receipt,
        touch=touch,
        verified=verified,
    )
    sql.insert_many(
        "attachment",
        ("message_id", "sha256", "size", "content_type", "filename", "content_id", "inline"),
        [
            (
                message.id,
                a.sha256,
                a.size,
                a.content_type[:200],
                a.filename[:255],
                a.content_id,
                a.inline,
            )
            for a in mail.attachments
        ],
    )
    return message


# --- dry run, quarantine and recovery -----------------------------------------------------


def explain(
    ctx: Context, raw: bytes, *, mailbox: str | None = None, envelope: Envelope | None = None
) -> dict[str, Any]:
    """What ``ingest`` would do with ``raw``, as one JSON-able object; writes nothing."""
    envelope = envelope or Envelope()
    sha256 = hashlib.sha256(raw).hexdigest()
    message_id, _sender = _peek(raw, sha256)
    existing = m.Receipt.get_or_none(m.Receipt.message_id == message_id)
    try:
        mail = parse(raw, HashSink(), sha256=sha256)
    except Unparseable as exc:
        return {
            "action": "quarantined",
            "reason": str(exc),
            "message_id": message_id,
            "trace": [f"cannot be parsed: {exc}"],
        }
    p = plan(ctx, mail, envelope, mailbox or "")
    if p.request is not None:
        p.trace.extend(agents.describe(p.request))
    if existing is not None and existing.status != "received":
        p.trace.insert(0, f"already received {existing.received_at:%Y-%m-%d %H:%M} → duplicate")
    report = mail.report
    visible = _visible(mail) if p.decision in ("append", "reopen", "follow_up") else mail.text
    return {
        "action": _would(p, existing),
        "from": p.sender.email if p.sender else None,
        "from_name": p.sender.name if p.sender else "",
        "to": [a.email for a in mail.to],
        "cc": [a.email for a in mail.cc],
        "subject": mail.subject,
        "message_id": mail.message_id,
        "class": p.verdict.kind,
        "answerable": p.verdict.answerable,
        "mailbox": p.mailbox.name,
        "failed_recipients": [
            {
                "address": r.address,
                "status": r.status,
                "action": r.action,
                "diagnostic": r.diagnostic,
                "permanent": r.permanent,
            }
            for r in (report.recipients if report else ())
            if r.action not in ("delivered", "relayed", "expanded")
        ],
        "text": visible,
        "full_text": mail.text,
        "attachments": [
            {
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
                "sha256": a.sha256,
                "inline": a.inline,
            }
            for a in mail.attachments
        ],
        "thread": {
            "ticket": p.found.ticket.number if p.found and p.found.ticket else None,
            "how": p.found.how if p.found else None,
            "decision": p.decision,
            "sender_role": p.role,
        },
        "reason": p.reason,
        "defects": list(mail.defects),
        "trace": p.trace,
    }


def _would(p: Plan, existing: m.Receipt | None) -> str:
    if existing is not None and existing.status != "received":
        return "duplicate"
    return {
        "create": "created",
        "follow_up": "created",
        "append": "appended",
        "reopen": "reopened",
        "bounce": "bounce",
        "quarantine": "quarantined",
    }.get(p.decision, "ignored")


def retry(ctx: Context, receipt_id: int) -> Outcome:
    """Process a quarantined mail again (after a fix), from its stored raw bytes."""
    receipt = m.Receipt.get_or_none(m.Receipt.id == receipt_id)
    if receipt is None:
        raise UsageError(f"no received mail with id {receipt_id}")
    if receipt.status != "quarantined":
        raise UsageError(f"mail {receipt_id} is not quarantined (it is {receipt.status})")
    raw = ctx.blobs.get(receipt.sha256)
    with m.write_transaction():
        m.Receipt.update(status="received", attempts=1, reason="").where(
            m.Receipt.id == receipt.id
        ).execute()
    receipt = m.Receipt.get_by_id(receipt.id)
    return process(ctx, receipt, raw, Envelope.from_json(receipt.envelope))


def recover(ctx: Context) -> list[Outcome]:
    """Finish mails whose processing was interrupted (crash, database outage).

    Only receipts whose lease ran out are taken, each with a conditional update, so
    several gateway processes running this at once never process one mail twice.
    """
    now = m.utcnow()
    pending = [
        int(r[0])
        for r in sql.rows(
            "SELECT id FROM receipt WHERE status = 'received'"
            " AND (lease_until IS NULL OR lease_until < ?) ORDER BY id LIMIT 500",
            sql.ts(now),
        )
    ]
    outcomes = []
    for receipt_id in pending:
        receipt = m.Receipt.get_or_none(m.Receipt.id == receipt_id)
        if receipt is None:
            continue
        with m.write_transaction():
            claimed = _claim(receipt, m.utcnow())
        if not claimed:
            continue
        if receipt.status == "quarantined":
            outcomes.append(Outcome("quarantined", receipt.message_id, reason=receipt.reason))
            continue
        try:
            raw = ctx.blobs.get(receipt.sha256)
        except OSError as exc:
            outcomes.append(quarantine(receipt, f"raw mail missing from the blob store: {exc}"))
            continue
        outcomes.append(process(ctx, receipt, raw, Envelope.from_json(receipt.envelope)))
    return outcomes
