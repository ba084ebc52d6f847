"""Step 2a: decide what a parsed mail does — classify, find the ticket, who wrote, what follows.

Pure reads: the plan is a value, and ``mailgate explain`` runs exactly this code
to show what ingest would do and why (the decision trace). ``apply.py`` carries a
plan out in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from mailgate import agents, csat, lifecycle, onbehalf, routing, suspended
from mailgate.config import Config, Mailbox, base_address
from mailgate.context import Context
from mailgate.envelope import Envelope
from mailgate.intake.find import Found, bounce_target, find_ticket
from mailgate.lifecycle import Role
from mailgate.mail import classify as classifier
from mailgate.mail.parse import Address, ParsedMail, ParseLimits
from mailgate.store import messages, people
from mailgate.store.db import utcnow
from mailgate.store.rows import TicketRow


@dataclass(frozen=True)
class Plan:
    """What processing a mail will do; ``explain`` prints it, ``apply`` carries it out."""

    mail: ParsedMail
    verdict: classifier.Verdict
    mailbox: Mailbox
    sender: Address | None
    found: Found | None = None
    role: Role = "unknown"
    decision: str = "ignore"  # create append reopen follow_up bounce list_alert quarantine ignore
    reason: str = ""
    trace: tuple[str, ...] = ()
    identity: agents.Identity | None = None
    request: agents.AgentMail | None = None
    routed: routing.Routed | None = None
    recipients: tuple[str, ...] = ()
    # The texts of our mails on the found ticket this one may quote (quote hints).
    known: tuple[str, ...] = ()
    rating: Any = None  # csat.RatingMail: a mail to a rating address of ours
    behalf: onbehalf.Behalf | None = None  # an agent's mail opening a ticket for a customer
    suspicion: suspended.Suspicion | None = None  # spam a participant's reply is flagged with


def parse_limits(config: Config) -> ParseLimits:
    """How much of a mail's structure is read (``gateway.max_mime_*``, ``max_header_count``)."""
    gateway = config.gateway
    return ParseLimits(
        max_depth=gateway.max_mime_depth,
        max_parts=gateway.max_mime_parts,
        max_headers=gateway.max_header_count,
    )


def plan(
    ctx: Context,
    mail: ParsedMail,
    envelope: Envelope,
    mailbox_name: str = "",
    *,
    spam_check: bool = True,
) -> Plan:
    """Classify and thread a parsed mail. Reads the database, writes nothing.

    ``spam_check=False``: an admin released the mail from the suspended queue.
    """
    config = ctx.config
    verdict = classifier.classify(
        mail, own_addresses=config.own_addresses, loop_token=ctx.loop_token
    )
    box = _mailbox(config, mailbox_name, envelope, mail)
    sender, who = requester_fallback(mail, envelope, config)
    sender, form = onbehalf.form_requester(mail, sender, box, config)
    trace = [f"class {verdict.kind} ({verdict.reason})"]
    trace.extend(f"repaired: {what}" for what in mail.repairs)
    trace.extend(line for line in (who, form) if line)
    if sender is not None and mail.sender is not None and sender != mail.sender:
        if verdict.kind == "person" and not verdict.answerable:
            # A person filled the form in: they may be answered, the form's address not.
            verdict = replace(verdict, answerable=True, reason=f"{verdict.reason}; web form")
    behalf: onbehalf.Behalf | None = None
    found: Found | None = None
    role: Role = "unknown"
    identity: agents.Identity | None = None
    request: agents.AgentMail | None = None
    recipients: tuple[str, ...] = ()
    known: tuple[str, ...] = ()

    flag: suspended.Suspicion | None = None

    def decided(decision: str, reason: str, routed: routing.Routed | None = None) -> Plan:
        return Plan(
            mail, verdict, box, sender, found, role, decision, reason, tuple(trace),
            identity, request, routed, recipients, known, suspicion=flag,
        )  # fmt: skip

    if verdict.kind == "loop":
        trace.append("recorded and ignored")
        return decided("ignore", f"mail from this gateway ({verdict.reason})")
    if verdict.kind == "bounce":
        found = bounce_target(mail, config)
        trace.extend(found.trace)
        if found.ticket:
            return decided("bounce", "delivery report for a mail of ours")
        return decided("ignore", "delivery report about no mail of ours")
    if verdict.kind == "list_alert":
        # A list held, rejected or looped our mail: never a ticket, never a reopen, and
        # nobody's address is bad — recorded on the ticket of the mail it is about.
        found = bounce_target(mail, config)
        trace.extend(found.trace)
        if found.ticket:
            return decided("list_alert", "a mailing list's alert about a mail of ours")
        return decided("ignore", "a mailing list's alert about no mail of ours")
    if sender is None:
        return decided(
            "quarantine",
            "no sender address (no usable From, Reply-To, Sender or envelope sender)",
        )
    rating = csat.find(ctx, [*envelope.rcpt_tos, *(a.email for a in mail.recipients)])
    if rating is not None and verdict.kind == "person":
        # A rating is never a reply: it neither reopens nor opens a ticket.
        trace.append(rating.describe())
        found = Found(rating.ticket, "rating-address", (rating.describe(),))
        if rating.ticket is None:
            return decided("ignore", "a rating address of no ticket of ours")
        decision = "rate" if rating.verified else "rating_rejected"
        return replace(decided(decision, rating.describe()), rating=rating)
    found = find_ticket(mail, config, envelope.rcpt_tos)
    trace.extend(found.trace)
    on_ticket: str | None = _UNREAD
    if found.ticket is not None:
        texts, on_ticket = messages.sent_texts(
            found.ticket.id, [*mail.in_reply_to, *mail.references], sender=sender.email.lower()
        )
        known = tuple(texts)
    recipients = (*envelope.rcpt_tos, *(a.email for a in mail.recipients))
    role = sender_role(found.ticket, sender.email, config, on_ticket)
    suspicion = suspended.judge(config, mail, envelope, sender) if spam_check else None
    if suspicion is not None:
        flag = suspicion
        if found.ticket is not None and role != "unknown" and not suspicion.hard:
            trace.append(f"{suspicion.reason}: a {role}'s reply is appended and flagged")
        else:
            trace.append(f"suspended: {suspicion.reason}; no ticket, no notice")
            return decided("suspend", suspicion.reason)
    if role == "agent" and found.ticket is not None:
        # Every class: a forged "agent" mail must not slip in by looking like list mail.
        identity = agents.identify(
            ctx,
            mail,
            found.ticket,
            recipients,
            envelope.authenticated_as,
            via_mta=envelope.via_mta,
        )
        if identity is not None and identity.verified and verdict.kind == "person":
            trace.append(f"sender is agent {identity.agent.key}: authentic ({identity.how})")
            if agents.asks_for_queue(mail):
                trace.append("#queue: the agent gets the list of their tickets; nothing changes")
                return decided("queue", "#queue")
            request = agents.read_mail(ctx, found.ticket, identity, mail, recipients, known)
        elif identity is not None and identity.verified:
            trace.append(
                f"sender is agent {identity.agent.key}: authentic, but a "
                f"{verdict.kind.replace('_', '-')}: no commands read"
            )
        elif identity is not None:
            trace.append(
                f"sender claims to be agent {identity.agent.key} but is unverified ({identity.how})"
                " → stored as an external message, nothing relayed, no command run"
            )
    elif found.ticket is None:
        if role == "agent" and verdict.kind == "person" and agents.asks_for_queue(mail):
            identity = agents.identify(
                ctx, mail, None, recipients, envelope.authenticated_as, via_mta=envelope.via_mta
            )
            if identity is not None and identity.verified:
                trace.append(f"sender is agent {identity.agent.key}: authentic ({identity.how})")
                trace.append("#queue: the agent gets the list of their tickets; no ticket")
                return decided("queue", "#queue")
            identity = None
        if role == "agent" and verdict.kind == "person":
            behalf, lines = onbehalf.read(ctx, mail, envelope, recipients)
            trace.extend(lines)
        if behalf is None:
            becomes = "is an agent" if role == "agent" else "becomes the requester"
            trace.append(f"sender {sender.email} {becomes}")
    elif role == "unknown":
        trace.append(f"sender {sender.email} is not on the ticket")
    else:
        trace.append(f"sender is {'the' if role == 'requester' else 'a'} {role}")
    if found.ticket is None and verdict.kind in ("auto_reply", "bulk"):
        trace.append("recorded and ignored")
        return decided("ignore", f"{verdict.kind.replace('_', '-')} about no ticket of ours")
    if verdict.kind == "bulk":
        reason = "list mail on a known ticket, appended quietly"
        trace.append(reason)
        return decided("append", reason)
    decision, why = lifecycle.decide(found.ticket, role, verdict.kind, config, utcnow())
    trace.append(why)
    if decision in ("create", "follow_up"):
        routed = routing.route(config, box, mail, recipients)
        trace.append(routed.describe())
        return replace(decided(decision, why, routed), behalf=behalf)
    return decided(decision, why)


def requester_fallback(
    mail: ParsedMail, envelope: Envelope, config: Config
) -> tuple[Address | None, str]:
    """Who wrote a mail whose From has no usable address ("Support Team", "<>", none).

    Reply-To, then Sender, then the envelope sender (Return-Path for mail that came
    without an envelope, by IMAP), skipping our own addresses and agents' — nobody
    becomes an agent, nor makes us write to ourselves, by writing a header. The name is
    that header's display name, else From's; From as written stays on the message
    (``from_raw``). Returns the address and the trace line saying where it came from
    ('' when From was fine). One named step of its own: the web-form rule (From is a
    form sender, Reply-To names one person) is another.
    """
    if mail.sender is not None:
        return mail.sender, ""
    raw = f"From {mail.from_raw!r} has no usable address" if mail.from_raw else "no From header"
    candidates = [("Reply-To", a) for a in mail.reply_to[:1]]
    if mail.sender_header is not None:
        candidates.append(("Sender", mail.sender_header))
    if envelope.mail_from:
        candidates.append(("the envelope sender", Address(envelope.mail_from.lower())))
    elif mail.return_path:
        candidates.append(("Return-Path", Address(mail.return_path.lower())))
    for header, address in candidates:
        if base_address(address.email) in config.own_addresses:
            continue
        if config.agent_for(address.email) is not None:
            continue
        return (
            Address(address.email, address.name or mail.from_name),
            f"{raw}: requester from {header} {address.email}",
        )
    return None, raw


# ``sender_role``'s ``on_ticket`` when it was not read with the rest (no role is this).
_UNREAD = "(unread)"


def sender_role(
    ticket: TicketRow | None, address: str, config: Config, on_ticket: str | None = _UNREAD
) -> Role:
    """``on_ticket``: the address's role on ``ticket`` (``people.role_of``) if read already."""
    address = address.lower()
    if config.agent_for(address) is not None:
        return "agent"
    if ticket is None:
        return "unknown"
    role = people.role_of(ticket.id, address) if on_ticket == _UNREAD else on_ticket
    if role is None:
        return "unknown"
    return "requester" if role == "requester" else "collaborator"


def message_kind(role: Role, mail_class: str) -> str:
    if mail_class in ("auto_reply", "bounce"):
        return mail_class
    if role == "agent":
        return "agent"
    if role == "unknown":
        return "external"
    return "customer"


def _mailbox(config: Config, name: str, envelope: Envelope, mail: ParsedMail) -> Mailbox:
    if name:
        return config.mailbox(name)
    candidates = [
        *envelope.rcpt_tos,
        *(a.email for a in mail.recipients),
        *mail.headers.get("delivered-to", ()),
        *mail.headers.get("x-original-to", ()),
    ]
    return config.mailbox_for(candidates) or config.mailboxes[0]
