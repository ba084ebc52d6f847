"""Step 2b: carry a plan out — in ONE transaction, with its events and notices.

Parse, plan (``plan.py``), then within one transaction: store the message and
its attachments, change the ticket through the lifecycle, let the agent verbs
run an agent's mail, and end with ``reactions.finish`` (notices queued, events
written) and the receipt marked processed. An unexpected error rolls it all back
and quarantines the mail with the reason; a database that is unavailable raises
``TemporaryFailure`` so the transport can answer "later".
"""

from __future__ import annotations

import datetime as dt
import logging
import re

from mailgate import agents, csat, lifecycle, notices, onbehalf, reactions, routing
from mailgate.attachments import size_text
from mailgate.config import Config
from mailgate.context import Context
from mailgate.envelope import Envelope, Outcome
from mailgate.errors import TemporaryFailure
from mailgate.events import Event, Journal
from mailgate.intake import cc, order, receipts
from mailgate.intake.find import tag
from mailgate.intake.plan import Plan, message_kind, parse_limits, plan
from mailgate.mail import html as html_text
from mailgate.mail import quotes
from mailgate.mail import subject as subjects
from mailgate.mail.fingerprint import content_fingerprint
from mailgate.mail.htmlquote import cut_quoted
from mailgate.mail.parse import ParsedMail, Unparseable, parse
from mailgate.store import (
    TEMPORARY_PREFIX,
    IntegrityError,
    directory,
    people,
    write_transaction,
)
from mailgate.store import messages as message_rows
from mailgate.store import receipts as receipt_rows
from mailgate.store import suspended as suspended_rows
from mailgate.store import tickets as ticket_rows
from mailgate.store.db import utcnow
from mailgate.store.rows import MessageRow, ReceiptRow, TicketRow

log = logging.getLogger("mailgate.ingest")


def process(ctx: Context, receipt: ReceiptRow, raw: bytes, envelope: Envelope) -> Outcome:
    """Step 2 for a stored receipt (also used by ``quarantine retry`` and crash recovery)."""
    if receipt.status == "quarantined":
        return Outcome("quarantined", receipt.message_id, reason=receipt.reason)
    try:
        mail = parse(raw, ctx.blobs, sha256=receipt.sha256, limits=parse_limits(ctx.config))
    except Unparseable as exc:
        return receipts.quarantine(receipt, str(exc))
    except TemporaryFailure:
        receipts.release(receipt, temporary=True)
        raise
    except Exception as exc:
        log.exception("parser failed", extra={"mailgate_fields": {"receipt": receipt.id}})
        return receipts.quarantine(receipt, f"parser error: {type(exc).__name__}: {exc}")
    parents = order.parents(receipt, mail)  # one result with several processes
    attempt = 0
    while True:
        try:
            # No wait for the server's fsync (PostgreSQL): a server crash that takes this back
            # leaves the receipt received and leased, for the recovery to redo (store.db).
            with write_transaction(durable=False):
                outcome = _apply(ctx, receipt, mail, envelope, parents)
                order.finished(receipt.message_id)  # let go with the COMMIT
                return outcome
        except order.ParentsInFlight as exc:  # rolled back: wait for them, then again
            parents = []  # once: what one process would have done by now
            try:
                order.wait_for(ctx.config, receipt, exc.pending)
            except TemporaryFailure:
                receipts.release(receipt)
                raise
            continue
        except _Quarantine as exc:
            return receipts.quarantine(receipt, str(exc))
        except IntegrityError as exc:
            # Another process created the same contact or ticket number a moment ago.
            if attempt == 2:
                # Temporary: the recovery job processes it again (receipts.retry_temporary).
                return receipts.quarantine(receipt, f"{TEMPORARY_PREFIX}database conflict: {exc}")
        except TemporaryFailure as exc:
            # Two processes locked the same tickets in opposite order: PostgreSQL aborted
            # one transaction; doing it again sees what the other one did.
            if attempt == 2 or not _RETRIED.search(str(exc)):
                receipts.release(receipt, temporary=True)
                raise
        except Exception as exc:
            log.exception("processing failed", extra={"mailgate_fields": {"receipt": receipt.id}})
            return receipts.quarantine(receipt, f"processing error: {type(exc).__name__}: {exc}")
        attempt += 1


_RETRIED = re.compile("deadlock detected|could not serialize", re.I)


class _Quarantine(Exception):
    """Raised inside the transaction to roll it back and quarantine with a reason."""


def _apply(
    ctx: Context, receipt: ReceiptRow, mail: ParsedMail, envelope: Envelope, parents: list[str]
) -> Outcome:
    config = ctx.config
    # Another process may have finished this mail meanwhile (the same mail delivered to
    # two gateway processes at once): the row lock makes the second one see it.
    fingerprint = content_fingerprint(mail)
    status, said_before, pending = receipt_rows.status_locked(receipt.id, fingerprint, parents)
    if status != "received":
        return Outcome("duplicate", receipt.message_id, reason="processed by another process")
    if pending:  # a mail it refers to is still being processed elsewhere (intake/order.py)
        raise order.ParentsInFlight(pending)
    earlier = _same_content(config, receipt, fingerprint) if said_before else None
    if earlier is not None:
        return earlier
    # Released from the suspended queue by an admin: processed as if it had just arrived.
    p = plan(ctx, mail, envelope, receipt.mailbox, spam_check=receipt.action != "released")
    journal = Journal()
    trace = list(p.trace)
    decision, reason = p.decision, p.reason
    action, ticket = "ignored", None
    message: MessageRow | None = None
    if decision == "quarantine":
        raise _Quarantine(reason)
    if decision == "suspend" and p.sender is not None and p.suspicion is not None:
        # No ticket, no notice (no backscatter to a forged sender): kept for an admin.
        suspended_rows.suspend(
            receipt.id, sender=p.sender.email, subject=mail.subject, reason=reason,
            score=p.suspicion.score, received_at=receipt.received_at,
        )  # fmt: skip
        return Outcome("suspended", receipt.message_id, reason=reason, trace=tuple(trace))
    if decision == "queue" and p.identity is not None:
        # An agent asked for their tickets: answered, nothing else happens.
        if p.mailbox.notices.queue:
            notices.send_queue(ctx, p.identity.agent, p.mailbox.name, receipt.message_id)
        receipt_rows.finish(
            receipt.id, action="queue", reason=reason, ticket_id=None, mailbox=p.mailbox.name
        )
        return Outcome("queue", receipt.message_id, reason=reason, trace=tuple(trace))
    locked: TicketRow | None = None
    if decision in ("append", "reopen", "follow_up") and p.found and p.found.ticket:
        # The plan read the ticket unlocked; another process may have changed it since
        # (reopened it, merged it). Decide again on the locked, current row.
        locked = ticket_rows.lock_final(p.found.ticket)
        if p.verdict.kind != "bulk":
            again, why = lifecycle.decide(locked, p.role, p.verdict.kind, config, utcnow())
            if again != decision or locked.id != p.found.ticket.id:
                trace.append(f"decided again on the current ticket: {why}")
                decision, reason = again, why
    if decision == "bounce" and p.found is not None and p.found.ticket is not None:
        ticket = ticket_rows.lock(p.found.ticket.id)
        message = _store_message(ticket, receipt, p, trace, kind="bounce", text=mail.text)
        notices.record_bounce(ctx, ticket, mail, message, journal, p.found.message_id)
        action = "bounce"
    elif decision == "list_alert" and p.found is not None and p.found.ticket is not None:
        ticket = ticket_rows.lock(p.found.ticket.id)
        message = _store_message(ticket, receipt, p, trace, kind="auto_reply", text=mail.text)
        report = mail.report
        detail = f"{p.verdict.reason} (about {p.found.message_id})"
        if report is not None and report.reporting_mta:
            detail += f" from {report.reporting_mta}"
        if report is not None and report.recipients:  # the list, never marked undeliverable
            detail += " for " + ", ".join(r.address for r in report.recipients)
        journal.add(Event(ticket, "list_alert", "system", message=message, detail=detail))
        action = "list_alert"
    elif decision in ("rate", "rating_rejected") and p.found and p.found.ticket and p.rating:
        ticket = ticket_rows.lock(p.found.ticket.id)
        comment = _visible(p)
        kind = "rating" if decision == "rate" else "external"
        message = _store_message(ticket, receipt, p, trace, kind=kind, text=comment, touch=False)
        action = csat.record(ticket, p.rating, message, comment, journal, actor=_actor(p))
    elif decision == "create" and p.behalf is not None:
        # An agent's forward (or #requester): the ticket is the customer's.
        actor = p.behalf.identity.actor
        ticket = _new_ticket(ctx, p, journal, actor)
        onbehalf.open_first_messages(
            ctx, ticket, p.behalf, mail, journal,
            message_id=receipt.message_id, receipt_id=receipt.id, trace=trace,
        )  # fmt: skip
        action = "created"
    elif decision == "create":
        actor = _actor(p)
        ticket = _new_ticket(ctx, p, journal, actor, at=_imported_at(receipt, mail))
        kind = message_kind("requester", p.verdict.kind)
        message = _store_message(ticket, receipt, p, trace, kind=kind, text=mail.text, touch=False)
        journal.add(Event(ticket, "message", actor, new="customer", message=message))
        action = "created"
    elif decision == "follow_up":
        assert locked is not None
        actor = _actor(p)
        # Only someone on the old ticket continues it (its subject and team); a stranger
        # naming its tag must not learn its subject from our acknowledgement.
        continues = locked if p.role in ("requester", "collaborator") else None
        ticket = _new_ticket(ctx, p, journal, actor, follow_up_of=continues)
        lifecycle.follow_up(ticket, locked, journal, actor=actor)
        message = _store_message(
            ticket, receipt, p, trace, kind="customer", text=_visible(p), touch=False
        )
        journal.add(Event(ticket, "message", actor, new="customer", message=message))
        action = "created"
    elif decision in ("append", "reopen"):
        assert locked is not None
        actor = _actor(p)
        ticket = locked
        if p.identity is not None and p.request is not None:
            kind = agents.message_kind(p.request)
            # A rejected mail stays on the ticket as a note; with no text of its own, what
            # was received is that note (the agent is told and may want it back).
            text = p.request.text or (mail.text.strip() if p.request.problems else "")
            message = _store_message(ticket, receipt, p, trace, kind=kind, text=text, verified=True)
            journal.add(Event(ticket, "message", actor, new=kind, message=message))
            ticket = agents.handle_mail(ctx, ticket, p.identity, p.request, message, journal, trace)
            message_rows.set_trace(message.id, trace)
            kind = "agent"
        elif p.identity is not None and not p.identity.verified:
            kind = "external"
            message = _store_message(ticket, receipt, p, trace, kind=kind, text=_visible(p))
            journal.add(Event(ticket, "message", actor, new=kind, message=message))
            journal.add(
                Event(
                    ticket, "unverified_agent_mail", actor, message=message, detail=p.identity.how
                )
            )
        else:
            kind = message_kind(p.role, p.verdict.kind)
            if kind == "customer" and p.sender is not None and p.sender.name:
                people.keep_name(p.sender.email, p.sender.name)  # a participant's, on file
            message = _store_message(ticket, receipt, p, trace, kind=kind, text=_visible(p))
            journal.add(Event(ticket, "message", actor, new=kind, message=message))
        if decision == "reopen":
            ticket = lifecycle.reopen(ticket, journal, actor=actor, message=message)
            action = "reopened"
        else:
            action = "appended"
            if kind == "customer" and ticket.status == "pending":
                ticket = lifecycle.change(
                    ticket, journal, config, actor=actor, status="open"
                ).ticket
        if p.suspicion is not None:
            journal.add(
                Event(ticket, "spam_flagged", "system", message=message, detail=p.suspicion.reason)
            )
        if kind == "customer" and p.verdict.kind == "person":
            _reply_cc(ctx, p, ticket, message, envelope, journal, trace, actor)
    if ticket is not None and message is not None:
        _dropped_files(p, ticket, message, journal)
    # History being imported (`mailgate import`): recorded, never announced.
    reactions.finish(ctx, journal, mail=mail, verdict=p.verdict, quiet=receipt.source == "import")
    receipt_rows.finish(
        receipt.id,
        action=action,
        reason=reason if action == "ignored" else "",
        ticket_id=ticket.id if ticket is not None else None,
        mailbox=p.mailbox.name,
    )
    number = ticket.number if ticket is not None else None
    return Outcome(
        action,
        receipt.message_id,
        ticket=number,
        tag=tag(config, number) if number else None,
        reason=reason,
        trace=tuple(trace),
    )


def _reply_cc(
    ctx: Context,
    p: Plan,
    ticket: TicketRow,
    message: MessageRow,
    envelope: Envelope,
    journal: Journal,
    trace: list[str],
    actor: str,
) -> None:
    """A reply's new Cc join only when the reply is authentic for the requester (``cc.py``)."""
    joining = lifecycle.newcomers(ticket, p.mail.recipients, ctx.config)
    if not joining:
        return
    requester = people.by_id(ticket.requester_id)
    how = cc.authentic_for_requester(
        ctx,
        p.mail,
        ticket,
        requester.email if requester else "",
        p.recipients,
        via_mta=envelope.via_mta,
    )
    if how:
        trace.append(f"Cc may join: the reply is authentic for the requester ({how})")
        left_out = lifecycle.add_collaborators(ticket, joining, ctx.config, journal, actor=actor)
        trace.extend(f"Cc not added: {a} (lifecycle.max_collaborators)" for a in left_out[:20])
    else:
        for address in joining[:MAX_CC_NOTED]:
            email = address.email.lower()
            trace.append(f"Cc not added: {email} (the reply is not authentic for the requester)")
            journal.add(Event(ticket, "cc_not_added", actor, new=email, message=message))
        if len(joining) > MAX_CC_NOTED:
            trace.append(f"Cc not added: {len(joining) - MAX_CC_NOTED} more")
    message_rows.set_trace(message.id, trace)


# How many refused Cc one reply names one by one (trace, events, the assignee's notice).
MAX_CC_NOTED = 20


def _same_content(config: Config, receipt: ReceiptRow, fingerprint: str) -> Outcome | None:
    """The same mail came before, re-encoded in transit (other bytes, other Message-ID
    key): a duplicate of it. (The mail's content fingerprint was written with the lock,
    ``status_locked``, and is kept for later ones.)"""
    if not fingerprint:
        return None
    found = receipt_rows.same_content(fingerprint, receipt.id)
    if found is None:
        return None
    ticket_id, received_at = found
    number = ticket_rows.number_of(ticket_id)
    reason = (
        f"already received {received_at:%Y-%m-%d %H:%M:%S} UTC"
        " (the same From, Subject, Date and text, encoded otherwise)"
    )
    receipt_rows.finish(
        receipt.id, action="duplicate", reason=reason, ticket_id=ticket_id, mailbox=receipt.mailbox
    )
    return Outcome(
        "duplicate",
        receipt.message_id,
        ticket=number,
        tag=tag(config, number) if number else None,
        reason=reason,
    )


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
    journal: Journal,
    actor: str,
    follow_up_of: TicketRow | None = None,
    at: dt.datetime | None = None,
) -> TicketRow:
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
        earlier_team = directory.team_by_id(follow_up_of.team_id)
        if earlier_team is not None:
            team_key = earlier_team.key
    prefix = config.gateway.ticket_prefix
    requester = p.behalf.requester if p.behalf is not None else p.sender
    if p.behalf is not None and p.behalf.forward is not None and p.behalf.forward.subject:
        subject = subject or subjects.clean_subject(p.behalf.forward.subject, prefix)
    ticket = lifecycle.create(
        journal,
        config,
        actor=actor,
        mailbox=p.mailbox,
        requester=people.contact(requester.email, requester.name, refresh=True),
        subject=subject or subjects.clean_subject(p.mail.subject, prefix),
        team=team_key,
        priority=routed.priority,
        category=routed.category,
        tags=routed.tags,
        foreign_tags=tuple(subjects.foreign_tags(p.mail.subject, prefix)),
        at=at,
        urgency=routed.urgency,
        impact=routed.impact,
    )
    lifecycle.add_collaborators(ticket, p.mail.recipients, config, journal, actor=actor)
    if routed.assignee:
        return lifecycle.change(
            ticket, journal, config, actor=f"system:route:{routed.rule}", assignee=routed.assignee
        ).ticket
    if team_key:
        return routing.auto_assign(config, ticket, team_key, journal)
    return ticket


def _imported_at(receipt: ReceiptRow, mail: ParsedMail) -> dt.datetime | None:
    """An imported mail's ticket was opened at the mail's Date (naive UTC), not now."""
    if receipt.source != "import" or mail.date is None:
        return None
    when = mail.date
    return when.astimezone(dt.UTC).replace(tzinfo=None) if when.tzinfo else when


def _visible(p: Plan) -> str:
    return quotes.visible_text(p.mail.text, known=p.known)


def _store_message(
    ticket: TicketRow,
    receipt: ReceiptRow,
    p: Plan,
    trace: list[str],
    *,
    kind: str,
    text: str,
    touch: bool = True,
    verified: bool = False,
) -> MessageRow:
    mail = p.mail
    message = message_rows.add(
        ticket.id,
        direction="in",
        kind=kind,
        message_id=receipt.message_id,
        from_addr=p.sender.email if p.sender else "",
        from_name=p.sender.name if p.sender else "",
        from_raw=mail.from_raw,
        to=[str(a) for a in mail.to],
        cc=[str(a) for a in mail.cc],
        subject=mail.subject,
        date=mail.date,
        text=text,
        full_text=mail.text,
        # An agent's command lines (#priority high) are cut from the text only: the HTML
        # of such a mail would show them to the customer, so it keeps its text alone.
        html=""
        if p.request is not None and p.request.block.commands
        else _stored_html(
            mail.html,
            cut=bool(mail.in_reply_to or mail.references) and text.strip() != mail.text.strip(),
        ),
        raw_sha256=mail.sha256,
        trace=trace,
        receipt_id=receipt.id,
        touch=touch,
        verified=verified,
    )
    message_rows.add_attachments(
        message.id,
        [
            (
                a.sha256,
                a.size,
                a.content_type[:200],
                a.filename[:255],
                a.content_id,
                a.inline,
                a.original_filename,
                a.size <= p.mailbox.max_attachment_size,
            )
            for a in mail.attachments
        ],
    )
    return message


def _stored_html(html: str, *, cut: bool) -> str:
    """The sanitised HTML of a mail; without its quoted history when the text lost its
    quotes too (a reply: relayed as HTML, it must not repeat the thread)."""
    if not html:
        return ""
    return html_text.sanitize_html(cut_quoted(html) if cut else html)


def _dropped_files(p: Plan, ticket: TicketRow, message: MessageRow, journal: Journal) -> None:
    """An ``attachment_dropped`` event per file over the mailbox's max_attachment_size:
    the ticket shows it (kept: false) and its sender is told (attachment_refused)."""
    limit = p.mailbox.max_attachment_size
    for a in p.mail.attachments:
        if a.size > limit:
            journal.add(
                Event(
                    ticket,
                    "attachment_dropped",
                    f"mail:{message.from_addr}",
                    new=a.filename,
                    message=message,
                    detail=f"{a.filename} ({size_text(a.size)}): over the limit of"
                    f" {size_text(limit)} for one file",
                )
            )
