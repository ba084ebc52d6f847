"""Attachments: listing a ticket's files and getting their exact bytes.

The front door of the capability: ``listing`` (what ``mailgate attachments list``
prints and its ``--json`` promises), ``fetch`` (one file's row and a reader of its
bytes in the blob store, for ``mailgate attachments get``). The files themselves are
content-addressed in the blob store: the same file sent twice is stored once.

Imports the store (reads only), the blob store and errors; never the edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from mailgate.attachments.files import StoredFile, check_outbound_size, store_files
from mailgate.attachments.relay import Carried, for_notice_of, size_text
from mailgate.blobs import BlobStore
from mailgate.context import Context
from mailgate.errors import TemporaryFailure, UsageError
from mailgate.mail.parse import HashSink, Unparseable, parse
from mailgate.store import attachments as rows
from mailgate.store import views
from mailgate.store.attachments import AttachmentRow

__all__ = [
    "AttachmentRow",
    "Carried",
    "Fetched",
    "StoredFile",
    "as_dict",
    "check_outbound_size",
    "fetch",
    "for_notice_of",
    "listing",
    "size_text",
    "store_files",
]


def as_dict(row: AttachmentRow) -> dict[str, Any]:
    """The JSON shape of one attachment (``attachments list --json``, ``tickets show --json``)."""
    return {
        "id": row.id,
        "message": row.message_id,
        "filename": row.filename,
        "original_filename": row.original_filename,
        "content_type": row.content_type,
        "size": row.size,
        "sha256": row.sha256,
        "inline": row.inline,
        "content_id": row.content_id,
        "kept": row.kept,
    }


def listing(ctx: Context, number: int | str) -> list[dict[str, Any]]:
    """Every attachment of ticket ``number`` (``482913`` or ``#482913``), thread order; a
    forwarded mail (message/rfc822) with the files inside it under ``contains``."""
    found = []
    for row in rows.of_ticket(views.ticket(number).id):
        entry = as_dict(row)
        if row.content_type in FORWARDED_TYPES and row.kept:
            entry["contains"] = inner_files(ctx.blobs, row.sha256)
        found.append(entry)
    return found


FORWARDED_TYPES = ("message/rfc822", "message/global")


def inner_files(blobs: BlobStore, sha256: str) -> list[dict[str, Any]]:
    """The files of a stored forwarded mail: name, type, size, sha256 (only hashed, never
    stored twice); [] when it cannot be read."""
    try:
        mail = parse(blobs.get(sha256), HashSink())
    except (OSError, TemporaryFailure, Unparseable):
        return []
    return [
        {
            "filename": a.filename,
            "content_type": a.content_type,
            "size": a.size,
            "sha256": a.sha256,
        }
        for a in mail.attachments
    ]


@dataclass(frozen=True)
class Fetched:
    row: AttachmentRow
    blobs: BlobStore

    def open(self) -> BinaryIO:
        """The file's bytes as a reader (close it): works with every blob store."""
        return self.blobs.open(self.row.sha256)

    @property
    def path(self) -> Path | None:
        """The file on this machine, only when the blob store is a local folder."""
        return self.blobs.local_path(self.row.sha256)


def fetch(ctx: Context, attachment_id: int | str) -> Fetched:
    """The attachment ``attachment_id`` and where its bytes are; one clear line if not there."""
    try:
        wanted = int(str(attachment_id).strip().lstrip("#"))
    except ValueError:
        raise UsageError(f"not an attachment id: {attachment_id!r}") from None
    row = rows.by_id(wanted)
    if row is None:
        raise UsageError(f"no attachment {wanted}")
    if not row.kept:
        raise UsageError(
            f"attachment {wanted} ({row.filename}) was not kept: it was over a size limit"
        )
    if not ctx.blobs.exists(row.sha256):
        raise UsageError(f"attachment {wanted}: file {row.sha256} missing from the blob store")
    return Fetched(row, ctx.blobs)
