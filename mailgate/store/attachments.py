"""Attachments as frozen rows: of a ticket, of one message, or by id.

Only reads; the rows are written with their message (``store.messages.add_attachments``).
Imports the models and the standard library.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mailgate.store import models as m


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


def _rows(query: Iterable[m.Attachment]) -> list[AttachmentRow]:
    return [
        AttachmentRow(
            id=a.id,
            message_id=a.message_id,
            ticket_id=a.message.ticket_id,
            sha256=a.sha256,
            size=int(a.size),
            content_type=a.content_type,
            filename=a.filename,
            original_filename=a.original_filename or a.filename,
            content_id=a.content_id,
            inline=bool(a.inline),
            kept=bool(a.kept),
        )
        for a in query
    ]


def of_ticket(ticket_id: int) -> list[AttachmentRow]:
    """Every attachment of a ticket's thread, in the order the messages came."""
    query = (
        m.Attachment.select(m.Attachment, m.Message.ticket)
        .join(m.Message)
        .where(m.Message.ticket == ticket_id)
        .order_by(m.Message.id, m.Attachment.id)
    )
    return _rows(query)


def of_message(message_id: int) -> list[AttachmentRow]:
    query = (
        m.Attachment.select(m.Attachment, m.Message.ticket)
        .join(m.Message)
        .where(m.Attachment.message == message_id)
        .order_by(m.Attachment.id)
    )
    return _rows(query)


def by_id(attachment_id: int) -> AttachmentRow | None:
    query = (
        m.Attachment.select(m.Attachment, m.Message.ticket)
        .join(m.Message)
        .where(m.Attachment.id == attachment_id)
    )
    found = _rows(query)
    return found[0] if found else None
