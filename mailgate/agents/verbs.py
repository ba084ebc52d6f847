"""The agent verbs: reply, note, resolve, merge, move to a team — by mail and from the CLI.

Both ways go through these verbs, so a command typed in Thunderbird and the same
command run as ``mailgate tickets …`` leave the same events and notices. Each
verb takes the ticket as it is now and returns it as it left it; the state
changes go through ``mailgate.lifecycle``.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailgate import attachments, lifecycle, routing
from mailgate.config import Agent
from mailgate.context import Context
from mailgate.errors import UsageError
from mailgate.events import Event, Journal
from mailgate.store import attachments as stored_attachments
from mailgate.store import messages, ordered_token
from mailgate.store import tickets as ticket_rows
from mailgate.store.rows import MessageRow, TicketRow


def reply(
    ctx: Context,
    ticket: TicketRow,
    agent: Agent | None,
    text: str,
    journal: Journal,
    *,
    message: MessageRow | None = None,
    relay: bool = True,
    files: Sequence[Sequence[object]] = (),
) -> TicketRow:
    """An agent's answer to the customer; relayed through the agent_reply notice.

    ``files``: attachment rows (``store.messages.add_attachments``) of files already in
    the blob store, for an answer written without a mail (``tickets reply --attach``).
    ``agent`` None: the administrator writes (``tickets create`` without ``--as``); the
    mail is signed as the ticket's team or mailbox, the actor is ``admin:cli``.
    """
    if message is None:
        message = _stored_text(ctx, ticket, agent, text, kind="agent")
        if files:
            messages.add_attachments(message.id, files)
    elif relay:
        # By mail: a reply too big to send is not sent at all (the agent is told).
        sizes = [(f.filename, f.size) for f in stored_attachments.of_message(message.id) if f.kept]
        attachments.check_outbound_size(
            ctx, message.text, sizes, "nothing was sent to the customer"
        )
    actor = actor_of(agent)
    ticket = lifecycle.change(ticket, journal, ctx.config, actor=actor, answered=True).ticket
    if relay:
        journal.add(Event(ticket, "agent_reply", actor, message=message))
    else:
        journal.add(
            Event(
                ticket,
                "agent_reply_direct",
                actor,
                message=message,
                detail="sent to the customer by the agent directly",
            )
        )
    return ticket


def note(
    ctx: Context,
    ticket: TicketRow,
    agent: Agent | None,
    text: str,
    journal: Journal,
    *,
    message: MessageRow | None = None,
    actor: str = "",
) -> TicketRow:
    """An internal note: stored on the ticket, never sent to the customer."""
    actor = actor or actor_of(agent)
    message = message or _stored_text(ctx, ticket, agent, text, kind="note")
    journal.add(Event(ticket, "note", actor, message=message))
    return ticket


def resolve(
    ctx: Context,
    ticket: TicketRow,
    agent: Agent | None,
    text: str,
    journal: Journal,
    *,
    message: MessageRow | None = None,
    actor: str = "",
) -> TicketRow:
    """Resolve with a resolution text for the customer (sent in the resolution notice)."""
    actor = actor or actor_of(agent)
    answered = bool(text.strip() or message is not None)
    if answered:
        message = message or _stored_text(ctx, ticket, agent, text, kind="agent")
        journal.add(Event(ticket, "resolution", actor, message=message))
    return lifecycle.change(
        ticket, journal, ctx.config, actor=actor, answered=answered, status="resolved"
    ).ticket


def merge(
    ctx: Context, source: TicketRow, target_number: int, journal: Journal, *, actor: str
) -> tuple[TicketRow, TicketRow]:
    """Merge ``source`` into the ticket ``target_number`` ends at; (source, target) after."""
    target = ticket_rows.by_number(target_number)
    if target is None:
        raise UsageError(f"no ticket #{target_number}")
    target = ticket_rows.lock(ticket_rows.final(target).id)  # where a merge chain ends
    return lifecycle.merge(source, target, journal, actor=actor)


def set_team(
    ctx: Context, ticket: TicketRow, team: str, journal: Journal, *, actor: str
) -> TicketRow:
    """Move a ticket to a team; an unassigned ticket gets the team's auto-assignment."""
    ticket = lifecycle.change(ticket, journal, ctx.config, actor=actor, team=team).ticket
    return routing.auto_assign(ctx.config, ticket, team, journal)


def actor_of(agent: Agent | None) -> str:
    return f"agent:{agent.key}" if agent else "admin:cli"


def _stored_text(
    ctx: Context, ticket: TicketRow, agent: Agent | None, text: str, *, kind: str
) -> MessageRow:
    """A reply or note written without a mail (CLI): stored as a message of the thread."""
    return messages.add(
        ticket.id,
        direction="in",
        kind=kind,
        message_id=f"<cli.{ordered_token()}.{ticket.number}@{ctx.config.gateway.domain}>",
        from_addr=agent.emails[0] if agent else "",
        from_name=agent.name if agent else "",
        subject=ticket.subject,
        text=text.strip(),
        full_text=text.strip(),
        verified=True,
        trace=["written with the mailgate CLI"],
    )
