"""Ticket verbs for the admin CLI (and the web desk): one action, one transaction, its notices.

The mail path (``intake``) and this path share the agent verbs and the
lifecycle; both end in ``reactions.finish`` inside the transaction that made
the change, so a change by mail and the same change here leave the same events
and notices.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from mailgate import agents, attachments, csat, lifecycle, onbehalf, reactions, sla, worktime
from mailgate.config import Agent, Config
from mailgate.context import Context
from mailgate.errors import UsageError
from mailgate.events import Journal
from mailgate.store import tickets as ticket_rows
from mailgate.store import views, write_transaction
from mailgate.store.db import utcnow
from mailgate.store.rows import TicketRow
from mailgate.store.sla import ticket_filter

T = TypeVar("T")


def ticket(number: int | str) -> TicketRow:
    """The ticket an admin names (``482913`` or ``#482913``); one clear line if there is none."""
    return views.ticket(number)


def listing(
    config: Config,
    status: str | None = None,
    *,
    breached: bool = False,
    due_before: dt.datetime | None = None,
    now: dt.datetime | None = None,
    category: str | None = None,
) -> list[dict[str, Any]]:
    """Tickets, most recently updated first (the shape ``tickets list --json`` prints).

    ``breached``/``due_before`` (naive UTC): by their SLA clocks (``store.sla.ticket_filter``).
    """
    if category is not None and config.category(category) is None:
        known = ", ".join(config.tickets.categories) or "none configured"
        raise UsageError(f"unknown category {category!r}; one of {known}")
    if not breached and due_before is None:
        return views.ticket_list(config, status, category=category)
    where = ticket_filter(breached=breached, due_before=due_before, now=now or utcnow())
    return views.ticket_list(config, status, where=where, category=category)


def detail(config: Config, number: int | str) -> dict[str, Any]:
    """One ticket with its people, links, thread and audit trail (``tickets show --json``),
    its SLA clocks, the customer's rating and the working time spent on it."""
    row = views.ticket(number)
    found = views.ticket_detail(config, row)
    found["sla"] = sla.describe(config, row, utcnow())
    found["csat"] = csat.summary(row.id)
    found["working_time"] = worktime.summary(row.id)
    return found


def on_ticket(ctx: Context, number: int, apply: Callable[[TicketRow, Journal], T]) -> T:
    """Run ``apply`` on the locked ticket ``number`` in one transaction, then its reactions."""
    with write_transaction():
        found = ticket_rows.by_number(number)
        if found is None:
            raise UsageError(f"no ticket #{number}")
        ticket = ticket_rows.lock(found.id)
        if ticket.merged_into_id:
            # Acting on the closed husk would hide the change from everyone working the
            # ticket it lives on now: say where to go instead of guessing.
            target = ticket_rows.final(ticket)
            raise UsageError(f"#{number} was merged into #{target.number}; act on #{target.number}")
        journal = Journal()
        result = apply(ticket, journal)
        reactions.finish(ctx, journal)
    return result


def agent(ctx: Context, key: str | None) -> Agent | None:
    if key is None:
        return None
    found = ctx.config.agent(key) or ctx.config.agent_for(key)
    if found is None:
        raise UsageError(f"no agent {key!r} in the config")
    return found


def create(
    ctx: Context,
    *,
    requester: str,
    subject: str,
    text: str,
    agent_key: str | None,
    mailbox: str = "",
    priority: str = "",
    team: str = "",
) -> int:
    """A ticket an agent (or, with no ``agent_key``, the administrator) opens for a
    customer; the customer gets that message only."""
    if mailbox and mailbox not in {box.name for box in ctx.config.mailboxes}:
        raise UsageError(f"no mailbox {mailbox!r} in the config")
    created = onbehalf.create_ticket(
        ctx, requester=requester, subject=subject, text=text, agent=agent(ctx, agent_key),
        mailbox=mailbox, priority=priority, team=team,
    )  # fmt: skip
    return created.number


def reply(
    ctx: Context, number: int, agent_key: str, text: str, files: Sequence[str] = ()
) -> None:
    """An agent's answer, with the files at ``files`` attached (relayed to the customer)."""
    who = agent(ctx, agent_key)
    assert who is not None
    if not text.strip():
        raise UsageError("the reply is empty")
    views.ticket(number)  # an unknown ticket is named before any file is stored
    rows = [f.row() for f in attachments.store_files(ctx, files, text)]
    on_ticket(ctx, number, lambda t, j: agents.reply(ctx, t, who, text, j, files=rows))


def note(ctx: Context, number: int, agent_key: str | None, text: str) -> None:
    if not text.strip():
        raise UsageError("the note is empty")
    who = agent(ctx, agent_key)
    on_ticket(ctx, number, lambda t, j: agents.note(ctx, t, who, text, j))


def merge(ctx: Context, source: int, target: int, actor: str) -> None:
    on_ticket(ctx, source, lambda t, j: agents.merge(ctx, t, target, j, actor=actor))


def assign(ctx: Context, number: int, agent_key: str | None, actor: str) -> bool:
    who = agent(ctx, agent_key)
    key = who.key if who else None
    return on_ticket(
        ctx,
        number,
        lambda t, j: bool(lifecycle.change(t, j, ctx.config, actor=actor, assignee=key)),
    )


def set_status(ctx: Context, number: int, status: str, actor: str) -> bool:
    return on_ticket(
        ctx,
        number,
        lambda t, j: bool(lifecycle.change(t, j, ctx.config, actor=actor, status=status)),
    )


def set_priority(ctx: Context, number: int, priority: str, actor: str) -> bool:
    return on_ticket(
        ctx,
        number,
        lambda t, j: bool(lifecycle.change(t, j, ctx.config, actor=actor, priority=priority)),
    )


def set_team(ctx: Context, number: int, team: str, actor: str) -> None:
    if ctx.config.team(team) is None:
        raise UsageError(f"no team {team!r} in the config")
    on_ticket(ctx, number, lambda t, j: agents.set_team(ctx, t, team, j, actor=actor))


def time_spent(ctx: Context, number: int, agent_key: str, spent: str) -> int:
    """Record working time of an agent on a ticket (``tickets time N 25m --as AGENT``)."""
    who = agent(ctx, agent_key)
    assert who is not None
    minutes = worktime.minutes(spent)
    on_ticket(
        ctx,
        number,
        lambda t, j: worktime.record(
            t, who.key, minutes, j, actor=f"agent:{who.key}", source="cli"
        ),
    )
    return minutes
