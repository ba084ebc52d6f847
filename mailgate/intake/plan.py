"""Step 2a: decide what a parsed mail does — classify, find the ticket, who wrote, what follows.

Pure reads: the plan is a value, and ``mailgate explain`` runs exactly this code
to show what ingest would do and why (the decision trace). ``apply.py`` carries a
plan out in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from mailgate import agents, csat, lifecycle, routing
from mailgate.config import Config, Mailbox
from mailgate.context import Context
from mailgate.envelope import Envelope
from mailgate.intake.find import Found, bounce_target, find_ticket
from mailgate.lifecycle import Role
from mailgate.mail import classify as classifier
from mailgate.mail.parse import Address, ParsedMail, ParseLimits
from mailgate.store import people
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
    rating: Any = None  # csat.RatingMail: a mail to a rating address of ours


def parse_limits(config: Config) -> ParseLimits:
    """How much of a mail's structure is read (``gateway.max_mime_*``, ``max_header_count``)."""
    gateway = config.gateway
    return ParseLimits(
        max_depth=gateway.max_mime_depth,
        max_parts=gateway.max_mime_parts,
        max_headers=gateway.max_header_count,
    )


def plan(ctx: Context, mail: ParsedMail, envelope: Envelope, mailbox_name: str = "") -> Plan:
    """Classify and thread a parsed mail. Reads the database, writes nothing."""
    config = ctx.config
    verdict = classifier.classify(
        mail, own_addresses=config.own_addresses, loop_token=ctx.loop_token
    )
    box = _mailbox(config, mailbox_name, envelope, mail)
    sender = mail.sender
    if sender is None and envelope.mail_from:
        sender = Address(envelope.mail_from.lower())
    trace = [f"class {verdict.kind} ({verdict.reason})"]
    found: Found | None = None
    role: Role = "unknown"
    identity: agents.Identity | None = None
    request: agents.AgentMail | None = None
    recipients: tuple[str, ...] = ()

    def decided(decision: str, reason: str, routed: routing.Routed | None = None) -> Plan:
        return Plan(
            mail, verdict, box, sender, found, role, decision, reason, tuple(trace),
            identity, request, routed, recipients,
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
        return decided("quarantine", "no sender address (no From header and no envelope sender)")
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
    recipients = (*envelope.rcpt_tos, *(a.email for a in mail.recipients))
    role = sender_role(found.ticket, sender.email, config)
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
            request = agents.read_mail(ctx, found.ticket, identity, mail, recipients)
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
        trace.append(
            f"sender {sender.email} {'is an agent' if role == 'agent' else 'becomes the requester'}"
        )
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
        return decided(decision, why, routed)
    return decided(decision, why)


def sender_role(ticket: TicketRow | None, address: str, config: Config) -> Role:
    address = address.lower()
    if config.agent_for(address) is not None:
        return "agent"
    if ticket is None:
        return "unknown"
    role = people.role_of(ticket.id, address)
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
