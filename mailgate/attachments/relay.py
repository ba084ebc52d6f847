"""Which files a notice carries, and how the ones it does not carry are named.

* ``agent_reply`` and ``resolution`` (to the requester and collaborators): every file of the agent's
  message, inline images with fresh Content-IDs (the HTML's ``cid:`` references are
  rewritten to match);
* ``customer_reply``, ``assignment``, ``reopened`` (to agents): the customer's files
  while they fit in ``attach_max_bytes`` (``[notices]``, or the mailbox's
  ``[mailbox.notices]``); each file beyond it is one line with its name, type, size
  and the command that gets it;
* never: signature images and tracking pixels (an inline image of at most
  ``DECORATION_BYTES``, or any image of 1×1 pixels), files a limit kept out, and
  executables unless ``notices.relay_executables`` (those are listed instead);
* internal notes carry nothing to anybody: no notice kind here is sent for a note.

Imports the store (reads), the blob store through the context, config and ``mail``.
"""

from __future__ import annotations

import functools
import secrets
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import escape

from mailgate.blobs import BlobStore
from mailgate.config import Config, Mailbox
from mailgate.context import Context
from mailgate.mail.compose import OutFile
from mailgate.store import attachments as rows
from mailgate.store.attachments import AttachmentRow

# An agent's answer, and a resolution written with files (#resolve by mail).
TO_CUSTOMER = frozenset({"agent_reply", "resolution"})
TO_AGENTS = frozenset({"customer_reply", "assignment", "reopened"})
# Inline images up to this size are logos of signatures (or trackers), not content.
DECORATION_BYTES = 2048
EXECUTABLE_EXTENSIONS = frozenset(
    {
        "exe", "com", "bat", "cmd", "scr", "pif", "msi", "msp", "dll", "cpl", "hta", "jar",
        "js", "jse", "vbs", "vbe", "wsf", "wsh", "ps1", "psm1", "reg", "lnk", "app", "apk",
    }
)  # fmt: skip
EXECUTABLE_TYPES = frozenset(
    {
        "application/x-msdownload", "application/x-msdos-program", "application/x-dosexec",
        "application/x-executable", "application/x-ms-installer", "application/x-msi",
        "application/java-archive", "application/x-sh", "application/hta",
        "application/javascript", "text/javascript", "application/x-bat",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Carried:
    """The files one notice carries, the lines naming those it does not, and the
    Content-IDs of its inline images (the sender's → ours)."""

    files: tuple[OutFile, ...] = ()
    listed: tuple[str, ...] = ()
    cids: dict[str, str] = field(default_factory=dict)

    def html(self, markup: str) -> str:
        for old, new in self.cids.items():
            markup = markup.replace(f"cid:{old}", f"cid:{new}")
        return markup

    def bodies(self, text: str, html: str) -> tuple[str, str]:
        """A notice's rendered (text, html) with our Content-IDs and, at the end, the
        files it does not carry."""
        html = self.html(html)
        if self.listed:
            text += "\nFiles not attached to this mail:\n" + "".join(
                f"- {line}\n" for line in self.listed
            )
            if html:
                items = "".join(f"<li>{escape(line)}</li>" for line in self.listed)
                html += f"<p>Files not attached to this mail:</p><ul>{items}</ul>\n"
        return text, html


def attach_max_bytes(ctx: Context, box: Mailbox) -> int:
    return _attach_max_bytes(ctx.config, box)


def _attach_max_bytes(config: Config, box: Mailbox) -> int:
    own = box.notices.attach_max_bytes
    return own if own >= 0 else config.notices.attach_max_bytes


def is_executable(row: AttachmentRow) -> bool:
    extension = row.filename.rpartition(".")[2].lower() if "." in row.filename else ""
    original = row.original_filename.rpartition(".")[2].lower()
    return (
        extension in EXECUTABLE_EXTENSIONS
        or original in EXECUTABLE_EXTENSIONS
        or row.content_type.lower() in EXECUTABLE_TYPES
    )


def is_decoration(row: AttachmentRow, head: bytes) -> bool:
    """A signature logo or a tracking pixel: an inline image of at most 2 KiB, or 1×1."""
    if not row.content_type.lower().startswith("image/"):
        return False
    if (row.inline or row.content_id) and row.size <= DECORATION_BYTES:
        return True
    return image_size(head) == (1, 1)


def image_size(head: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG or GIF from its first bytes; None for anything else."""
    if head.startswith(b"\x89PNG\r\n\x1a\n") and len(head) >= 24:
        width, height = struct.unpack(">II", head[16:24])
        return int(width), int(height)
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        width, height = struct.unpack("<HH", head[6:10])
        return int(width), int(height)
    return None


def for_notice_of(
    config: Config, blobs: BlobStore, kind: str, message_id: int, box: Mailbox
) -> Carried:
    """The files of thread entry ``message_id`` that a notice of ``kind`` carries (a queued
    notice knows its entry by id: ``notices.snapshot``)."""
    if kind not in TO_CUSTOMER | TO_AGENTS:
        return Carried()
    found = rows.of_message(message_id)
    if not found:
        return Carried()
    budget = _attach_max_bytes(config, box) if kind in TO_AGENTS else None
    files: list[OutFile] = []
    listed: list[str] = []
    cids: dict[str, str] = {}
    token = secrets.token_hex(6)
    for row in found:
        if not row.kept or not blobs.exists(row.sha256):
            listed.append(_line(kind, row, "not kept: over the size limit"))
            continue
        with blobs.open(row.sha256) as source:
            head = source.read(32)
        if is_decoration(row, head):
            continue
        if is_executable(row) and not config.notices.relay_executables:
            listed.append(_line(kind, row, "an executable, not relayed"))
            continue
        if budget is not None:
            if row.size > budget:
                listed.append(_line(kind, row, "too large for this mail"))
                continue
            budget -= row.size
        content_id = ""
        if row.content_id:
            content_id = f"{len(files) + 1}.{token}@{config.gateway.domain}"
            cids[row.content_id] = content_id
        files.append(
            OutFile(
                filename=row.filename,
                content_type=row.content_type,
                # read as the mail is built
                chunks=functools.partial(_read_chunks, blobs, row.sha256),
                content_id=content_id,
                inline=row.inline,
            )
        )
    return Carried(tuple(files), tuple(listed), cids)


def _read_chunks(blobs: BlobStore, sha256: str) -> Iterator[bytes]:
    with blobs.open(sha256) as source:
        while chunk := source.read(READ_CHUNK):
            yield chunk


READ_CHUNK = 1 << 20


def size_text(size: int) -> str:
    """A size as people read it: 812 bytes, 14 KiB, 2.5 MiB."""
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KiB"
    mib = size / (1024 * 1024)
    return f"{mib:.0f} MiB" if mib >= 10 or mib == int(mib) else f"{mib:.1f} MiB"


def _line(kind: str, row: AttachmentRow, why: str) -> str:
    described = f"{row.filename} ({row.content_type}, {size_text(row.size)})"
    if kind in TO_AGENTS:
        return f"{described}: {why} — mailgate attachments get {row.id}"
    return f"{described}: {why}"
