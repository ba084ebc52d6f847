"""Events → notices: which notice goes to whom, read from one transaction's events.

=================  ==========================================  ==============================
event              notice                                      to
=================  ==========================================  ==============================
created (by mail)  acknowledgement                             requester (RFC 3834 permitting)
created            assignment (queue)                          team members, if unassigned
assignee           assignment                                  the new assignee
team / assignee    assignment (queue)                          team members, if left unassigned
message customer   customer_reply                              assignee, else the team
reopened           reopened (instead of customer_reply)        assignee, else the team
agent_reply        agent_reply                                 requester, Cc collaborators
status resolved    resolution                                  requester, Cc collaborators
priority           escalation (becomes emergency)              the team's escalation contact
command_error      command_error                               the agent who wrote
status closed      closed (off by default)                     requester
sla_warning        sla_warning                                 assignee, else the team
sla_breach         sla_breach                                  the breached team's escalation
                                                               contact, else assignee/team
pending_reminder   pending_reminder                            requester, Cc collaborators
auto_resolved      auto_resolved (instead of resolution)       requester, Cc collaborators
rated              csat_thanks                                 who rated (RFC 3834 permitting)
attachment_dropped attachment_refused                          who sent the file (a person)
=================  ==========================================  ==============================

Each notice is switched per mailbox (``[mailbox.notices]``). A new notice kind is
one more rule in ``intents`` (and a template set, a switch, its documentation).
Only reads. Imports config, events, the store's reads and ``mailgate.mail``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mailgate.config import Config, Mailbox
from mailgate.context import Context
from mailgate.events import Event
from mailgate.mail.classify import Verdict, is_noreply_address
from mailgate.mail.parse import Address, ParsedMail
from mailgate.store import directory, messages, people
from mailgate.store.rows import AgentRow, MessageRow, TeamRow, TicketRow


@dataclass(frozen=True)
class People:
    """Who a ticket concerns, read once per transaction for all its notices."""

    requester: Address
    collaborators: tuple[Address, ...]
    team: TeamRow | None
    assignee: AgentRow | None
    follow_up_of: int | None = None  # the number of the closed ticket this one continues
    # The Message-IDs its notices refer to (``messages.conversation_ids``), read with them.
    conversation: tuple[str, ...] | None = None


def people_of(ticket: TicketRow) -> People:
    # One statement (store.people.of_ticket); the team and agent are cached per process.
    # The earlier ticket only when this requester was on it: never name a stranger's.
    found = people.of_ticket(ticket.id, ticket.requester_id)
    requester = found.requester
    return People(
        requester=Address(requester.email, requester.name) if requester else Address(""),
        collaborators=tuple(Address(c.email, c.name) for c in found.collaborators),
        team=directory.team_by_id(ticket.team_id),
        assignee=directory.agent_by_id(ticket.assignee_id),
        follow_up_of=found.follow_up_of,
        conversation=found.conversation,
    )


@dataclass(frozen=True)
class Intent:
    """One notice to queue: its template, the people it goes to, what it is about."""

    kind: str
    ticket: TicketRow
    to: Sequence[Address]
    cc: Sequence[Address] = ()
    agent: AgentRow | None = None  # the agent it is about: the assignee, or who answered
    message: MessageRow | None = None
    previous_status: str = ""
    # The agent it goes to: gets a reply address signed for them and this ticket.
    for_agent: AgentRow | None = None
    people: People | None = None
    detail: str = ""
    # Held back by the circuit breaker: queued, due only then (never dropped), and why.
    due: dt.datetime | None = None
    held: str = ""
    note: MessageRow | None = None  # the note written with the change (notices/desk.py)

    def but(self, **changes: Any) -> Intent:
        """A copy with ``changes``: what ``dataclasses.replace`` gives, without its cost per
        field (it reads every field and runs ``__init__`` again; a notice is copied several
        times on its way to the outbox). Intent has no ``__post_init__`` to run."""
        copy = object.__new__(Intent)
        fields = copy.__dict__
        fields.update(self.__dict__)
        if not changes.keys() <= fields.keys():
            raise TypeError(f"Intent has no field {sorted(changes.keys() - fields.keys())}")
        fields.update(changes)
        return copy


def mailbox_of(config: Config, ticket: TicketRow) -> Mailbox:
    for box in config.mailboxes:
        if box.name == ticket.mailbox:
            return box
    return config.mailboxes[0]


def intents(
    ctx: Context,
    ticket: TicketRow,
    events: list[Event],
    mail: ParsedMail | None,
    verdict: Verdict | None,
) -> list[Intent]:
    """The notices one transaction's events on ``ticket`` (as it left it) call for."""
    on = mailbox_of(ctx.config, ticket).notices
    kinds = {e.kind: e for e in events}  # the last event of each kind counts
    message_event = next((e for e in events if e.kind == "message"), None)
    message = message_event.message if message_event else None
    found: list[Intent] = []
    who = people_of(ticket)
    requester, collaborators = who.requester, who.collaborators

    if "created" in kinds and mail is not None and on.acknowledgement:
        if verdict is not None and verdict.answerable and not is_noreply_address(requester.email):
            found.append(Intent("acknowledgement", ticket, [requester], message=message))
    new_assignee = kinds.get("assignee")
    if new_assignee is not None and new_assignee.new and on.assignment:
        agent = directory.agent_by_key(new_assignee.new)
        if agent is not None and new_assignee.actor != f"agent:{agent.key}":
            found.append(
                Intent(
                    "assignment",
                    ticket,
                    [],
                    agent=agent,
                    for_agent=agent,
                    message=messages.latest_customer(ticket.id),
                )
            )
    elif ticket.assignee_id is None and on.assignment and on.notify_team:
        if "created" in kinds:
            found.extend(_team_intents(ctx, "assignment", ticket, message))
        elif (moved := kinds.get("team") or new_assignee) is not None and ticket.status not in (
            "resolved",
            "closed",
        ):
            # Moved to a team, or handed back: the ticket waits in the queue, and the
            # team hears of it (not the agent who did it).
            found.extend(
                i
                for i in _team_intents(
                    ctx, "assignment", ticket, messages.latest_customer(ticket.id)
                )
                if i.for_agent is None or moved.actor != f"agent:{i.for_agent.key}"
            )
    customer_message = message is not None and message.kind in ("customer", "external")
    # The assignee hears which Cc of a reply were not added (not authentic for the requester).
    refused = "\n".join(e.new for e in events if e.kind == "cc_not_added")
    if "reopened" in kinds and on.reopened:
        found.extend(
            i.but(detail=refused)
            for i in _staff_intents(ctx, "reopened", ticket, message, kinds["reopened"].old)
        )
    elif customer_message and "created" not in kinds and on.customer_reply:
        found.extend(
            i.but(detail=refused)
            for i in _staff_intents(ctx, "customer_reply", ticket, message, "")
        )
    if "agent_reply" in kinds and on.agent_reply:
        event = kinds["agent_reply"]
        found.append(
            Intent(
                "agent_reply",
                ticket,
                [requester],
                cc=collaborators,
                agent=_agent_of(event.actor),
                message=event.message,
            )
        )
    status = kinds.get("status")
    if (
        status is not None
        and status.new == "resolved"
        and on.resolution
        and "auto_resolved" not in kinds
    ):
        resolution = kinds.get("resolution")
        found.append(
            Intent(
                "resolution",
                ticket,
                [requester],
                cc=collaborators,
                agent=_agent_of(status.actor),
                message=resolution.message if resolution else None,
            )
        )
    priority = kinds.get("priority")
    if priority is not None and priority.new == "emergency" and on.escalation:
        found.extend(_escalation(ctx, ticket, priority.actor))
    elif "created" in kinds and ticket.priority == "emergency" and on.escalation:
        found.extend(_escalation(ctx, ticket, "system"))  # routed straight to emergency
    if "command_error" in kinds:
        event = kinds["command_error"]
        agent = _agent_of(event.actor)
        if agent is not None:
            found.append(
                Intent(
                    "command_error",
                    ticket,
                    [],
                    agent=agent,
                    for_agent=agent,
                    message=event.message,
                    detail=event.detail,
                )
            )
    if status is not None and status.new == "closed" and on.closed:
        found.append(Intent("closed", ticket, [requester], agent=_agent_of(status.actor)))
    found.extend(_time_intents(ctx, ticket, kinds, who, verdict))
    found.extend(_refused_files(ticket, events, verdict, on.attachment_refused))
    return [intent.but(people=who) for intent in found]


def _refused_files(
    ticket: TicketRow, events: list[Event], verdict: Verdict | None, enabled: bool
) -> list[Intent]:
    """The sender of files over max_attachment_size hears which (a person, never a robot)."""
    dropped = [e for e in events if e.kind == "attachment_dropped" and e.message is not None]
    if not dropped or not enabled or (verdict is not None and not verdict.answerable):
        return []
    message = dropped[0].message
    assert message is not None
    if not message.from_addr or is_noreply_address(message.from_addr):
        return []
    return [
        Intent(
            "attachment_refused",
            ticket,
            [Address(message.from_addr, message.from_name)],
            message=message,
            detail="\n".join(e.detail for e in dropped),
        )
    ]


def _time_intents(
    ctx: Context, ticket: TicketRow, kinds: dict[str, Event], who: People, verdict: Verdict | None
) -> list[Intent]:
    """The notices of time passing (SLA, pending, auto-resolve) and of a customer's rating."""
    on = mailbox_of(ctx.config, ticket).notices
    found: list[Intent] = []
    if (warning := kinds.get("sla_warning")) is not None and on.sla_warning:
        staff = _staff_intents(ctx, "sla_warning", ticket, None, "")
        found.extend(i.but(detail=warning.new) for i in staff)
    if (breach := kinds.get("sla_breach")) is not None and on.sla_breach:
        # The escalation contact of the team that breached, also when the breach moved it.
        moved = kinds.get("team")
        breached_in = moved.old if moved is not None else (who.team.key if who.team else "")
        team = ctx.config.team(breached_in)
        contact = None
        if team is not None and team.escalation:
            contact = directory.agent_row(team.escalation, ctx.config)
        if contact is not None:
            found.append(Intent("sla_breach", ticket, [], for_agent=contact, detail=breach.new))
        else:
            found.extend(
                i.but(detail=breach.new)
                for i in _staff_intents(ctx, "sla_breach", ticket, None, "")
            )
    customer = [who.requester] if who.requester.email else []
    if "pending_reminder" in kinds and on.pending_reminder and customer:
        found.append(Intent("pending_reminder", ticket, customer, cc=who.collaborators))
    if "auto_resolved" in kinds and on.auto_resolved and customer:
        found.append(Intent("auto_resolved", ticket, customer, cc=who.collaborators))
    rated = kinds.get("rated")
    if rated is not None and rated.message is not None and on.csat_thanks:
        sender = rated.message.from_addr
        if sender and not is_noreply_address(sender) and (verdict is None or verdict.answerable):
            found.append(
                Intent("csat_thanks", ticket, [Address(sender, rated.message.from_name)],
                       message=rated.message)
            )  # fmt: skip
    return found


def _staff_intents(
    ctx: Context, kind: str, ticket: TicketRow, message: MessageRow | None, previous: str
) -> list[Intent]:
    agent = directory.agent_by_id(ticket.assignee_id)
    if agent is not None:
        return [
            Intent(
                kind,
                ticket,
                [],
                agent=agent,
                for_agent=agent,
                message=message,
                previous_status=previous,
            )
        ]
    return [
        intent.but(previous_status=previous) for intent in _team_intents(ctx, kind, ticket, message)
    ]


def _team_intents(
    ctx: Context, kind: str, ticket: TicketRow, message: MessageRow | None
) -> list[Intent]:
    """A team hears of its queue: each member with a reply address signed for them."""
    row = directory.team_by_id(ticket.team_id)
    team = ctx.config.team(row.key) if row else None
    if team is None:
        return []
    if team.members:
        return [
            Intent(
                kind,
                ticket,
                [],
                for_agent=directory.agent_row(member, ctx.config),
                message=message,
            )
            for member in team.members
        ]
    if team.address:
        return [Intent(kind, ticket, [Address(team.address, team.name)], message=message)]
    return []


def _escalation(ctx: Context, ticket: TicketRow, actor: str) -> list[Intent]:
    """An emergency is told to the team's escalation contact (unless they raised it)."""
    row = directory.team_by_id(ticket.team_id)
    team = ctx.config.team(row.key) if row else None
    if team is None or not team.escalation or actor == f"agent:{team.escalation}":
        return []
    contact = directory.agent_row(team.escalation, ctx.config)
    return [
        Intent(
            "escalation",
            ticket,
            [],
            agent=_agent_of(actor),
            for_agent=contact,
            message=messages.latest_customer(ticket.id),
        )
    ]


def _agent_of(actor: str) -> AgentRow | None:
    if actor.startswith("agent:"):
        return directory.agent_by_key(actor.split(":", 1)[1])
    return None
