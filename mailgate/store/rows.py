"""Frozen rows: what the store returns, and what the steps of mailgate pass each other.

A row is a value: nobody changes it in place. A step that changes a ticket gets
the new value back (``lifecycle.change`` returns it) and passes that on; reading
the row again is ``store.tickets.by_id``. No live ORM object leaves ``store/``.

Imports only the standard library.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TicketRow:
    id: int
    number: int
    subject: str
    status: str
    priority: str
    mailbox: str
    team_id: int | None
    assignee_id: int | None
    requester_id: int
    category: str
    tags: tuple[str, ...]
    # Foreign tags (a vendor's "[Ticket#123]") seen in the subject, kept on our replies.
    foreign_tags: tuple[str, ...]
    merged_into_id: int | None
    created_at: dt.datetime
    updated_at: dt.datetime
    first_response_at: dt.datetime | None
    resolved_at: dt.datetime | None
    closed_at: dt.datetime | None
    urgency: str = ""  # low | medium | high, or '' (unset)
    impact: str = ""


@dataclass(frozen=True, slots=True)
class MessageRow:
    """One entry of a ticket's thread (as much of it as the steps after storing need)."""

    id: int
    ticket_id: int
    direction: str  # in | out
    kind: str  # customer agent note system auto_reply bounce external
    message_id: str
    subject: str = ""
    text: str = ""
    full_text: str = ""
    from_addr: str = ""
    from_name: str = ""
    verified: bool = False
    created_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class ReceiptRow:
    """One received mail: the idempotency key, how far processing got, and its lease."""

    id: int
    message_id: str
    sha256: str
    fingerprint: str
    size: int
    sender: str
    envelope: dict[str, object]
    source: str
    mailbox: str
    status: str  # received processed quarantined
    action: str
    reason: str
    attempts: int
    ticket_id: int | None
    received_at: dt.datetime


@dataclass(frozen=True, slots=True)
class ContactRow:
    id: int
    email: str
    name: str


@dataclass(frozen=True, slots=True)
class AgentRow:
    id: int
    key: str
    name: str
    emails: tuple[str, ...]
    role: str = "agent"


@dataclass(frozen=True, slots=True)
class TeamRow:
    id: int
    key: str
    name: str
    address: str


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """An outbox item as the admin commands and the sender's recovery see it."""

    id: int
    ticket_id: int | None
    notice: str
    message_id: str
    status: str
    attempts: int


@dataclass(frozen=True, slots=True)
class OutboxMail:
    """A mail the sender has claimed and marked ``sending``: what it hands to the relay."""

    id: int
    ticket_id: int | None
    notice: str
    sender: str
    recipients: tuple[str, ...]
    content: bytes
    message_id: str
    attempts: int  # including this one
