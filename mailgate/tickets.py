"""Tickets: find the ticket a mail belongs to, decide what happens, and change state.

This is the only module that writes ticket state. Every change returns
``Change`` values (the audit events), and the caller turns those into notices
in the same transaction. The lookups (``find_ticket``, ``sender_role``,
``decide``) only read, so ``mailgate explain`` can run them as a dry run.

Imports models, config and ``mailgate.mail``; never a transport.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import peewee as pw

from mailgate import store
from mailgate.config import PRIORITIES, STATUSES, Config, Mailbox, base_address
from mailgate.errors import UsageError
from mailgate.mail import subject as subjects
from mailgate.mail import tokens
from mailgate.mail.parse import Address, ParsedMail
from mailgate.store import models as m
from mailgate.store import sql

Role = Literal["requester", "collaborator", "agent", "unknown"]
Decision = Literal["create", "append", "reopen", "follow_up"]
OPEN_STATUSES = ("new", "open", "pending")
CLOSED_STATUSES = ("resolved", "closed")


@dataclass(frozen=True)
class Found:
    """Which ticket a mail threads onto, and how that was decided."""

    ticket: m.Ticket | None
    how: str
    trace: tuple[str, ...]
    message_id: str = ""  # for a delivery report: the Message-ID of our mail it is about


@dataclass(frozen=True)
class Change:
    """One audit event, as written to the ``event`` table; notices are derived from these."""

    ticket: m.Ticket
    kind: str
    actor: str
    old: str = ""
    new: str = ""
    message: m.Message | None = None
    detail: str = ""
    at: dt.datetime = field(default_factory=m.utcnow)


_EVENT_COLUMNS = ("ticket_id", "at", "actor", "kind", "old", "new", "message_id", "detail")


def _event_row(change: Change) -> tuple[object, ...]:
    return (
        change.ticket.id,
        sql.ts(change.at),
        change.actor[:400],
        change.kind,
        change.old,
        change.new,
        change.message.id if change.message is not None else None,
        change.detail,
    )


def record(change: Change) -> Change:
    """Write one event now (outside a ``Changes`` batch)."""
    sql.insert_many("event", _EVENT_COLUMNS, [_event_row(change)])
    return change


@dataclass
class Changes:
    """The events of one transaction, in order; ``flush()`` writes them in one INSERT.

    Use it as a context manager inside the transaction: leaving the block flushes.
    """

    items: list[Change] = field(default_factory=list)
    _written: int = 0

    def add(self, change: Change) -> Change:
        self.items.append(change)
        return change

    def flush(self) -> None:
        pending = self.items[self._written :]
        if pending:
            sql.insert_many("event", _EVENT_COLUMNS, [_event_row(c) for c in pending])
            self._written = len(self.items)

    def kinds(self) -> list[str]:
        return [c.kind for c in self.items]

    def __enter__(self) -> Changes:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.flush()


def tag(config: Config, number: int) -> str:
    return subjects.format_tag(config.gateway.ticket_prefix, number)


# --- finding ------------------------------------------------------------------------------


def find_ticket(mail: ParsedMail, config: Config, envelope_recipients: Sequence[str] = ()) -> Found:
    """Reply address → In-Reply-To/References → subject tag → no ticket (a new one)."""
    trace: list[str] = []
    number = _number_from_reply_address(
        [*envelope_recipients, *(a.email for a in mail.recipients)], config
    )
    if number is not None:
        ticket = by_number(number)
        if ticket is not None:
            trace.append(f"reply address carries {tag(config, number)}")
            return _follow_merges(Found(ticket, "reply-address", tuple(trace)))
        trace.append(f"reply address names #{number}, which does not exist")
    ids = [*mail.in_reply_to, *reversed(mail.references)]
    if ids:
        match = _by_message_ids(ids)
        if match is not None:
            ticket, message_id, direction = match
            header = "In-Reply-To" if message_id in mail.in_reply_to else "References"
            what = "our notice" if direction == "out" else "a stored mail"
            trace.append(f"{header} {message_id} matched {what} of {tag(config, ticket.number)}")
            return _follow_merges(Found(ticket, header.lower(), tuple(trace)))
        trace.append(f"none of {len(ids)} referenced Message-IDs is known")
    number = subjects.find_tag(mail.subject, config.gateway.ticket_prefix)
    if number is not None:
        ticket = by_number(number)
        if ticket is not None:
            trace.append(f"subject tag {tag(config, number)} matched")
            return _follow_merges(Found(ticket, "subject-tag", tuple(trace)))
        trace.append(f"subject tag {tag(config, number)} names no ticket of ours")
    trace.append("no ticket found → new ticket")
    return Found(None, "new", tuple(trace))


def _number_from_reply_address(addresses: Iterable[str], config: Config) -> int | None:
    """The ticket number of a plus-address of ours: ``support+482913[-token]@``, ``+note-…``."""
    for address in addresses:
        local, at, domain = address.lower().rpartition("@")
        if not at or config.mailbox_for([f"{local.split('+', 1)[0]}@{domain}"]) is None:
            continue
        detail = tokens.parse_detail(local)
        if detail is not None:
            return detail.number
    return None


_TICKET_COLUMNS = (
    "id",
    "number",
    "subject",
    "status",
    "priority",
    "mailbox",
    "team_id",
    "assignee_id",
    "requester_id",
    "category",
    "merged_into_id",
    "created_at",
    "updated_at",
    "first_response_at",
    "resolved_at",
    "closed_at",
    "foreign_tags",
)
_TICKET_SELECT = f"SELECT {', '.join(_TICKET_COLUMNS)} FROM ticket"
_TIMESTAMPS = {"created_at", "updated_at", "first_response_at", "resolved_at", "closed_at"}


def _ticket(row: tuple[object, ...] | None) -> m.Ticket | None:
    """A ticket model built from a raw row (no further query)."""
    if row is None:
        return None
    data = dict(zip(_TICKET_COLUMNS, row, strict=True))
    for name in _TIMESTAMPS:
        data[name] = sql.read_ts(data[name])
    data["foreign_tags"] = json.loads(str(data["foreign_tags"] or "[]"))
    fks = {
        "team_id": "team",
        "assignee_id": "assignee",
        "requester_id": "requester",
        "merged_into_id": "merged_into",
    }
    ticket = m.Ticket(**{fks.get(k, k): v for k, v in data.items()})
    return ticket


def by_id(ticket_id: int) -> m.Ticket:
    ticket = _ticket(sql.one(f"{_TICKET_SELECT} WHERE id = ?", ticket_id))
    if ticket is None:
        raise LookupError(f"no ticket with id {ticket_id}")
    return ticket


def by_number(number: int) -> m.Ticket | None:
    return _ticket(sql.one(f"{_TICKET_SELECT} WHERE number = ?", number))


def _by_message_ids(ids: Sequence[str]) -> tuple[m.Ticket, str, str] | None:
    found = sql.rows(
        "SELECT ticket_id, message_id, direction FROM message"
        f" WHERE message_id IN ({sql.placeholders(len(ids))}) ORDER BY id DESC",
        *ids,
    )
    if not found:
        return None
    # The earliest reference in our list wins: In-Reply-To first, then References newest first.
    by_message_id: dict[str, tuple[object, ...]] = {}
    for row in found:
        by_message_id.setdefault(str(row[1]), row)
    for message_id in ids:
        if message_id in by_message_id:
            ticket_id, _, direction = by_message_id[message_id]
            return by_id(int(str(ticket_id))), message_id, str(direction)
    return None


def final(ticket: m.Ticket) -> m.Ticket:
    """The ticket a merge chain ends at (the ticket itself when it was never merged)."""
    found = _follow_merges(Found(ticket, "", ()))
    assert found.ticket is not None
    return found.ticket


def _follow_merges(found: Found) -> Found:
    ticket, trace = found.ticket, list(found.trace)
    seen: set[int] = set()
    while ticket is not None and ticket.merged_into_id and ticket.id not in seen:
        seen.add(ticket.id)
        target = by_id(ticket.merged_into_id)
        trace.append(f"#{ticket.number} was merged into #{target.number}")
        ticket = target
    return Found(ticket, found.how, tuple(trace))


# --- deciding -----------------------------------------------------------------------------


def sender_role(ticket: m.Ticket | None, address: str, config: Config) -> Role:
    address = address.lower()
    if config.agent_for(address) is not None:
        return "agent"
    if ticket is None:
        return "unknown"
    role = sql.value(
        "SELECT p.role FROM participant p JOIN contact c ON c.id = p.contact_id"
        " WHERE p.ticket_id = ? AND c.email = ?",
        ticket.id,
        address,
    )
    if role is None:
        return "unknown"
    return "requester" if role == "requester" else "collaborator"


def decide(
    ticket: m.Ticket | None, role: Role, mail_class: str, config: Config, now: dt.datetime
) -> tuple[Decision, str]:
    """The lifecycle policy: ticket state × time since closing × sender role × mail class.

    Returns the decision and a one-line reason for the trace.
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


def message_kind(role: Role, mail_class: str) -> str:
    if mail_class in ("auto_reply", "bounce"):
        return mail_class
    if role == "agent":
        return "agent"
    if role == "unknown":
        return "external"
    return "customer"


# --- writing ------------------------------------------------------------------------------


def contact(address: Address | str) -> m.Contact:
    """The contact row of an address, created on first sight."""
    email, name = (address.email, address.name) if isinstance(address, Address) else (address, "")
    email, name = email.lower()[:320], name[:300]
    row = sql.one("SELECT id, name FROM contact WHERE email = ?", email)
    if row is None:
        contact_id = sql.insert(
            "INSERT INTO contact (email, name, created_at, undeliverable_reason)"
            " VALUES (?, ?, ?, '')",
            email,
            name,
            sql.ts(m.utcnow()),
        )
        known = name
    else:
        contact_id, known = int(row[0]), str(row[1] or "")
        if name and not known:
            sql.run("UPDATE contact SET name = ? WHERE id = ?", name, contact_id)
            known = name
    return m.Contact(id=contact_id, email=email, name=known)


def new_ticket_number(config: Config) -> int:
    if config.gateway.ticket_numbers == "sequential":
        return _next_sequence("ticket_number", start=1000)
    return _random_number()


_random_digits = [6]


def _random_number() -> int:
    # Six random digits while there is room; a full space widens to seven, and so on.
    # The width only grows, so a busy helpdesk pays the extra lookups once.
    while True:
        digits = _random_digits[0]
        for _ in range(4):
            number = secrets.randbelow(9 * 10 ** (digits - 1)) + 10 ** (digits - 1)
            if sql.one("SELECT 1 FROM ticket WHERE number = ?", number) is None:
                return int(number)
        _random_digits[0] = digits + 1


def _next_sequence(key: str, *, start: int) -> int:
    updated = m.Setting.update(value=m.Setting.value + 1).where(m.Setting.key == key).execute()
    if not updated:
        m.Setting.insert(key=key, value=start).on_conflict_ignore().execute()
        if not m.Setting.update(value=m.Setting.value + 1).where(m.Setting.key == key).execute():
            raise RuntimeError("sequence row vanished")
    return int(m.Setting.get_by_id(key).value)


def team_row(key: str, config: Config) -> m.Team | None:
    if not key:
        return None
    found = sql.one("SELECT id, name, address FROM team WHERE key = ?", key)
    if found is not None:
        return m.Team(id=found[0], key=key, name=found[1], address=found[2])
    row = None
    if row is None:
        team = config.team(key)
        if team is None:
            raise UsageError(f"no team {key!r} in the config")
        # Several processes may create it at once (`db upgrade` run in parallel): first wins.
        m.Team.insert(key=team.key, name=team.name, address=team.address).on_conflict_ignore(
        ).execute()
        row = m.Team.get(m.Team.key == team.key)
    return row


def agent_row(key: str, config: Config) -> m.Agent:
    found = sql.one("SELECT id, name, emails, role FROM agent WHERE key = ?", key)
    if found is not None:
        return m.Agent(
            id=found[0], key=key, name=found[1], emails=json.loads(found[2]), role=found[3]
        )
    row = None
    if row is None:
        agent = next((a for a in config.agents if a.key == key), None)
        if agent is None:
            raise UsageError(f"no agent {key!r} in the config")
        m.Agent.insert(
            key=agent.key, name=agent.name, emails=list(agent.emails), role=agent.role
        ).on_conflict_ignore().execute()
        row = m.Agent.get(m.Agent.key == agent.key)
    return row


def sync_directory(config: Config) -> None:
    """Mirror the config's teams and agents into the database (names may change)."""
    for team in config.teams:
        row = team_row(team.key, config)
        if row is not None and (row.name, row.address) != (team.name, team.address):
            m.Team.update(name=team.name, address=team.address).where(m.Team.id == row.id).execute()
    configured = {a.key for a in config.agents}
    for agent in config.agents:
        agent_id = agent_row(agent.key, config).id
        m.Agent.update(
            name=agent.name, emails=list(agent.emails), role=agent.role, active=True
        ).where(m.Agent.id == agent_id).execute()
    m.Agent.update(active=False).where(m.Agent.key.not_in(list(configured) or [""])).execute()


def create_ticket(
    mail: ParsedMail,
    mailbox: Mailbox,
    config: Config,
    changes: Changes,
    *,
    actor: str,
    requester: Address | None = None,
    team_key: str | None = None,
    priority: str | None = None,
    category: str = "",
    tags: Sequence[str] = (),
    subject: str | None = None,
) -> m.Ticket:
    """A new ticket in status new; team and priority default to the mailbox's."""
    requester = requester or mail.sender
    if requester is None:
        raise ValueError("a ticket needs a requester")
    now = m.utcnow()
    person = contact(requester)
    team = team_row(mailbox.team if team_key is None else team_key, config)
    prefix = config.gateway.ticket_prefix
    ticket = m.Ticket(
        number=new_ticket_number(config),
        subject=(subject or subjects.clean_subject(mail.subject, prefix))[:1000],
        status="new",
        priority=priority or mailbox.priority,
        mailbox=mailbox.name,
        team=team.id if team else None,
        assignee=None,
        requester=person.id,
        category=category,
        tags=list(tags),
        merged_into=None,
        foreign_tags=subjects.foreign_tags(mail.subject, prefix),
        created_at=now,
        updated_at=now,
        first_response_at=None,
        resolved_at=None,
        closed_at=None,
    )
    ticket.id = sql.insert(
        "INSERT INTO ticket (number, subject, status, priority, mailbox, team_id, requester_id,"
        " category, tags, foreign_tags, created_at, updated_at)"
        " VALUES (?, ?, 'new', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ticket.number,
        ticket.subject,
        ticket.priority,
        ticket.mailbox,
        ticket.team_id,
        person.id,
        category,
        sql.js(list(tags)),
        sql.js(ticket.foreign_tags),
        sql.ts(now),
        sql.ts(now),
    )
    sql.run(
        "INSERT INTO participant (ticket_id, contact_id, role) VALUES (?, ?, 'requester')",
        ticket.id,
        person.id,
    )
    changes.add(Change(ticket, "created", actor, new=ticket.subject))
    return ticket


def add_collaborators(
    ticket: m.Ticket, addresses: Iterable[Address], config: Config, changes: Changes, *, actor: str
) -> None:
    """Cc'd people join the conversation; our own addresses and agents never do."""
    known = {
        str(row[0])
        for row in sql.rows(
            "SELECT c.email FROM participant p JOIN contact c ON c.id = p.contact_id"
            " WHERE p.ticket_id = ?",
            ticket.id,
        )
    }
    for address in addresses:
        email = address.email.lower()
        if (
            email in known
            or base_address(email) in config.own_addresses
            or config.agent_for(email) is not None
        ):
            continue
        known.add(email)
        person = contact(address)
        sql.run(
            "INSERT INTO participant (ticket_id, contact_id, role) VALUES (?, ?, 'collaborator')",
            ticket.id,
            person.id,
        )
        changes.add(Change(ticket, "collaborator_added", actor, new=email))


def add_message(
    ticket: m.Ticket,
    *,
    direction: str,
    kind: str,
    message_id: str,
    sender: Address | None = None,
    to: Sequence[str] = (),
    cc: Sequence[str] = (),
    subject: str = "",
    date: dt.datetime | None = None,
    text: str = "",
    full_text: str = "",
    html: str = "",
    raw_sha256: str = "",
    trace: Sequence[str] = (),
    verified: bool = False,
    receipt: m.Receipt | None = None,
    touch: bool = True,
) -> m.Message:
    now = m.utcnow()
    message_pk = sql.insert(
        "INSERT INTO message (ticket_id, receipt_id, direction, kind, message_id, from_addr,"
        " from_name, to_addrs, cc_addrs, subject, date, text, full_text, html, raw_sha256, trace,"
        " verified, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ticket.id,
        receipt.id if receipt is not None else None,
        direction,
        kind,
        message_id,
        sender.email.lower() if sender else "",
        sender.name[:300] if sender else "",
        sql.js(list(to)),
        sql.js(list(cc)),
        subject,
        sql.ts(date),
        text,
        full_text,
        html,
        raw_sha256,
        sql.js(list(trace)),
        verified,
        sql.ts(now),
    )
    if touch:  # a ticket created in this transaction is up to date already
        sql.run("UPDATE ticket SET updated_at = ? WHERE id = ?", sql.ts(now), ticket.id)
        ticket.updated_at = now
    return m.Message(
        id=message_pk,
        ticket=ticket.id,
        direction=direction,
        kind=kind,
        message_id=message_id,
        subject=subject,
        text=text,
        full_text=full_text,
        from_addr=sender.email.lower() if sender else "",
        from_name=sender.name[:300] if sender else "",
        verified=verified,
        created_at=now,
    )


def set_status(ticket: m.Ticket, status: str, changes: Changes, *, actor: str) -> bool:
    if status not in STATUSES:
        raise UsageError(f"unknown status {status!r}; one of {', '.join(STATUSES)}")
    if ticket.status == status:
        return False
    old = ticket.status
    now = m.utcnow()
    fields: dict[str, object] = {"status": status, "updated_at": now}
    if status == "resolved":
        fields["resolved_at"] = now
    elif status == "closed":
        fields["closed_at"] = now
        if ticket.resolved_at is None:
            fields["resolved_at"] = now
    elif status in OPEN_STATUSES:
        fields["resolved_at"] = None
        fields["closed_at"] = None
    m.Ticket.update(**fields).where(m.Ticket.id == ticket.id).execute()
    for name, value in fields.items():
        setattr(ticket, name, value)
    changes.add(Change(ticket, "status", actor, old=old, new=status))
    return True


def reopen(ticket: m.Ticket, changes: Changes, *, actor: str, message: m.Message | None) -> None:
    old = ticket.status
    set_status(ticket, "open", Changes(), actor=actor)
    changes.add(Change(ticket, "reopened", actor, old=old, new="open", message=message))


def set_priority(ticket: m.Ticket, priority: str, changes: Changes, *, actor: str) -> bool:
    if priority not in PRIORITIES:
        raise UsageError(f"unknown priority {priority!r}; one of {', '.join(PRIORITIES)}")
    if ticket.priority == priority:
        return False
    old = ticket.priority
    ticket.priority = priority
    m.Ticket.update(priority=priority, updated_at=m.utcnow()).where(
        m.Ticket.id == ticket.id
    ).execute()
    changes.add(Change(ticket, "priority", actor, old=old, new=priority))
    return True


def assign(
    ticket: m.Ticket, agent_key: str | None, config: Config, changes: Changes, *, actor: str
) -> bool:
    old = ticket.assignee.key if ticket.assignee is not None else ""
    new_row = agent_row(agent_key, config) if agent_key else None
    if (new_row.id if new_row else None) == ticket.assignee_id:
        return False
    ticket.assignee = new_row
    m.Ticket.update(assignee=new_row.id if new_row else None, updated_at=m.utcnow()).where(
        m.Ticket.id == ticket.id
    ).execute()
    changes.add(Change(ticket, "assignee", actor, old=old, new=agent_key or ""))
    return True


def set_team(
    ticket: m.Ticket, team_key: str, config: Config, changes: Changes, *, actor: str
) -> bool:
    row = team_row(team_key, config)
    old = ticket.team.key if ticket.team is not None else ""
    if (row.id if row else None) == ticket.team_id:
        return False
    ticket.team = row
    m.Ticket.update(team=row.id if row else None, updated_at=m.utcnow()).where(
        m.Ticket.id == ticket.id
    ).execute()
    changes.add(Change(ticket, "team", actor, old=old, new=team_key))
    return True


def link(ticket: m.Ticket, other: m.Ticket, changes: Changes, *, actor: str) -> None:
    """``ticket`` follows up ``other``: both directions are stored and both get an event."""
    m.TicketLink.insert_many(
        [
            {"ticket": ticket.id, "other": other.id, "kind": "follow_up_of"},
            {"ticket": other.id, "other": ticket.id, "kind": "followed_by"},
        ]
    ).execute()
    changes.add(Change(ticket, "linked", actor, new=f"follow-up of #{other.number}"))
    changes.add(Change(other, "linked", actor, new=f"followed by #{ticket.number}"))


def merge(source: m.Ticket, target: m.Ticket, changes: Changes, *, actor: str) -> None:
    """Merge ``source`` into ``target``: its thread moves, and later replies land on the target."""
    if source.id == target.id:
        raise UsageError("a ticket cannot be merged into itself")
    if target.merged_into_id:
        raise UsageError(f"#{target.number} is itself merged; merge into the ticket it points to")
    if source.merged_into_id:
        raise UsageError(f"#{source.number} is already merged")
    m.Message.update(ticket=target.id).where(m.Message.ticket == source.id).execute()
    moved = m.Participant.select(m.Participant.contact).where(m.Participant.ticket == target.id)
    (
        m.Participant.insert_from(
            m.Participant.select(
                pw.Value(target.id), m.Participant.contact, pw.Value("collaborator")
            ).where((m.Participant.ticket == source.id) & (m.Participant.contact.not_in(moved))),
            [m.Participant.ticket, m.Participant.contact, m.Participant.role],
        ).execute()
    )
    m.Ticket.update(
        merged_into=target.id, status="closed", closed_at=m.utcnow(), updated_at=m.utcnow()
    ).where(m.Ticket.id == source.id).execute()
    m.TicketLink.insert_many(
        [
            {"ticket": source.id, "other": target.id, "kind": "merged_into"},
            {"ticket": target.id, "other": source.id, "kind": "merged_from"},
        ]
    ).execute()
    changes.add(Change(source, "merged", actor, old=source.status, new=f"into #{target.number}"))
    changes.add(Change(target, "merged", actor, new=f"from #{source.number}"))
    source.merged_into = target
    source.status = "closed"


def lock_final(ticket: m.Ticket) -> m.Ticket:
    """Lock the ticket a merge chain ends at, re-checking under the lock."""
    seen: set[int] = set()
    while True:
        locked = lock(ticket)
        if not locked.merged_into_id or locked.id in seen:
            return locked
        seen.add(locked.id)
        ticket = by_id(locked.merged_into_id)


def refresh(ticket: m.Ticket) -> None:
    """Re-read ``ticket`` in place, after a savepoint took back changes made to it."""
    fresh = lock(ticket)
    ticket.__data__ = dict(fresh.__data__)
    ticket.__rel__ = {}
    ticket._dirty.clear()  # type: ignore[attr-defined]


def lock(ticket: m.Ticket) -> m.Ticket:
    """Re-read a ticket for update (PostgreSQL row lock; SQLite is already serialised)."""
    lock_clause = "" if store.is_sqlite() else " FOR UPDATE"
    fresh = _ticket(sql.one(f"{_TICKET_SELECT} WHERE id = ?{lock_clause}", ticket.id))
    if fresh is None:
        raise LookupError(f"ticket {ticket.id} vanished")
    return fresh
