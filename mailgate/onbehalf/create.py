"""``mailgate tickets create``: an agent starts the conversation with a customer.

The ticket is created for the requester, assigned to the agent (``--as``), and the
customer gets exactly one mail: the agent's message, as an ``agent_reply`` (so the
customer's answer threads onto the ticket) — no acknowledgement, since nobody wrote
to us. Without an agent the administrator writes (actor ``admin:cli``): the ticket
stays unassigned unless its team's auto-assignment picks someone (no routing rules:
there is no mail to match), and the message is signed as the team or mailbox.
One transaction, ending in ``reactions.finish`` like every change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailgate import agents, lifecycle, reactions, routing
from mailgate.config import Agent, base_address
from mailgate.context import Context
from mailgate.errors import UsageError
from mailgate.events import Journal
from mailgate.mail.subject import clean_subject
from mailgate.store import people, write_transaction

_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


@dataclass(frozen=True)
class Created:
    number: int
    requester: str


def create_ticket(
    ctx: Context,
    *,
    requester: str,
    subject: str,
    text: str,
    agent: Agent | None,
    mailbox: str = "",
    priority: str = "",
    team: str = "",
) -> Created:
    """Open a ticket for ``requester`` and send them ``text`` (signed by ``agent``, if any)."""
    config = ctx.config
    email = requester.strip().strip("<>").lower()
    if not _ADDRESS.match(email):
        raise UsageError(f"--requester {requester!r} is not a mail address")
    if base_address(email) in config.own_addresses or config.agent_for(email) is not None:
        raise UsageError(f"--requester {email} is an agent or one of our own addresses")
    if not subject.strip():
        raise UsageError("the subject is empty")
    if not text.strip():
        raise UsageError("the message is empty")
    box = config.mailbox(mailbox) if mailbox else config.mailboxes[0]
    if team and config.team(team) is None:
        raise UsageError(f"no team {team!r} in the config")
    actor = agents.actor_of(agent)
    with write_transaction():
        journal = Journal()
        ticket = lifecycle.create(
            journal,
            config,
            actor=actor,
            mailbox=box,
            requester=people.contact(email),
            subject=clean_subject(subject, config.gateway.ticket_prefix),
            team=team or box.team,
            priority=priority or box.priority,
        )
        if agent is not None:
            ticket = lifecycle.change(
                ticket, journal, config, actor=actor, assignee=agent.key
            ).ticket
        else:
            ticket = routing.auto_assign(config, ticket, team or box.team, journal)
        agents.reply(ctx, ticket, agent, text, journal)
        reactions.finish(ctx, journal)
    return Created(ticket.number, email)
