"""Mail from an authentic agent: read it (``explain`` shows the same), then carry it out.

The commands come first, one per line; the text after them is the answer to the
customer — unless it is a note (``#note``, or the ticket's note address), the
resolution (``#resolve``), or the agent wrote to the customer directly (then it
is recorded, not sent again). Anything not understood changes nothing, and the
agent gets a short answer listing it; the same when a command becomes impossible
while the mail waits (the ticket was merged meanwhile): the mail's half-done
writes are taken back with a savepoint.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

from mailgate import answers
from mailgate.agents.commands import check_commands, run_commands
from mailgate.agents.identity import Identity, note_address
from mailgate.agents.verbs import merge, note, reply, resolve
from mailgate.context import Context
from mailgate.errors import UsageError
from mailgate.events import Event, Journal
from mailgate.logs import event
from mailgate.mail import commands as command_syntax
from mailgate.mail import quotes
from mailgate.mail.parse import ParsedMail
from mailgate.store import messages, people, savepoint
from mailgate.store import tickets as ticket_rows
from mailgate.store.rows import MessageRow, TicketRow

log = logging.getLogger("mailgate.agents")


EMPTY = (
    "no answer and no command found: everything in your mail was read as quoted text or"
    " signature, so nothing was sent to the customer"
)


@dataclass(frozen=True)
class AgentMail:
    """What an authentic agent mail asks for, read without changing anything."""

    block: command_syntax.Commands
    problems: tuple[str, ...]
    text: str  # the new text after the commands, quotes removed
    to_customer_directly: bool
    note: bool


def read_mail(
    ctx: Context,
    ticket: TicketRow,
    identity: Identity,
    mail: ParsedMail,
    recipients: Sequence[str],
    known: Sequence[str] = (),
) -> AgentMail:
    """What the mail asks for; ``known``: the texts of our notices it may quote."""
    visible = quotes.visible_text(
        mail.text, keep_signature=ctx.config.agent_mail.keep_signature, known=known
    )
    # `#answer NAME` lines anywhere become the canned answer, before commands are read.
    visible, unknown = answers.expand(ctx, ticket, identity.agent, visible)
    block = command_syntax.read(visible)
    problems = (*unknown, *check_commands(ctx, ticket, identity.agent, block))
    text = block.text.strip()
    if not block.commands and not text and not problems:
        # Whatever the cause (a client quoting in a way we do not recognise, a mail sent
        # too early), an answer is never dropped silently: the agent hears of it.
        problems = (EMPTY,)
    participants = people.emails_of(ticket.id)
    direct = any(a.email.lower() in participants for a in mail.recipients)
    return AgentMail(
        block=block,
        problems=problems,
        text=text,
        to_customer_directly=direct,
        note=block.has("note") or note_address(recipients, ctx.config, ticket.number),
    )


def handle_mail(
    ctx: Context,
    ticket: TicketRow,
    identity: Identity,
    request: AgentMail,
    message: MessageRow,
    journal: Journal,
    trace: list[str],
) -> TicketRow:
    """Carry out an authentic agent mail (its message is already stored); the ticket after.

    Commands that were fine when read can still fail when applied, because another
    process changed the ticket in between (merged it into the target meanwhile): then
    nothing of the mail is applied, it stays on the ticket as a note, and the agent is
    told why — exactly as for a command that was wrong from the start.
    """
    if request.problems:
        _reject(ticket, identity.actor, message, journal, trace, request.problems)
        return ticket
    mark, traced = journal.mark(), len(trace)
    try:
        with savepoint():  # a failing verb takes its half-done writes back
            after = _carry_out(ctx, ticket, identity, request, message, journal, trace)
    except UsageError as exc:
        journal.rollback(mark)
        del trace[traced:]
        ticket = journal.track(ticket_rows.lock(ticket.id))  # as the savepoint left it
        messages.set_kind(message.id, "note")
        message = replace(message, kind="note")
        _reject(ticket, identity.actor, message, journal, trace, (str(exc),))
        return ticket
    event(
        log,
        "agent.mail",
        agent=identity.agent.key,
        ticket=ticket.number,
        commands=len(request.block.commands),
    )
    return after


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
    lines = [p if p == EMPTY else f"command not understood: {p}" for p in request.problems]
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
    ticket: TicketRow,
    identity: Identity,
    request: AgentMail,
    message: MessageRow,
    journal: Journal,
    trace: list[str],
) -> TicketRow:
    agent, actor = identity.agent, identity.actor
    ticket = run_commands(ctx, ticket, agent, request.block, journal)
    if request.block.has("merge"):
        number = int(request.block.argument("merge") or 0)
        ticket, target = merge(ctx, ticket, number, journal, actor=actor)
        trace.append(f"merged into #{target.number}")
    does = intent_of(request)
    if does == "direct":
        ticket = reply(ctx, ticket, agent, request.text, journal, message=message, relay=False)
        trace.append("the agent wrote to the customer directly: recorded, not sent again")
    elif does == "note":
        ticket = note(ctx, ticket, agent, request.text, journal, message=message)
        trace.append("internal note: not sent to the customer")
    elif does == "resolve":
        ticket = resolve(
            ctx, ticket, agent, request.text, journal, message=message if request.text else None
        )
        trace.append("resolved; the resolution text goes to the customer")
    elif does == "relay":
        ticket = reply(ctx, ticket, agent, request.text, journal, message=message)
        trace.append("agent reply: relayed to the customer")
    if does in ("direct", "note") and request.block.has("resolve"):
        # The text went to the customer already, or stays internal: resolve without it.
        ticket = resolve(ctx, ticket, agent, "", journal, actor=actor)
        trace.append("resolved; the customer gets the resolution notice without the text")
    if request.block.commands:
        trace.append("commands applied: " + ", ".join(c.line for c in request.block.commands))
    return ticket


def _reject(
    ticket: TicketRow,
    actor: str,
    message: MessageRow,
    journal: Journal,
    trace: list[str],
    problems: Sequence[str],
) -> None:
    journal.add(
        Event(
            ticket, "commands_rejected", actor, message=message, detail="; ".join(problems)[:1000]
        )
    )
    journal.add(Event(ticket, "command_error", actor, message=message, detail="\n".join(problems)))
    if tuple(problems) == (EMPTY,):
        trace.append("no answer and no command: nothing applied or sent; the agent is told")
    else:
        trace.append(f"commands not understood ({len(problems)}): nothing applied or sent")


def message_kind(request: AgentMail) -> str:
    return "note" if intent_of(request) in ("rejected", "note") else "agent"


def asks_for_queue(mail: ParsedMail) -> bool:
    """``#queue`` as the first line of an agent's mail: they want their list of tickets."""
    visible = quotes.visible_text(mail.text, keep_signature=False)
    first = next((line.strip() for line in visible.splitlines() if line.strip()), "")
    return first.lower() == "#queue"
