"""Attachments as frozen rows: of a ticket, of one message, or by id.

Only reads; the rows are written with their message (``store.messages.add_attachments``).
Hand-written SQL (``store.sql``): ``of_message`` runs for every notice to agents
inside the ingest transaction, and peewee building the joined query cost more than
rendering the notice (``README.md``, "Figures measured").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailgate.store import sql


@dataclass(frozen=True, slots=True)
class AttachmentRow:
    id: int
    message_id: int
    ticket_id: int
    sha256: str
    size: int
    content_type: str
    filename: str
    original_filename: str
    content_id: str
    inline: bool
    kept: bool


_SELECT = (
    "SELECT a.id, a.message_id, m.ticket_id, a.sha256, a.size, a.content_type, a.filename,"
    " a.original_filename, a.content_id, a.inline, a.kept"
    " FROM attachment a JOIN message m ON m.id = a.message_id"
)


def _row(r: tuple[Any, ...]) -> AttachmentRow:
    return AttachmentRow(
        id=int(r[0]),
        message_id=int(r[1]),
        ticket_id=int(r[2]),
        sha256=str(r[3]),
        size=int(r[4]),
        content_type=str(r[5]),
        filename=str(r[6]),
        original_filename=str(r[7] or r[6]),
        content_id=str(r[8] or ""),
        inline=bool(r[9]),
        kept=bool(r[10]),
    )


def of_ticket(ticket_id: int) -> list[AttachmentRow]:
    """Every attachment of a ticket's thread, in the order the messages came."""
    found = sql.rows(f"{_SELECT} WHERE m.ticket_id = ? ORDER BY m.id, a.id", ticket_id)
    return [_row(r) for r in found]


def of_message(message_id: int) -> list[AttachmentRow]:
    found = sql.rows(f"{_SELECT} WHERE a.message_id = ? ORDER BY a.id", message_id)
    return [_row(r) for r in found]


def by_id(attachment_id: int) -> AttachmentRow | None:
    found = sql.one(f"{_SELECT} WHERE a.id = ?", attachment_id)
    return None if found is None else _row(found)
