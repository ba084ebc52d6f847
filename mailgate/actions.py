"""One action on one ticket — from the CLI or a script — in one transaction, with its notices.

The email path (``ingest``) and this path share the verbs of ``mailgate.agents``
and ``mailgate.tickets``; both end in ``notify.queue`` inside the transaction
that made the change. Imports agents, tickets, notify and models.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from mailgate import agents, notify, store, tickets
from mailgate.config import Agent
from mailgate.context import Context
from mailgate.errors import UsageError
from mailgate.store import models as m

T = TypeVar("T")


def on_ticket(ctx: Context, number: int, apply: Callable[[m.Ticket, tickets.Changes], T]) -> T:
    with store.write_transaction():
        ticket = tickets.by_number(number)
        if ticket is None:
            raise UsageError(f"no ticket #{number}")
        ticket = tickets.lock(ticket)
        if ticket.merged_into_id:
            # Acting on the closed husk would hide the change from everyone working the
            # ticket it lives on now: say where to go instead of guessing.
            target = tickets.final(ticket)
            raise UsageError(f"#{number} was merged into #{target.number}; act on #{target.number}")
        with tickets.Changes() as changes:
            result = apply(ticket, changes)
            notify.queue(ctx, changes.items, mail=None, verdict=None)
    return result


def agent(ctx: Context, key: str | None) -> Agent | None:
    if key is None:
        return None
    found = ctx.config.agent(key) or ctx.config.agent_for(key)
    if found is None:
        raise UsageError(f"no agent {key!r} in the config")
    return found


def reply(ctx: Context, number: int, agent_key: str, text: str) -> None:
    who = agent(ctx, agent_key)
    assert who is not None
    if not text.strip():
        raise UsageError("the reply is empty")
    on_ticket(ctx, number, lambda t, ch: agents.reply(ctx, t, who, text, ch))


def note(ctx: Context, number: int, agent_key: str | None, text: str) -> None:
    if not text.strip():
        raise UsageError("the note is empty")
    who = agent(ctx, agent_key)
    on_ticket(ctx, number, lambda t, ch: agents.note(ctx, t, who, text, ch))


def merge(ctx: Context, source: int, target: int, actor: str) -> None:
    on_ticket(ctx, source, lambda t, ch: agents.merge(ctx, t, target, ch, actor=actor))


def assign(ctx: Context, number: int, agent_key: str | None, actor: str) -> bool:
    key = agent(ctx, agent_key).key if agent_key else None  # type: ignore[union-attr]
    return on_ticket(ctx, number, lambda t, ch: tickets.assign(t, key, ctx.config, ch, actor=actor))


def set_status(ctx: Context, number: int, status: str, actor: str) -> bool:
    return on_ticket(ctx, number, lambda t, ch: tickets.set_status(t, status, ch, actor=actor))


def set_priority(ctx: Context, number: int, priority: str, actor: str) -> bool:
    return on_ticket(ctx, number, lambda t, ch: tickets.set_priority(t, priority, ch, actor=actor))


def set_team(ctx: Context, number: int, team: str, actor: str) -> None:
    if ctx.config.team(team) is None:
        raise UsageError(f"no team {team!r} in the config")
    on_ticket(ctx, number, lambda t, ch: agents.set_team(ctx, t, team, ch, actor=actor))
