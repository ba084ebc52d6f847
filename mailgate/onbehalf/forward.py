"""A ticket for a customer, opened by an agent's forward (or ``#requester``) to a mailbox.

An authentic agent (for a new mail: DKIM/DMARC pass in trusted Authentication-Results,
or SMTP AUTH — a signed reply address belongs to an existing ticket) forwards a
customer's mail to a mailbox address: the customer is the requester, the first
message is the customer's text with its date, and the agent's own words above the
forward become an internal note. ``#requester <address>`` on the first line names
the requester explicitly and wins. Anybody else forwarding a mail is simply the
customer of their ticket (``read`` is not asked for them).

``read`` is the plan's step (reads only, ``explain`` shows it); ``open`` is the
apply step (inside the transaction). Ticket state goes through the lifecycle;
messages through the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailgate import agents
from mailgate.config import base_address
from mailgate.context import Context
from mailgate.envelope import Envelope
from mailgate.events import Event, Journal
from mailgate.mail import forwards
from mailgate.mail.parse import Address, ParsedMail, parse
from mailgate.store import messages, new_message_id
from mailgate.store.rows import MessageRow, TicketRow

_FORWARDED = ("message/rfc822", "message/global")


@dataclass(frozen=True)
class Behalf:
    """Who a new ticket is for, and what the agent's mail brought."""

    identity: agents.Identity
    requester: Address
    forward: forwards.Forward | None
    note: str  # the agent's own words: an internal note
    how: str


def read(
    ctx: Context, mail: ParsedMail, envelope: Envelope, recipients: Sequence[str]
) -> tuple[Behalf | None, list[str]]:
    """Whether an agent's new mail opens a ticket for somebody else; trace lines either way."""
    identity = agents.identify(
        ctx, mail, None, recipients, envelope.authenticated_as, via_mta=envelope.via_mta
    )
    if identity is None:
        return None, []
    explicit, words = forwards.requester_line(mail.text)
    if not identity.verified:
        key = identity.agent.key
        lines = [f"sender claims to be agent {key} but is unverified ({identity.how})"]
        if explicit:
            lines.append("#requester ignored: the mail does not prove it is the agent's")
        return None, lines
    forward = _attached(ctx, mail, words) or forwards.read_inline(words)
    if explicit:
        name = forward.sender.name if forward and forward.sender.email == explicit else ""
        requester, how = Address(explicit, name), "#requester"
    elif forward is not None:
        requester, how = forward.sender, f"forwarded mail ({forward.how})"
    else:
        return None, [f"sender is agent {identity.agent.key}: authentic; no forwarded mail"]
    config = ctx.config
    if base_address(requester.email) in config.own_addresses or config.agent_for(requester.email):
        return None, [f"the requester {requester.email} would be an agent or ours: not taken"]
    note = forward.preface if forward is not None else words.strip()
    return Behalf(identity, requester, forward, note, how), [
        f"sender is agent {identity.agent.key}: authentic ({identity.how})",
        f"on behalf of {requester.email}, from the {how}",
    ]


def _attached(ctx: Context, mail: ParsedMail, words: str) -> forwards.Forward | None:
    for attachment in mail.attachments:
        if attachment.content_type.lower() not in _FORWARDED:
            continue
        try:
            inner = parse(ctx.blobs.get(attachment.sha256), ctx.blobs)
        except Exception:  # noqa: BLE001, S112 - an unreadable forward is just not used
            continue
        forward = forwards.from_attached(inner, words)
        if forward is not None:
            return forward
    return None


def open_first_messages(
    ctx: Context,
    ticket: TicketRow,
    behalf: Behalf,
    mail: ParsedMail,
    journal: Journal,
    *,
    message_id: str,
    receipt_id: int,
    trace: Sequence[str],
) -> MessageRow:
    """The customer's message (their text and date) and the agent's note; the first returned."""
    actor = behalf.identity.actor
    forward = behalf.forward
    journal.add(Event(ticket, "on_behalf", actor, new=behalf.requester.email, detail=behalf.how))
    first: MessageRow | None = None
    if forward is not None:
        first = messages.add(
            ticket.id,
            direction="in",
            kind="customer",
            message_id=message_id,
            from_addr=forward.sender.email,
            from_name=forward.sender.name,
            subject=forward.subject or mail.subject,
            date=forward.date.replace(tzinfo=None) if forward.date else mail.date,
            text=forward.text,
            full_text=forward.text,
            raw_sha256=mail.sha256,
            trace=[*trace, f"forwarded by agent {behalf.identity.agent.key} ({forward.how})"],
            receipt_id=receipt_id,
            touch=False,
        )
        journal.add(Event(ticket, "message", actor, new="customer", message=first))
    if behalf.note or first is None:
        note = messages.add(
            ticket.id,
            direction="in",
            kind="note",
            message_id=message_id if first is None else new_message_id(ctx.config.gateway.domain),
            from_addr=mail.sender.email if mail.sender else "",
            from_name=mail.sender.name if mail.sender else "",
            subject=mail.subject,
            date=mail.date,
            text=behalf.note,
            full_text=mail.text,
            trace=[*trace, "the agent's own words: an internal note"],
            receipt_id=receipt_id if first is None else None,
            verified=True,
            touch=False,
        )
        agents.note(ctx, ticket, behalf.identity.agent, behalf.note, journal, message=note)
        first = first or note
    return first
