"""The lifecycle: the ONLY writer of ticket state, and the rules of its transitions.

A ticket's state is its status, assignee, team, priority, category and tags,
what it was merged into, and the times it was first answered, resolved and
closed. Every change of it goes through this module — ``create``, ``change``,
``reopen``, ``merge`` — which checks the change, writes it through the store,
records the events (with actor and time) in the transaction's ``Journal`` and
returns the new frozen ticket. Nobody else writes those fields or calls the
store's state writers (``tests/test_layering.py`` fails the build otherwise), so
a rule about tickets lives here once, whoever acts: a mail command, the CLI, a
routing rule or a team's auto-assignment.

The rules, in one place:

* a ticket is created ``new``; it becomes ``open`` when it is assigned to an
  agent or an agent answers it (a note or a priority change alone leave it new);
* ``resolved`` stamps ``resolved_at``; ``closed`` stamps ``closed_at`` (and
  ``resolved_at`` if it had none); going back to new/open/pending clears both;
* a merged ticket is closed and points at the ticket it lives on now;
* people Cc'd join the conversation as collaborators — never our own addresses or
  agents (nobody becomes staff by being copied);
* ``decide`` — what a reply does to a ticket: append, reopen, or a new linked
  ticket (state × time since closing × sender role × mail class).

Imports config, errors, events, the store and ``mailgate.mail``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

from mailgate.config import LEVELS, PRIORITIES, STATUSES, Config, Mailbox, base_address
from mailgate.errors import UsageError
from mailgate.events import Event, Journal
from mailgate.mail.parse import Address
from mailgate.store import directory, people
from mailgate.store import tickets as ticket_rows
from mailgate.store.db import utcnow
from mailgate.store.rows import ContactRow, MessageRow, TicketRow

Role = Literal["requester", "collaborator", "agent", "unknown"]
Decision = Literal["create", "append", "reopen", "follow_up"]
OPEN_STATUSES = ("new", "open", "pending")
CLOSED_STATUSES = ("resolved", "closed")


class Keep:
    """The value of an argument of ``change`` that was not given (None means "nobody")."""


KEEP = Keep()


@dataclass(frozen=True)
class Changed:
    """The ticket after a change, and the events that say what changed (none: nothing did)."""

    ticket: TicketRow
    events: tuple[Event, ...]

    def __bool__(self) -> bool:
        return bool(self.events)


def create(
    journal: Journal,
    config: Config,
    *,
    actor: str,
    mailbox: Mailbox,
    requester: ContactRow,
    subject: str,
    team: str,
    priority: str,
    category: str = "",
    tags: tuple[str, ...] = (),
    foreign_tags: tuple[str, ...] = (),
    at: dt.datetime | None = None,
    urgency: str = "",
    impact: str = "",
) -> TicketRow:
    """A new ticket in status ``new``, its requester the first participant.

    ``at``: when it was opened, if not now (an imported mail's Date).
    """
    now = at or utcnow()
    team_row = directory.team_row(team, config)
    ticket = ticket_rows.insert(
        numbers=ticket_rows.new_numbers(config),
        subject=subject[:1000],
        priority=priority or mailbox.priority,
        mailbox=mailbox.name,
        team_id=team_row.id if team_row else None,
        requester_id=requester.id,
        category=category,
        tags=tags,
        foreign_tags=foreign_tags,
        now=now,
    )
    journal.track(ticket)
    journal.add(Event(ticket, "created", actor, new=ticket.subject, at=now))
    if urgency or impact:  # a routing rule's: the priority follows from the matrix
        ticket = change(ticket, journal, config, actor=actor, urgency=urgency, impact=impact).ticket
    return ticket


def change(
    ticket: TicketRow,
    journal: Journal,
    config: Config,
    *,
    actor: str,
    team: str | None = None,
    assignee: str | Keep | None = KEEP,
    priority: str | None = None,
    category: str | None = None,
    tags: tuple[str, ...] | None = None,
    urgency: str | None = None,
    impact: str | None = None,
    answered: bool = False,
    status: str | None = None,
    at: dt.datetime | None = None,
) -> Changed:
    """Change a ticket's state as ``actor``; every argument given is one step, in this order.

    ``team`` is a team key ('' for none); ``assignee`` an agent key or None for
    nobody; ``urgency``/``impact`` (low, medium, high) set the priority through
    ``[priority_matrix]`` unless ``priority`` is given too; ``answered`` means an agent
    answered the customer (the first response is stamped). A step that changes nothing
    records nothing. Raises ``UsageError`` for a status, priority, team, agent, category,
    urgency or impact that does not exist. ``at``: when
    the change takes effect, if not now (due work done late carries its real due time).
    """
    now = at or utcnow()
    steps = _Steps(ticket, actor, now)
    if team is not None:
        row = directory.team_row(team, config)
        if (row.id if row else None) != steps.ticket.team_id:
            old = directory.team_by_id(steps.ticket.team_id)
            steps.write("team", old.key if old else "", team, team_id=row.id if row else None)
    if not isinstance(assignee, Keep):
        agent = directory.agent_row(assignee, config) if assignee else None
        if (agent.id if agent else None) != steps.ticket.assignee_id:
            old_agent = directory.agent_by_id(steps.ticket.assignee_id)
            steps.write(
                "assignee",
                old_agent.key if old_agent else "",
                assignee or "",
                assignee_id=agent.id if agent else None,
            )
            if agent is not None and steps.ticket.status == "new" and status is None:
                _status(steps, "open")  # assigned to an agent: somebody works on it now
    levels = {"urgency": urgency, "impact": impact}
    matrix = False
    for kind, level in levels.items():
        if level is None or level == getattr(steps.ticket, kind):
            continue
        if level not in LEVELS:
            raise UsageError(f"unknown {kind} {level!r}; one of {', '.join(LEVELS)}")
        steps.write(kind, getattr(steps.ticket, kind), level, **{kind: level})
        matrix = True
    if matrix and priority is None:
        priority = config.priority_matrix.priority(steps.ticket.urgency, steps.ticket.impact)
    if category is not None and category and config.category(category) is None:
        raise UsageError(f"unknown category {category!r}; one of {_categories(config)}")
    if priority is not None:
        if priority not in PRIORITIES:
            raise UsageError(f"unknown priority {priority!r}; one of {', '.join(PRIORITIES)}")
        if priority != steps.ticket.priority:
            steps.write("priority", steps.ticket.priority, priority, priority=priority)
    if category is not None and category != steps.ticket.category:
        steps.write("category", steps.ticket.category, category, category=category)
    if tags is not None and tuple(tags) != steps.ticket.tags:
        old_tags, new_tags = " ".join(steps.ticket.tags), " ".join(tags)
        steps.write("tags", old_tags, new_tags, tags=tuple(tags))
    if answered:
        if steps.ticket.first_response_at is None:
            steps.write("first_response", "", f"{now:%Y-%m-%d %H:%M}", first_response_at=now)
        if steps.ticket.status == "new" and status is None:
            status = "open"  # an agent answered: the ticket is being worked on
    if status is not None:
        _status(steps, status)
    return steps.done(journal)


def _categories(config: Config) -> str:
    return ", ".join(config.tickets.categories) or "none configured ([tickets] categories)"


def reopen(
    ticket: TicketRow, journal: Journal, *, actor: str, message: MessageRow | None
) -> TicketRow:
    """A reply reopens a resolved or closed ticket: one ``reopened`` event, no ``status`` one."""
    steps = _Steps(ticket, actor, utcnow())
    _status(steps, "open")
    steps.events.clear()
    steps.events.append(
        Event(steps.ticket, "reopened", actor, old=ticket.status, new="open", message=message)
    )
    return steps.done(journal).ticket


def merge(
    source: TicketRow, target: TicketRow, journal: Journal, *, actor: str
) -> tuple[TicketRow, TicketRow]:
    """Merge ``source`` into ``target``: its thread moves, and later replies land on the target."""
    if source.id == target.id:
        raise UsageError("a ticket cannot be merged into itself")
    if target.merged_into_id:
        raise UsageError(f"#{target.number} is itself merged; merge into the ticket it points to")
    if source.merged_into_id:
        raise UsageError(f"#{source.number} is already merged")
    now = utcnow()
    ticket_rows.merge_into(source.id, target.id, now)
    merged = replace(
        source, merged_into_id=target.id, status="closed", closed_at=now, updated_at=now
    )
    journal.track(merged)
    journal.add(Event(merged, "merged", actor, old=source.status, new=f"into #{target.number}"))
    journal.add(Event(target, "merged", actor, new=f"from #{source.number}"))
    return merged, target


def newcomers(ticket: TicketRow, addresses: Iterable[Address], config: Config) -> list[Address]:
    """The addresses that would be new collaborators: not on the ticket, not ours, no agent."""
    # Ours and agents' first: most mails name nobody else, and then the ticket's
    # participants need not be read at all.
    candidates = [
        (address, address.email.lower())
        for address in addresses
        if base_address(address.email.lower()) not in config.own_addresses
        and config.agent_for(address.email.lower()) is None
    ]
    if not candidates:
        return []
    known = people.emails_of(ticket.id)
    found: list[Address] = []
    for address, email in candidates:
        if email in known:
            continue
        known.add(email)
        found.append(address)
    return found


def add_collaborators(
    ticket: TicketRow,
    addresses: Iterable[Address],
    config: Config,
    journal: Journal,
    *,
    actor: str,
) -> list[str]:
    """Cc'd people join the conversation; our own addresses and agents never do.

    At most ``lifecycle.max_collaborators`` per ticket: the ones beyond are returned
    (and an event says how many), so a mail with 2,000 Cc cannot make an agent's reply
    go to 2,001 addresses.
    """
    joining = newcomers(ticket, addresses, config)
    if not joining:
        return []
    room = max(0, config.lifecycle.max_collaborators - people.collaborator_count(ticket.id))
    for address in joining[:room]:
        people.add_collaborator(ticket.id, people.contact(address.email, address.name).id)
        journal.add(Event(ticket, "collaborator_added", actor, new=address.email.lower()))
    left_out = [a.email.lower() for a in joining[room:]]
    if left_out:
        journal.add(
            Event(
                ticket,
                "collaborators_capped",
                actor,
                new=str(len(left_out)),
                detail=f"lifecycle.max_collaborators = {config.lifecycle.max_collaborators}",
            )
        )
    return left_out


def follow_up(ticket: TicketRow, earlier: TicketRow, journal: Journal, *, actor: str) -> None:
    """``ticket`` continues the closed ``earlier``: both directions linked, both told."""
    ticket_rows.link(ticket.id, earlier.id, "follow_up_of", "followed_by")
    journal.add(Event(ticket, "linked", actor, new=f"follow-up of #{earlier.number}"))
    journal.add(Event(earlier, "linked", actor, new=f"followed by #{ticket.number}"))


class _Steps:
    """The ticket as the steps of one ``change`` leave it, their events, and what to write."""

    def __init__(self, ticket: TicketRow, actor: str, now: dt.datetime) -> None:
        self.ticket, self.actor, self.now = ticket, actor, now
        self.events: list[Event] = []
        self.fields: dict[str, object] = {}

    def write(self, kind: str, old: str, new: str, **fields: object) -> None:
        fields["updated_at"] = self.now
        self.ticket = replace(self.ticket, **fields)  # type: ignore[arg-type]
        self.fields.update(fields)
        self.events.append(Event(self.ticket, kind, self.actor, old=old, new=new, at=self.now))

    def done(self, journal: Journal) -> Changed:
        if self.fields:
            ticket_rows.write_state(self.ticket.id, self.fields)  # one UPDATE per change
        for event in self.events:
            journal.add(event)
        journal.track(self.ticket)
        return Changed(self.ticket, tuple(self.events))


def _status(steps: _Steps, status: str) -> None:
    if status not in STATUSES:
        raise UsageError(f"unknown status {status!r}; one of {', '.join(STATUSES)}")
    ticket, now = steps.ticket, steps.now
    if ticket.status == status:
        return
    fields: dict[str, object] = {"status": status}
    if status == "resolved":
        fields["resolved_at"] = now
    elif status == "closed":
        fields["closed_at"] = now
        if ticket.resolved_at is None:
            fields["resolved_at"] = now
    elif status in OPEN_STATUSES:
        fields["resolved_at"] = None
        fields["closed_at"] = None
    steps.write("status", ticket.status, status, **fields)


# --- what a reply does to a ticket ---------------------------------------------------------


def decide(
    ticket: TicketRow | None, role: Role, mail_class: str, config: Config, now: dt.datetime
) -> tuple[Decision, str]:
    """The reply policy: ticket state × time since closing × sender role × mail class.

    Returns the decision and a one-line reason for the trace. Only reads.
    """
    if ticket is None:
        return "create", "no ticket to thread onto"
    if ticket.status in OPEN_STATUSES:
        if role == "unknown" and config.lifecycle.unknown_sender == "new_ticket":
            return "follow_up", "sender is not on the ticket; policy: new ticket"
        return "append", f"ticket is {ticket.status}"
    closed_at = ticket.closed_at if ticket.status == "closed" else ticket.resolved_at
    closed_at = closed_at or ticket.updated_at
    age = now - closed_at
    window = dt.timedelta(days=config.lifecycle.reopen_window_days)
    since = f"{ticket.status} {_ago(age)}"
    if mail_class == "auto_reply":
        return "append", f"{since}; an auto-reply never reopens"
    if role == "agent":
        return "append", f"{since}; an agent's mail does not reopen by itself"
    if age > window:
        return "follow_up", f"{since}, beyond the {window.days}-day window → new linked ticket"
    if role == "unknown":
        if config.lifecycle.unknown_sender == "new_ticket":
            return "follow_up", f"{since}; sender is not on the ticket; policy: new ticket"
        return "append", f"{since}; sender is not on the ticket, appended without reopening"
    return "reopen", f"{since}, within the {window.days}-day window → reopened"


def _ago(age: dt.timedelta) -> str:
    if age.days >= 1:
        return f"{age.days} day{'s' if age.days != 1 else ''} ago"
    hours = int(age.total_seconds() // 3600)
    if hours >= 1:
        return f"{hours} hour{'s' if hours != 1 else ''} ago"
    return f"{max(int(age.total_seconds() // 60), 0)} minutes ago"
