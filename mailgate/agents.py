"""Agents at work: replies, internal notes and commands — by mail and from the CLI.

Both ways go through the same verbs (``reply``, ``note``, ``resolve``,
``run_commands``, ``merge``), so a command typed in Thunderbird and the same
command run as ``mailgate tickets …`` leave the same events and notices.

Nobody becomes an agent by writing a From header. Mail from an agent's
address counts as the agent's only when it is authentic (``identify``):

(a) it was sent to a reply address signed for that agent and ticket (the
    Reply-To of every notice an agent gets: ``support+482913-<hmac>@…``);
(b) a trusted receiving server's Authentication-Results show DKIM, DMARC or
    aligned SPF passing for the agent's domain;
(c) it was submitted through our listener with SMTP AUTH over TLS as that agent.

Anything else from an agent's address is stored as an unverified external
message: nothing relayed, no command run, the assignee told.

Imports tickets, notify, routing, models, config and ``mailgate.mail``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from mailgate import models as m
from mailgate import routing, sql, tickets
from mailgate.config import Agent, Config
from mailgate.context import Context
from mailgate.errors import UsageError
from mailgate.logs import event
from mailgate.mail import authresults, quotes, tokens
from mailgate.mail import commands as command_syntax
from mailgate.mail.parse import Address, ParsedMail

log = logging.getLogger("mailgate.agents")


@dataclass(frozen=True)
class Identity:
    agent: Agent
    verified: bool
    how: str  # why it is (or is not) authentic, for the decision trace

    @property
    def actor(self) -> str:
        return f"agent:{self.agent.key}"


def identify(
    ctx: Context,
    mail: ParsedMail,
    ticket: m.Ticket | None,
    recipients: Sequence[str],
    authenticated_as: str = "",
    *,
    via_mta: bool = True,
) -> Identity | None:
    """Who the agent is, and whether the mail proves it; None when From is no agent."""
    config = ctx.config
    sender = mail.sender.email if mail.sender else ""
    agent = config.agent_for(sender)
    if agent is None:
        return None
    if authenticated_as:
        if authenticated_as == agent.key:
            return Identity(agent, True, f"submitted with SMTP AUTH as {agent.key}")
        return Identity(agent, False, f"SMTP AUTH as {authenticated_as}, not as {agent.key}")
    if ticket is not None:
        for address in recipients:
            detail = _reply_detail(address, config)
            if detail is None or not detail.token:
                continue
            if detail.number == ticket.number and tokens.verify(
                ctx.secret, agent.key, ticket.number, detail.token
            ):
                return Identity(agent, True, "signed reply address of a notice to this agent")
    trusted = config.security.trusted_authserv_ids
    if trusted and via_mta:
        ours = authresults.added_by_our_mta(
            mail.header_names, mail.headers.get("authentication-results", ())
        )
        results = authresults.passes(ours, trusted)
        vouched = authresults.vouches_for(results, sender)
        if vouched is not None:
            return Identity(agent, True, str(vouched))
    checked = (
        "no trusted DKIM/DMARC pass above our Received header"
        if via_mta
        else "Authentication-Results not trusted on direct SMTP"
    )
    return Identity(agent, False, f"no signed reply address, {checked}, no SMTP AUTH")


def _reply_detail(address: str, config: Config) -> tokens.ReplyAddress | None:
    local, at, domain = address.lower().rpartition("@")
    if not at or config.mailbox_for([f"{local.split('+', 1)[0]}@{domain}"]) is None:
        return None
    return tokens.parse_detail(local)


def note_address(recipients: Sequence[str], config: Config, number: int) -> bool:
    """Was the mail sent to the ticket's notes address (``support+note-482913@…``)?"""
    for address in recipients:
        detail = _reply_detail(address, config)
        if detail is not None and detail.note and detail.number == number:
            return True
    return False


# --- the verbs ----------------------------------------------------------------------------


def reply(
    ctx: Context,
    ticket: m.Ticket,
    agent: Agent,
    text: str,
    changes: tickets.Changes,
    *,
    message: m.Message | None = None,
    relay: bool = True,
) -> m.Message:
    """An agent's answer to the customer; relayed through the agent_reply notice."""
    message = message or _stored_text(ctx, ticket, agent, text, kind="agent")
    actor = f"agent:{agent.key}"
    _first_response(ticket, changes, actor)
    if relay:
        changes.add(tickets.Change(ticket, "agent_reply", actor, message=message))
    else:
        changes.add(
            tickets.Change(
                ticket,
                "agent_reply_direct",
                actor,
                message=message,
                detail="sent to the customer by the agent directly",
            )
        )
    if ticket.status == "new":
        tickets.set_status(ticket, "open", changes, actor=actor)
    return message


def note(
    ctx: Context,
    ticket: m.Ticket,
    agent: Agent | None,
    text: str,
    changes: tickets.Changes,
    *,
    message: m.Message | None = None,
    actor: str = "",
) -> m.Message:
    """An internal note: stored on the ticket, never sent to the customer."""
    actor = actor or _actor_of(agent)
    message = message or _stored_text(ctx, ticket, agent, text, kind="note")
    changes.add(tickets.Change(ticket, "note", actor, message=message))
    return message


def resolve(
    ctx: Context,
    ticket: m.Ticket,
    agent: Agent | None,
    text: str,
    changes: tickets.Changes,
    *,
    message: m.Message | None = None,
    actor: str = "",
) -> None:
    """Resolve with a resolution text for the customer (sent in the resolution notice)."""
    actor = actor or _actor_of(agent)
    if text.strip() or message is not None:
        message = message or _stored_text(ctx, ticket, agent, text, kind="agent")
        changes.add(tickets.Change(ticket, "resolution", actor, message=message))
        _first_response(ticket, changes, actor)
    tickets.set_status(ticket, "resolved", changes, actor=actor)


def merge(
    ctx: Context, source: m.Ticket, target_number: int, changes: tickets.Changes, *, actor: str
) -> m.Ticket:
    target = tickets.by_number(target_number)
    if target is None:
        raise UsageError(f"no ticket #{target_number}")
    target = tickets.lock(tickets.final(target))  # into the ticket a merge chain ends at
    tickets.merge(source, target, changes, actor=actor)
    return target


def set_team(
    ctx: Context, ticket: m.Ticket, team: str, changes: tickets.Changes, *, actor: str
) -> None:
    """Move a ticket to a team; an unassigned ticket gets the team's auto-assignment."""
    tickets.set_team(ticket, team, ctx.config, changes, actor=actor)
    auto_assign(ctx.config, ticket, team, changes)


def auto_assign(config: Config, ticket: m.Ticket, team: str, changes: tickets.Changes) -> None:
    """An unassigned ticket in ``team`` gets whoever the team's rule picks (if it has one)."""
    if ticket.assignee_id is None:
        pick = routing.pick_agent(config, team)
        if pick:
            tickets.assign(ticket, pick, config, changes, actor="system:auto-assign")


def _actor_of(agent: Agent | None) -> str:
    return f"agent:{agent.key}" if agent else "admin:cli"


def _first_response(ticket: m.Ticket, changes: tickets.Changes, actor: str) -> None:
    if ticket.first_response_at is None:
        now = m.utcnow()
        sql.run("UPDATE ticket SET first_response_at = ? WHERE id = ?", sql.ts(now), ticket.id)
        ticket.first_response_at = now
        changes.add(tickets.Change(ticket, "first_response", actor, new=f"{now:%Y-%m-%d %H:%M}"))


def _stored_text(
    ctx: Context, ticket: m.Ticket, agent: Agent | None, text: str, *, kind: str
) -> m.Message:
    """A reply or note written without a mail (CLI): stored as a message of the thread."""
    sender = Address(agent.emails[0], agent.name) if agent else None
    return tickets.add_message(
        ticket,
        direction="in",
        kind=kind,
        message_id=f"<cli.{uuid.uuid4().hex}.{ticket.number}@{ctx.config.gateway.domain}>",
        sender=sender,
        subject=ticket.subject,
        text=text.strip(),
        full_text=text.strip(),
        verified=True,
        trace=["written with the mailgate CLI"],
    )


# --- commands -----------------------------------------------------------------------------


def check_commands(
    ctx: Context, ticket: m.Ticket, agent: Agent, block: command_syntax.Commands
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
        elif command.name == "merge":
            target = tickets.by_number(int(command.argument))
            if target is None:
                problems.append(f"{command.line!r}: no ticket #{command.argument}")
            elif tickets.final(target).id == ticket.id:
                problems.append(f"{command.line!r}: a ticket cannot be merged into itself")
    return problems


def run_commands(
    ctx: Context,
    ticket: m.Ticket,
    agent: Agent,
    block: command_syntax.Commands,
    changes: tickets.Changes,
) -> None:
    """Apply a checked command block (``check_commands`` returned nothing)."""
    config = ctx.config
    actor = f"agent:{agent.key}"
    team = block.argument("team")
    if team is not None:
        key = _team_key(config, team)
        assert key is not None
        tickets.set_team(ticket, key, config, changes, actor=actor)
    assign = block.argument("assign")
    if assign is not None:
        who = (
            agent.key
            if assign == "me"
            else None
            if assign == "none"
            else _agent_key(config, assign)
        )
        tickets.assign(ticket, who, config, changes, actor=actor)
    if team is not None:
        # Moved without an assignee (also "#assign none"): the new team's rule decides.
        auto_assign(config, ticket, ticket.team.key if ticket.team else "", changes)
    priority = block.argument("priority")
    if priority is not None:
        tickets.set_priority(ticket, priority, changes, actor=actor)
    cc = block.argument("cc")
    if cc:
        tickets.add_collaborators(
            ticket, [Address(a) for a in cc.split()], config, changes, actor=actor
        )
    status = block.argument("status")
    if status is not None:
        tickets.set_status(ticket, status, changes, actor=actor)


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


# --- mail from an agent -------------------------------------------------------------------


@dataclass(frozen=True)
class AgentMail:
    """What an authentic agent mail asks for, read without changing anything."""

    block: command_syntax.Commands
    problems: tuple[str, ...]
    text: str  # the new text after the commands, quotes removed
    to_customer_directly: bool
    note: bool


def read_mail(
    ctx: Context, ticket: m.Ticket, identity: Identity, mail: ParsedMail, recipients: Sequence[str]
) -> AgentMail:
    visible = quotes.visible_text(mail.text, keep_signature=ctx.config.agent_mail.keep_signature)
    block = command_syntax.read(visible)
    problems = tuple(check_commands(ctx, ticket, identity.agent, block))
    participants = _participant_emails(ticket)
    direct = any(a.email.lower() in participants for a in mail.recipients)
    return AgentMail(
        block=block,
        problems=problems,
        text=block.text.strip(),
        to_customer_directly=direct,
        note=block.has("note") or note_address(recipients, ctx.config, ticket.number),
    )


def _participant_emails(ticket: m.Ticket) -> set[str]:
    return {
        str(r[0])
        for r in sql.rows(
            "SELECT c.email FROM participant p JOIN contact c ON c.id = p.contact_id"
            " WHERE p.ticket_id = ?",
            ticket.id,
        )
    }


def handle_mail(
    ctx: Context,
    ticket: m.Ticket,
    identity: Identity,
    request: AgentMail,
    message: m.Message,
    changes: tickets.Changes,
    trace: list[str],
) -> None:
    """Carry out an authentic agent mail (its message is already stored).

    Commands that were fine when read can still fail when applied, because another
    process changed the ticket in between (merged it into the target meanwhile): then
    nothing of the mail is applied, it stays on the ticket as a note, and the agent is
    told why — exactly as for a command that was wrong from the start.
    """
    if request.problems:
        _reject(ticket, identity.actor, message, changes, trace, request.problems)
        return
    applied, traced = len(changes.items), len(trace)
    try:
        with m.db.atomic():  # a savepoint: a failing verb takes its half-done writes back
            _carry_out(ctx, ticket, identity, request, message, changes, trace)
    except UsageError as exc:
        del changes.items[applied:]
        del trace[traced:]
        tickets.refresh(ticket)
        sql.run("UPDATE message SET kind = 'note' WHERE id = ?", message.id)
        message.kind = "note"
        _reject(ticket, identity.actor, message, changes, trace, (str(exc),))
        return
    event(
        log,
        "agent.mail",
        agent=identity.agent.key,
        ticket=ticket.number,
        commands=len(request.block.commands),
    )


def intent_of(request: AgentMail) -> str:
    """What an agent mail does with its text: the one rule ``handle_mail`` and ``explain`` share.

    ``rejected`` (commands not understood), ``direct`` (the agent wrote to the customer
    themselves), ``note``, ``resolve`` (the text is the resolution), ``relay``, or
    ``commands`` (no text, only commands).
    """
    if request.problems:
        return "rejected"
    if request.to_customer_directly:
        return "direct"
    if request.note:
        return "note"
    if request.block.has("resolve"):
        return "resolve"
    return "relay" if request.text else "commands"


def describe(request: AgentMail) -> list[str]:
    """The trace lines ``explain`` shows for an authentic agent mail, before anything runs."""
    lines = [f"command not understood: {p}" for p in request.problems]
    if request.block.commands:
        lines.append("commands: " + ", ".join(c.line for c in request.block.commands))
    lines.append(
        {
            "rejected": "nothing would be applied or sent; the agent would get the problems",
            "direct": "written to the customer directly: would be recorded, not sent again",
            "note": "internal note: would not be sent to the customer",
            "resolve": "would resolve; the text goes to the customer as the resolution",
            "relay": "agent reply: would be relayed to the customer",
            "commands": "commands only: nothing for the customer",
        }[intent_of(request)]
    )
    if intent_of(request) in ("direct", "note") and request.block.has("resolve"):
        lines.append("would resolve; the customer gets the resolution notice without the text")
    return lines


def _carry_out(
    ctx: Context,
    ticket: m.Ticket,
    identity: Identity,
    request: AgentMail,
    message: m.Message,
    changes: tickets.Changes,
    trace: list[str],
) -> None:
    agent, actor = identity.agent, identity.actor
    run_commands(ctx, ticket, agent, request.block, changes)
    if request.block.has("merge"):
        target = merge(ctx, ticket, int(request.block.argument("merge") or 0), changes, actor=actor)
        trace.append(f"merged into #{target.number}")
    does = intent_of(request)
    if does == "direct":
        reply(ctx, ticket, agent, request.text, changes, message=message, relay=False)
        trace.append("the agent wrote to the customer directly: recorded, not sent again")
    elif does == "note":
        note(ctx, ticket, agent, request.text, changes, message=message)
        trace.append("internal note: not sent to the customer")
    elif does == "resolve":
        resolve(
            ctx, ticket, agent, request.text, changes, message=message if request.text else None
        )
        trace.append("resolved; the resolution text goes to the customer")
    elif does == "relay":
        reply(ctx, ticket, agent, request.text, changes, message=message)
        trace.append("agent reply: relayed to the customer")
    if does in ("direct", "note") and request.block.has("resolve"):
        # The text went to the customer already, or stays internal: resolve without it.
        resolve(ctx, ticket, agent, "", changes, actor=actor)
        trace.append("resolved; the customer gets the resolution notice without the text")
    if request.block.commands:
        trace.append("commands applied: " + ", ".join(c.line for c in request.block.commands))


def _reject(
    ticket: m.Ticket,
    actor: str,
    message: m.Message,
    changes: tickets.Changes,
    trace: list[str],
    problems: Sequence[str],
) -> None:
    changes.add(
        tickets.Change(
            ticket, "commands_rejected", actor, message=message, detail="; ".join(problems)[:1000]
        )
    )
    changes.add(
        tickets.Change(ticket, "command_error", actor, message=message, detail="\n".join(problems))
    )
    trace.append(f"commands not understood ({len(problems)}): nothing applied or sent")


def message_kind(request: AgentMail) -> str:
    return "note" if intent_of(request) in ("rejected", "note") else "agent"
