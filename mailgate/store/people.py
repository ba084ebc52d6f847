"""Contacts and the people of a ticket: requester and collaborators, and recipient health.

Hand-written SQL (``store.sql``): contacts are looked up for nearly every mail.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mailgate.store import sql
from mailgate.store.db import is_sqlite, utcnow
from mailgate.store.rows import ContactRow


def contact(email: str, name: str = "", *, refresh: bool = False) -> ContactRow:
    """The contact row of an address, created on first sight (a name fills a missing one).

    ``refresh``: the name is the one the person gave in the From of their own mail, so
    it replaces a different one on file (people change how they sign; a name written
    by somebody else in a Cc never does). An address written as a name is no name.
    """
    email, name = email.lower()[:320], " ".join(name.split())[:300]
    if "@" in name:
        name = ""
    row = None if is_sqlite() else sql.one(_FIND_OR_ADD, email, email, name, utcnow())
    if row is None:  # SQLite, or added by another transaction after this one's snapshot
        row = sql.one("SELECT id, name, 0 FROM contact WHERE email = ?", email)
    if row is None:
        contact_id = sql.insert(
            "INSERT INTO contact (email, name, created_at, undeliverable_reason)"
            " VALUES (?, ?, ?, '')",
            email,
            name,
            sql.ts(utcnow()),
        )
        known = name
    elif row[2]:  # just added
        contact_id, known = int(row[0]), name
    else:
        contact_id, known = int(row[0]), str(row[1] or "")
        if name and (not known or (refresh and name != known)):
            sql.run("UPDATE contact SET name = ? WHERE id = ?", name, contact_id)
            known = name
    return ContactRow(id=contact_id, email=email, name=known)


def keep_name(email: str, name: str) -> None:
    """The name a participant of a ticket (so a contact on file) signs their mail with
    replaces a different one on file — ``contact(email, name, refresh=True)`` when nothing
    is read back: written with the transaction's next statement (``sql.later``)."""
    email, name = email.lower()[:320], " ".join(name.split())[:300]
    if name and "@" not in name:
        sql.later(
            "UPDATE contact SET name = ? WHERE email = ? AND (name IS NULL OR name <> ?)",
            name,
            email,
            name,
        )


# PostgreSQL: the contact of an address, added when there is none, in one round trip
# (id, name, whether added); no row when another transaction added it meanwhile.
_FIND_OR_ADD = (
    "WITH found AS (SELECT id, name FROM contact WHERE email = ?),"
    " added AS (INSERT INTO contact (email, name, created_at, undeliverable_reason)"
    " SELECT CAST(? AS VARCHAR), CAST(? AS VARCHAR), CAST(? AS TIMESTAMP), ''"
    " WHERE NOT EXISTS (SELECT 1 FROM found) ON CONFLICT (email) DO NOTHING RETURNING id, name)"
    " SELECT id, name, FALSE FROM found UNION ALL SELECT id, name, TRUE FROM added"
)


def by_id(contact_id: int) -> ContactRow | None:
    row = sql.one("SELECT email, name FROM contact WHERE id = ?", contact_id)
    if row is None:
        return None
    return ContactRow(id=contact_id, email=str(row[0]), name=str(row[1] or ""))


def role_of(ticket_id: int, email: str) -> str | None:
    """``requester`` or ``collaborator`` when ``email`` belongs to the ticket, else None."""
    role = sql.value(
        "SELECT p.role FROM participant p JOIN contact c ON c.id = p.contact_id"
        " WHERE p.ticket_id = ? AND c.email = ?",
        ticket_id,
        email,
    )
    return None if role is None else str(role)


def emails_of(ticket_id: int) -> set[str]:
    """Every address on the ticket's conversation (requester and collaborators)."""
    return {
        str(r[0])
        for r in sql.rows(
            "SELECT c.email FROM participant p JOIN contact c ON c.id = p.contact_id"
            " WHERE p.ticket_id = ?",
            ticket_id,
        )
    }


def collaborators(ticket_id: int) -> list[ContactRow]:
    return [
        ContactRow(id=int(r[0]), email=str(r[1]), name=str(r[2] or ""))
        for r in sql.rows(
            "SELECT c.id, c.email, c.name FROM participant p JOIN contact c ON c.id = p.contact_id"
            " WHERE p.ticket_id = ? AND p.role = 'collaborator' ORDER BY p.id",
            ticket_id,
        )
    ]


def collaborator_count(ticket_id: int) -> int:
    found = sql.value(
        "SELECT COUNT(*) FROM participant WHERE ticket_id = ? AND role = 'collaborator'", ticket_id
    )
    return int(found or 0)


def add_collaborator(ticket_id: int, contact_id: int) -> None:
    sql.run(
        "INSERT INTO participant (ticket_id, contact_id, role) VALUES (?, ?, 'collaborator')",
        ticket_id,
        contact_id,
    )


def follow_up_of(ticket_id: int, requester_id: int) -> int | None:
    """The number of the closed ticket this one continues — only if this requester was on it."""
    found = sql.value(
        "SELECT t.number FROM ticket_link l JOIN ticket t ON t.id = l.other_id"
        " JOIN participant p ON p.ticket_id = t.id AND p.contact_id = ?"
        " WHERE l.ticket_id = ? AND l.kind = 'follow_up_of'",
        requester_id,
        ticket_id,
    )
    return None if found is None else int(found)


@dataclass(frozen=True, slots=True)
class TicketPeople:
    """What a ticket's notices are addressed and threaded by: ``by_id`` of its requester,
    its ``collaborators``, ``follow_up_of`` and ``messages.conversation_ids``."""

    requester: ContactRow | None
    collaborators: tuple[ContactRow, ...]
    follow_up_of: int | None
    conversation: tuple[str, ...]


# The four reads as one statement (every mail's notices need them): (part, order, n, a, b).
_OF_TICKET = (
    "SELECT 0, 0, id, email, name FROM contact WHERE id = ?"
    " UNION ALL SELECT 1, p.id, c.id, c.email, c.name FROM participant p"
    " JOIN contact c ON c.id = p.contact_id WHERE p.ticket_id = ? AND p.role = 'collaborator'"
    " UNION ALL SELECT 2, 0, t.number, '', '' FROM ticket_link l JOIN ticket t"
    " ON t.id = l.other_id JOIN participant p ON p.ticket_id = t.id AND p.contact_id = ?"
    " WHERE l.ticket_id = ? AND l.kind = 'follow_up_of'"
    " UNION ALL SELECT 3, id, id, message_id, '' FROM (SELECT id, message_id FROM message"
    " WHERE ticket_id = ? AND direction = 'in' ORDER BY id LIMIT 1) AS first"
    " UNION ALL SELECT 4, id, id, message_id, '' FROM (SELECT id, message_id FROM message"
    " WHERE ticket_id = ? AND kind IN ('customer', 'external') ORDER BY id DESC LIMIT 3)"
    " AS latest"
)


def of_ticket(ticket_id: int, requester_id: int) -> TicketPeople:
    """Requester, collaborators, the ticket it follows up and its conversation's
    Message-IDs, in one round trip (each as its own function above would read it)."""
    found = sorted(
        sql.rows(
            _OF_TICKET, requester_id, ticket_id, requester_id, ticket_id, ticket_id, ticket_id
        ),
        key=lambda r: (int(r[0]), int(r[1])),
    )
    parts: dict[int, list[tuple[Any, ...]]] = {}
    for row in found:
        parts.setdefault(int(row[0]), []).append(row)
    requester = [ContactRow(int(r[2]), str(r[3]), str(r[4] or "")) for r in parts.get(0, [])]
    follow_up = parts.get(2)
    return TicketPeople(
        requester=requester[0] if requester else None,
        collaborators=tuple(
            ContactRow(int(r[2]), str(r[3]), str(r[4] or "")) for r in parts.get(1, [])
        ),
        follow_up_of=int(follow_up[0][2]) if follow_up else None,
        conversation=tuple(str(r[3]) for r in [*parts.get(3, []), *parts.get(4, [])]),
    )


def mark_undeliverable(email: str, until: dt.datetime, reason: str) -> None:
    """A permanent bounce: no automatic mail to the address until ``until``."""
    person = contact(email)
    sql.run(
        "UPDATE contact SET undeliverable_until = ?, undeliverable_reason = ? WHERE id = ?",
        sql.ts(until),
        reason[:1000],
        person.id,
    )


def undeliverable(emails: Sequence[str], now: dt.datetime) -> dict[str, tuple[dt.datetime, str]]:
    """The addresses among ``emails`` that bounced permanently: until when, and why."""
    found = {}
    rows = [
        row
        for chunk in sql.chunks(emails)
        for row in sql.rows(
            "SELECT email, undeliverable_until, undeliverable_reason FROM contact"
            f" WHERE email IN ({sql.placeholders(len(chunk))}) AND undeliverable_until > ?",
            *chunk,
            sql.ts(now),
        )
    ]
    for email, until, reason in rows:
        when = sql.read_ts(until)
        assert when is not None
        found[str(email)] = (when, str(reason or ""))
    return found


def marked_undeliverable(now: dt.datetime, *, current_only: bool) -> list[dict[str, Any]]:
    """Addresses a permanent bounce marked (only those still held back with ``current_only``),
    each with the ticket and the report of the latest bounce that did it (its event)."""
    query = (
        "SELECT email, undeliverable_until, undeliverable_reason FROM contact"
        " WHERE undeliverable_until IS NOT NULL"
    )
    params: list[Any] = []
    if current_only:
        query += " AND undeliverable_until > ?"
        params.append(sql.ts(now))
    found: list[dict[str, Any]] = [
        {"address": str(email), "until": sql.read_ts(until), "reason": str(reason or "")}
        for email, until, reason in sql.rows(query + " ORDER BY email", *params)
    ]
    latest: dict[str, tuple[int | None, str]] = {}
    if found:
        for email, number, detail in sql.rows(
            "SELECT e.new, t.number, e.detail FROM event e JOIN ticket t ON t.id = e.ticket_id"
            f" WHERE e.kind = 'delivery_failed' AND e.new IN ({sql.placeholders(len(found))})"
            " ORDER BY e.id",
            *(f["address"] for f in found),
        ):
            latest[str(email)] = (int(number), str(detail or ""))
    for row in found:
        row["ticket"], row["bounce"] = latest.get(row["address"], (None, row["reason"]))
        row["held_back"] = row["until"] is not None and row["until"] > now
    return found


def clear_undeliverable(email: str) -> bool:
    """Automatic mail may go to ``email`` again; False when it was not marked."""
    cleared = sql.run(
        "UPDATE contact SET undeliverable_until = NULL, undeliverable_reason = ''"
        " WHERE email = ? AND undeliverable_until IS NOT NULL",
        email,
    )
    return bool(cleared.rowcount)
