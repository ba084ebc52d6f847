"""Tickets in the database: read as frozen rows, and the writes of their state.

The writes of ticket state — ``insert``, ``write_state``, ``merge_into`` — are
called by ``mailgate.lifecycle`` and nothing else (``tests/test_layering.py``
fails the build otherwise): the lifecycle checks each transition and records its
events; this module only carries it out. Reads are open to everyone.

Hand-written SQL (``store.sql``): these statements run for nearly every mail.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mailgate.config import Config
from mailgate.store import counters, sql
from mailgate.store import sla as sla_rows
from mailgate.store.db import is_sqlite
from mailgate.store.rows import TicketRow

_COLUMNS = (
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
    "tags",
    "foreign_tags",
    "merged_into_id",
    "created_at",
    "updated_at",
    "first_response_at",
    "resolved_at",
    "closed_at",
    "urgency",
    "impact",
)
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM ticket"

# The columns that make up a ticket's state: only ``write_state`` (called by the
# lifecycle) writes them after the ticket exists.
STATE_COLUMNS = frozenset(
    {
        "status",
        "priority",
        "team_id",
        "assignee_id",
        "category",
        "tags",
        "merged_into_id",
        "first_response_at",
        "resolved_at",
        "closed_at",
        "updated_at",
        "urgency",
        "impact",
    }
)
_TIMESTAMPS = frozenset({"first_response_at", "resolved_at", "closed_at", "updated_at"})


def _row(raw: tuple[Any, ...] | None) -> TicketRow | None:
    if raw is None:
        return None
    (
        id_,
        number,
        subject,
        status,
        priority,
        mailbox,
        team_id,
        assignee_id,
        requester_id,
        category,
        tags,
        foreign_tags,
        merged_into_id,
        created_at,
        updated_at,
        first_response_at,
        resolved_at,
        closed_at,
        urgency,
        impact,
    ) = raw
    created = sql.read_ts(created_at)
    updated = sql.read_ts(updated_at)
    assert created is not None and updated is not None
    return TicketRow(
        id=int(id_),
        number=int(number),
        subject=str(subject),
        status=str(status),
        priority=str(priority),
        mailbox=str(mailbox),
        team_id=_id(team_id),
        assignee_id=_id(assignee_id),
        requester_id=int(requester_id),
        category=str(category or ""),
        tags=tuple(json.loads(tags or "[]")),
        foreign_tags=tuple(json.loads(foreign_tags or "[]")),
        merged_into_id=_id(merged_into_id),
        created_at=created,
        updated_at=updated,
        first_response_at=sql.read_ts(first_response_at),
        resolved_at=sql.read_ts(resolved_at),
        closed_at=sql.read_ts(closed_at),
        urgency=str(urgency or ""),
        impact=str(impact or ""),
    )


def _id(value: Any) -> int | None:
    return None if value is None else int(value)


# --- reading ------------------------------------------------------------------------------


def by_id(ticket_id: int) -> TicketRow:
    ticket = _row(sql.one(f"{_SELECT} WHERE id = ?", ticket_id))
    if ticket is None:
        raise LookupError(f"no ticket with id {ticket_id}")
    return ticket


def by_number(number: int) -> TicketRow | None:
    return _row(sql.one(f"{_SELECT} WHERE number = ?", number))


def of_messages(ids: Sequence[str]) -> list[tuple[str, str, TicketRow]]:
    """(Message-ID, direction, its ticket) of every stored message among ``ids``, the
    newest message first — each with its ticket in the same statement (a reply's lookup)."""
    columns = ", ".join(f"t.{c}" for c in _COLUMNS)
    found = [
        row
        for chunk in sql.chunks(ids)
        for row in sql.rows(
            f"SELECT m.id, m.message_id, m.direction, {columns} FROM message m"
            " JOIN ticket t ON t.id = m.ticket_id"
            f" WHERE m.message_id IN ({sql.placeholders(len(chunk))})",
            *chunk,
        )
    ]
    found.sort(key=lambda r: -int(r[0]))
    return [(str(r[1]), str(r[2]), _ticket(r[3:])) for r in found]


def _ticket(raw: tuple[Any, ...]) -> TicketRow:
    ticket = _row(raw)
    assert ticket is not None
    return ticket


def number_of(ticket_id: int | None) -> int | None:
    if ticket_id is None:
        return None
    found = sql.value("SELECT number FROM ticket WHERE id = ?", ticket_id)
    return None if found is None else int(found)


def lock(ticket_id: int) -> TicketRow:
    """Re-read a ticket for update (PostgreSQL row lock; SQLite is already serialised).

    Whether it has SLA clocks comes with it: a ticket without (no policy applies, or
    none configured) then has none to read for its notices (``sla.none_yet``)."""
    lock_clause = "" if is_sqlite() else " FOR UPDATE"
    found = sql.one(
        f"SELECT {', '.join(_COLUMNS)}, {sla_rows.HAS_CLOCKS} FROM ticket"
        f" WHERE id = ?{lock_clause}",
        ticket_id,
    )
    if found is None:
        raise LookupError(f"ticket {ticket_id} vanished")
    if not found[-1]:
        sla_rows.none_yet(ticket_id, timers=False)
    return _ticket(found[:-1])


def try_lock(ticket_id: int) -> TicketRow | None:
    """Lock a ticket unless another transaction holds it (PostgreSQL: SKIP LOCKED); None then.

    For due work: of two processes reaching for the same ticket, one does it and the
    other moves on. SQLite's write transaction is serialised already.
    """
    lock_clause = "" if is_sqlite() else " FOR UPDATE SKIP LOCKED"
    return _row(sql.one(f"{_SELECT} WHERE id = ?{lock_clause}", ticket_id))


def merge_chain(ticket: TicketRow) -> list[TicketRow]:
    """``ticket`` and every ticket its merges lead to, in order (a cycle stops the walk)."""
    chain, seen = [ticket], {ticket.id}
    while chain[-1].merged_into_id and chain[-1].merged_into_id not in seen:
        target = by_id(chain[-1].merged_into_id)
        seen.add(target.id)
        chain.append(target)
    return chain


def final(ticket: TicketRow) -> TicketRow:
    """The ticket a merge chain ends at (the ticket itself when it was never merged)."""
    return merge_chain(ticket)[-1]


def lock_final(ticket: TicketRow) -> TicketRow:
    """Lock the ticket a merge chain ends at, re-checking under the lock."""
    seen: set[int] = set()
    while True:
        locked = lock(ticket.id)
        if not locked.merged_into_id or locked.id in seen:
            return locked
        seen.add(locked.id)
        ticket = by_id(locked.merged_into_id)


def new_numbers(config: Config) -> Iterator[int]:
    """Numbers for a new ticket, in the order ``insert`` tries them (it takes the first
    that is free, so a free number costs no lookup of its own)."""
    if config.gateway.ticket_numbers == "sequential":
        while True:
            yield counters.increment("ticket_number", first=config.gateway.first_ticket_number)
    yield from _random_numbers()


_random_digits = [6]


def _random_numbers() -> Iterator[int]:
    # Six random digits while there is room; a full space widens to seven, and so on.
    # The width only grows, so a busy helpdesk pays the extra tries once.
    while True:
        digits = _random_digits[0]
        for _ in range(4):
            yield secrets.randbelow(9 * 10 ** (digits - 1)) + 10 ** (digits - 1)
        _random_digits[0] = digits + 1


# --- the writes of ticket state: lifecycle only --------------------------------------------


def insert(
    *,
    numbers: Iterator[int],
    subject: str,
    priority: str,
    mailbox: str,
    team_id: int | None,
    requester_id: int,
    category: str,
    tags: Sequence[str],
    foreign_tags: Sequence[str],
    now: dt.datetime,
) -> TicketRow:
    """A new ticket in status ``new``, its requester a participant. Lifecycle only.

    Numbered with the first of ``numbers`` no ticket has: each is tried by the INSERT
    itself (ON CONFLICT … DO NOTHING), not looked up first — one round trip, and a number
    another process takes at the same moment is simply passed over."""
    for number in numbers:
        created = sql.one(
            "INSERT INTO ticket (number, subject, status, priority, mailbox, team_id,"
            " requester_id, category, tags, foreign_tags, created_at, updated_at)"
            " VALUES (?, ?, 'new', ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (number) DO NOTHING RETURNING id",
            number,
            subject,
            priority,
            mailbox,
            team_id,
            requester_id,
            category,
            sql.js(list(tags)),
            sql.js(list(foreign_tags)),
            sql.ts(now),
            sql.ts(now),
        )
        if created is not None:
            break
    else:
        raise AssertionError("new_numbers() never ends")
    ticket_id = int(created[0])
    sla_rows.none_yet(ticket_id)  # nothing to read of a ticket this transaction made
    sql.later(
        "INSERT INTO participant (ticket_id, contact_id, role) VALUES (?, ?, 'requester')",
        ticket_id,
        requester_id,
    )
    return TicketRow(
        id=ticket_id,
        number=number,
        subject=subject,
        status="new",
        priority=priority,
        mailbox=mailbox,
        team_id=team_id,
        assignee_id=None,
        requester_id=requester_id,
        category=category,
        tags=tuple(tags),
        foreign_tags=tuple(foreign_tags),
        merged_into_id=None,
        created_at=now,
        updated_at=now,
        first_response_at=None,
        resolved_at=None,
        closed_at=None,
    )


def write_state(ticket_id: int, fields: Mapping[str, object]) -> None:
    """Write state columns of one ticket (names from ``STATE_COLUMNS``). Lifecycle only."""
    unknown = set(fields) - STATE_COLUMNS
    if unknown:
        raise ValueError(f"not ticket state: {', '.join(sorted(unknown))}")
    values = []
    for name, value in fields.items():
        if name in _TIMESTAMPS:
            value = sql.ts(value)  # type: ignore[arg-type]
        elif name == "tags":
            value = sql.js(list(value))  # type: ignore[call-overload]
        values.append(value)
    assignments = ", ".join(f"{name} = ?" for name in fields)
    sql.run(f"UPDATE ticket SET {assignments} WHERE id = ?", *values, ticket_id)


def merge_into(source_id: int, target_id: int, now: dt.datetime) -> None:
    """Move ``source``'s thread and people to ``target`` and close it as merged. Lifecycle only."""
    sql.run("UPDATE message SET ticket_id = ? WHERE ticket_id = ?", target_id, source_id)
    sql.run(
        "INSERT INTO participant (ticket_id, contact_id, role)"
        " SELECT ?, contact_id, 'collaborator' FROM participant WHERE ticket_id = ?"
        " AND contact_id NOT IN (SELECT contact_id FROM participant WHERE ticket_id = ?)",
        target_id,
        source_id,
        target_id,
    )
    write_state(
        source_id,
        {"merged_into_id": target_id, "status": "closed", "closed_at": now, "updated_at": now},
    )
    link(source_id, target_id, "merged_into", "merged_from")


def link(ticket_id: int, other_id: int, kind: str, back: str) -> None:
    """A relation stored once per direction, so both tickets list it."""
    sql.insert_many(
        "ticket_link",
        ("ticket_id", "other_id", "kind"),
        [(ticket_id, other_id, kind), (other_id, ticket_id, back)],
    )


def touch(ticket_id: int, now: dt.datetime) -> None:
    """Something was added to the ticket's thread (not a change of its state)."""
    sql.later("UPDATE ticket SET updated_at = ? WHERE id = ?", sql.ts(now), ticket_id)
