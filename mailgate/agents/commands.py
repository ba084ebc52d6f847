"""Commands in an agent's mail: checked against the config first, then applied in order.

``#team``, ``#assign``, ``#priority``, ``#cc``, ``#status``, ``#time``, ``#category``,
``#urgency``, ``#impact`` (the syntax is
``mailgate.mail.commands``'); ``#merge``, ``#note`` and ``#resolve`` are carried
out by ``agents.mail`` with the verbs. A block with any problem is applied not at
all: the agent gets the list of problems instead.
"""

from __future__ import annotations

from mailgate import lifecycle, routing, worktime
from mailgate.config import Agent, Config
from mailgate.context import Context
from mailgate.events import Journal
from mailgate.mail import commands as command_syntax
from mailgate.mail.parse import Address
from mailgate.store import directory
from mailgate.store import tickets as ticket_rows
from mailgate.store.rows import TicketRow


def check_commands(
    ctx: Context, ticket: TicketRow, agent: Agent, block: command_syntax.Commands
) -> list[str]:
    """Everything wrong with a command block, checked against the config; [] when all is fine."""
    config = ctx.config
    problems = list(block.problems)
    for command in block.commands:
        if (
            command.name == "assign"
            and command.argument not in ("me", "none")
            and _agent_key(config, command.argument) is None
        ):
            problems.append(f"{command.line!r}: no agent {command.argument!r}")
        elif command.name == "team" and _team_key(config, command.argument) is None:
            problems.append(f"{command.line!r}: no team {command.argument!r}")
        elif command.name == "category" and config.category(command.argument) is None:
            known = ", ".join(config.tickets.categories) or "none are configured"
            problems.append(f"{command.line!r}: no category {command.argument!r} ({known})")
        elif command.name == "merge":
            target = ticket_rows.by_number(int(command.argument))
            if target is None:
                problems.append(f"{command.line!r}: no ticket #{command.argument}")
            elif ticket_rows.final(target).id == ticket.id:
                problems.append(f"{command.line!r}: a ticket cannot be merged into itself")
    return problems


def run_commands(
    ctx: Context,
    ticket: TicketRow,
    agent: Agent,
    block: command_syntax.Commands,
    journal: Journal,
) -> TicketRow:
    """Apply a checked command block (``check_commands`` returned nothing)."""
    config = ctx.config
    actor = f"agent:{agent.key}"
    team = block.argument("team")
    if team is not None:
        key = _team_key(config, team)
        assert key is not None
        ticket = lifecycle.change(ticket, journal, config, actor=actor, team=key).ticket
    assign = block.argument("assign")
    if assign is not None:
        who = (
            agent.key
            if assign == "me"
            else None
            if assign == "none"
            else _agent_key(config, assign)
        )
        ticket = lifecycle.change(ticket, journal, config, actor=actor, assignee=who).ticket
    if team is not None:
        # Moved without an assignee (also "#assign none"): the new team's rule decides.
        now_in = directory.team_by_id(ticket.team_id)
        ticket = routing.auto_assign(config, ticket, now_in.key if now_in else "", journal)
    category = block.argument("category")
    if category is not None:
        known = config.category(category)
        ticket = lifecycle.change(ticket, journal, config, actor=actor, category=known).ticket
    urgency, impact = block.argument("urgency"), block.argument("impact")
    if urgency is not None or impact is not None:
        # The matrix's priority, unless #priority says otherwise (it comes next).
        ticket = lifecycle.change(
            ticket, journal, config, actor=actor, urgency=urgency, impact=impact
        ).ticket
    priority = block.argument("priority")
    if priority is not None:
        ticket = lifecycle.change(ticket, journal, config, actor=actor, priority=priority).ticket
    cc = block.argument("cc")
    if cc:
        lifecycle.add_collaborators(
            ticket, [Address(a) for a in cc.split()], config, journal, actor=actor
        )
    status = block.argument("status")
    if status is not None:
        ticket = lifecycle.change(ticket, journal, config, actor=actor, status=status).ticket
    spent = block.argument("time")
    if spent is not None:
        worktime.record(
            ticket, agent.key, worktime.minutes(spent), journal, actor=actor, source="mail"
        )
    return ticket


def _agent_key(config: Config, name: str) -> str | None:
    name = name.lower()
    for agent in config.agents:
        if name in (agent.key.lower(), agent.name.lower(), *(e.lower() for e in agent.emails)):
            return agent.key
    return None


def _team_key(config: Config, name: str) -> str | None:
    name = name.lower()
    for team in config.teams:
        if name in (team.key.lower(), team.name.lower(), team.address.lower()):
            return team.key
    return None
