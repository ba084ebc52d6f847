"""Queuing notices: events → rules → breaker → snapshot → outbox rows, in the same transaction.

``queue`` runs inside the transaction of the change that causes the notices
(``reactions.finish`` calls it), so a change never commits without its notices
and a notice never outlives a change that rolled back. It renders only the
subject and text (the thread entry keeps them); the HTML part, the files and the
MIME are composed from the row's snapshot when it is sent (``snapshot.py``).
Delivery is ``mailgate.outbox``'s job. Notices to agents carry a reply address signed for
that agent and ticket.

Imports config, events, the store and ``mailgate.mail``; never a transport.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass

from mailgate.config import Config, Mailbox
from mailgate.context import Context
from mailgate.events import Event, Journal
from mailgate.logs import event
from mailgate.mail import compose, tokens
from mailgate.mail.classify import Verdict
from mailgate.mail.parse import Address, ParsedMail
from mailgate.notices import snapshot
from mailgate.notices.breaker import UNLIMITED, admit, window_key
from mailgate.notices.desk import intents
from mailgate.notices.render import (
    CUSTOMER_FACING,
    render_bodies,
    render_subject,
    variables_for,
)
from mailgate.notices.rules import Intent, mailbox_of
from mailgate.store import breaker as counts
from mailgate.store import messages, tickets
from mailgate.store import outbox as outbox_rows
from mailgate.store.db import utcnow
from mailgate.store.rows import TicketRow

log = logging.getLogger("mailgate.notices")


def queue(
    ctx: Context,
    journal: Journal,
    *,
    mail: ParsedMail | None,
    verdict: Verdict | None,
) -> None:
    """Turn one transaction's events into outbox rows (inside that transaction).

    The statements do not grow with the number of notices: recipient health, the
    circuit breaker and the thread references are read once per ticket, and all
    rows are written with one INSERT per table. The breaker decides here, so its
    windows count what this transaction queues. Each row holds a snapshot
    (``notices.snapshot``): the subject rendered now; the bodies, the files and the
    MIME composed when the outbox sends it.
    """
    by_ticket: dict[int, list[Event]] = {}
    for change in journal.items:
        by_ticket.setdefault(change.ticket.id, []).append(change)
    for ticket_id, events in by_ticket.items():
        ticket = journal.ticket(ticket_id) or tickets.by_id(ticket_id)
        wanted = intents(ctx, ticket, events, mail, verdict)
        if not wanted:
            continue
        # The conversation was read with the ticket's people (rules.people_of).
        who = next((i.people for i in wanted if i.people is not None), None)
        thread = _thread(ticket, mail, who.conversation if who is not None else None)
        admitted = admit(ctx.config, ticket, wanted, utcnow())
        _insert(
            ctx.config,
            [q for i in admitted if (q := _snapshot(ctx, i, mail, thread)) is not None],
        )


@dataclass(frozen=True)
class _Head:
    """What a notice's mail is decided by before anything is rendered."""

    box: Mailbox
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_address: str
    in_reply_to: str
    references: tuple[str, ...]
    message_id: str
    now: dt.datetime


def _head(
    ctx: Context, intent: Intent, mail: ParsedMail | None, thread: tuple[str, tuple[str, ...]]
) -> _Head | None:
    """Recipients, reply address and threading of ``intent``; None if nobody gets it."""
    config = ctx.config
    ticket = intent.ticket
    to = list(intent.to)
    if intent.for_agent is not None and not to:
        to = [Address(intent.for_agent.emails[0], intent.for_agent.name)]
    cc = list(intent.cc)
    if not to and cc:
        to, cc = cc[:1], cc[1:]
    if not to:
        return None
    box = mailbox_of(config, ticket)
    token = ""
    if intent.for_agent is not None:
        token = tokens.sign(ctx.secret, intent.for_agent.key, ticket.number)
    elif intent.kind in CUSTOMER_FACING and box.plus_reply_to:
        # A reply to this address answers a notice sent to the requester: it may add Cc'd
        # people to the ticket (intake/cc.py); a forged From alone never may.
        token = tokens.sign_requester(ctx.secret, ticket.requester_id, ticket.number)
    reply_address = box.address
    if box.plus_reply_to or token:
        reply_address = tokens.reply_address(box.address, ticket.number, token)
    in_reply_to, references = thread
    if intent.message is not None and intent.message.kind in ("customer", "external"):
        in_reply_to = intent.message.message_id
    return _Head(
        box,
        tuple(to),
        tuple(cc),
        reply_address,
        in_reply_to,
        references,
        f"<{_uuid4_hex()}.{ticket.number}@{config.gateway.domain}>",
        utcnow(),
    )


def _uuid4_hex(random: bytes | None = None) -> str:
    """``uuid.uuid4().hex`` (version and variant bits set as ``uuid.UUID`` sets them),
    without building the UUID object: a third of the cost, once a notice."""
    value = int.from_bytes(random if random is not None else os.urandom(16), "big")
    value = (value & ~(0xC000 << 48) | (0x8000 << 48)) & ~(0xF000 << 64) | (4 << 76)
    return f"{value:032x}"


def _subject(intent: Intent, rendered: str) -> str:
    """The subject, with the tags of other trackers the ticket carries (customer-facing)."""
    foreign = [t for t in (intent.ticket.foreign_tags or []) if t not in rendered]
    if foreign and intent.kind in CUSTOMER_FACING:
        return f"{rendered} {' '.join(foreign)}"
    return rendered


def compose_now(
    ctx: Context,
    intent: Intent,
    mail: ParsedMail | None,
    *,
    thread: tuple[str, tuple[str, ...]] | None = None,
) -> bytes | None:
    """The whole mail ``intent`` would send, composed now (``templates preview``); None if
    nobody would get it. The same snapshot as a queued notice, composed at once."""
    taken = _snapshot_of(
        ctx, intent, mail, thread if thread is not None else _thread(intent.ticket, mail)
    )
    if taken is None:
        return None
    return compose.build(snapshot.outgoing_of(ctx.config, ctx.blobs, taken[0]).outgoing)


@dataclass(frozen=True)
class Queued:
    """One outbox row of a notice and its thread entry (the content is a snapshot)."""

    kind: str
    ticket: TicketRow
    message_id: str
    sender: Address
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    subject: str
    text: str
    content: bytes
    automatic: bool
    due: dt.datetime | None
    held: str

    @property
    def recipients(self) -> list[str]:
        return [a.email for a in (*self.to, *self.cc)]


def _snapshot_of(
    ctx: Context, intent: Intent, mail: ParsedMail | None, thread: tuple[str, tuple[str, ...]]
) -> tuple[snapshot.Snapshot, _Head] | None:
    """What the notice is decided by now: recipients, threading, the subject rendered,
    the variables kept for its bodies; None if nobody gets it."""
    config = ctx.config
    ticket = intent.ticket
    head = _head(ctx, intent, mail, thread)
    if head is None:
        return None
    box = head.box
    variables = variables_for(ctx, intent, box, head.reply_address, html=False)
    subject = _subject(intent, render_subject(config, box, intent.kind, variables))
    return snapshot.Snapshot(
        kind=intent.kind,
        mailbox=box.name,
        sender=Address(box.address, config.gateway.name),
        to=head.to,
        cc=head.cc,
        reply_to=head.reply_address,
        subject=subject,
        message_id=head.message_id,
        in_reply_to=head.in_reply_to,
        references=head.references,
        auto_submitted=AUTO_SUBMITTED.get(intent.kind, "auto-generated"),
        loop_token=ctx.loop_token,
        thread_topic=ticket.subject,
        thread_seed=f"{config.gateway.domain}#{ticket.number}",
        started=ticket.created_at,
        date=head.now,
        message=intent.message.id if intent.message is not None else None,
        variables=variables,
    ), head


def _snapshot(
    ctx: Context, intent: Intent, mail: ParsedMail | None, thread: tuple[str, tuple[str, ...]]
) -> Queued | None:
    """The outbox row of a notice: the subject rendered (the thread entry's), the rest as
    a snapshot for later.

    A subject template that fails here fails the change, as before snapshots (a
    scheduled job tries again on its next run); a body template fails only its row,
    with the reason, when the outbox composes it. The thread entry's text is written
    then too (``outbox``): nobody can quote a notice before it is sent.
    """
    taken = _snapshot_of(ctx, intent, mail, thread)
    if taken is None:
        return None
    queued, head = taken
    # The thread entry gets its text when the mail is composed; an agent's answer shows
    # it at once (the desk shows the agent what they wrote), rendered twice from the same
    # variables.
    text = ""
    if intent.kind == "agent_reply":
        text, _ = render_bodies(ctx.config, head.box, intent.kind, queued.variables, html=False)
    try:
        content = snapshot.encode(queued)
    except (TypeError, ValueError) as exc:
        # A value the snapshot cannot keep: this notice is composed now, whole, as all
        # were before snapshots.
        event(log, "notice.composed_now", logging.WARNING, notice=intent.kind, reason=str(exc))
        composed = snapshot.compose_snapshot(ctx.config, ctx.blobs, queued)
        content, text = composed.content, composed.text
    return Queued(
        intent.kind,
        intent.ticket,
        queued.message_id,
        queued.sender,
        queued.to,
        queued.cc,
        queued.subject,
        text,
        content,
        intent.kind not in UNLIMITED,
        intent.due,
        intent.held,
    )


# Acknowledgements answer a person (RFC 3834 auto-replied); an agent's reply is written
# by a person and carries no marker; every other notice is auto-generated.
AUTO_SUBMITTED = {
    "acknowledgement": "auto-replied",
    "agent_reply": "",
    "csat_thanks": "auto-replied",
}


def _insert(config: Config, notices: list[Queued]) -> None:
    """Outbox rows, the thread's outbound messages and the breaker log: one INSERT each."""
    if not notices:
        return
    now = utcnow()
    outbox_rows.insert(
        [
            (
                p.message_id,
                p.ticket.id,
                p.kind,
                p.sender.email,
                p.recipients,
                p.content,
                p.automatic,
                p.due or now,
                f"held: {p.held}" if p.held else "",
            )
            for p in notices
        ],
        now,
    )
    messages.add_outbound(
        [
            (
                p.ticket.id,
                "agent" if p.kind == "agent_reply" else "system",
                p.message_id,
                p.sender.email,
                p.sender.name,
                [str(a) for a in p.to],
                [str(a) for a in p.cc],
                p.subject,
                p.text,
                [f"notice {p.kind}"],
            )
            for p in notices
        ],
        now,
    )
    # Held mail counts in the windows at the time it is due: it keeps its place there.
    for due in sorted({p.due or now for p in notices if p.automatic}):
        counts.count(
            [
                (window_key(config, p.kind, r.lower()), p.ticket.id)
                for p in notices
                if p.automatic and (p.due or now) == due
                for r in p.recipients
            ],
            due,
        )
    for p in notices:
        event(
            log,
            "notice.queued",
            logging.DEBUG,
            notice=p.kind,
            ticket=p.ticket.number,
            recipients=len(p.recipients),
            message_id=p.message_id,
        )


def _thread(
    ticket: TicketRow, mail: ParsedMail | None, conversation: tuple[str, ...] | None = None
) -> tuple[str, tuple[str, ...]]:
    """In-Reply-To the customer's message being answered; References along the conversation
    (``conversation``: its Message-IDs when read already)."""
    # The customer's latest mail is what every notice answers (it is stored already when
    # the notice comes from it); the first one roots the conversation.
    chain = list(conversation) if conversation is not None else messages.conversation_ids(ticket.id)
    answered = chain[-1] if chain else ""
    return answered, compose.trim_references(chain)
