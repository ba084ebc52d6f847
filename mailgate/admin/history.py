"""Importing history: an mbox, a Maildir or a folder of .eml files, without a word to anyone.

Every mail goes through ``intake.ingest`` like any other (source ``import``): stored
first, threaded as it would have been — in the order of the mails' dates, so a reply
finds the mail it answers — and recorded exactly once (a second run, or a run after an
interruption, finds the receipts and skips what is there). Nothing is announced: an
imported mail queues no notice (no outbox row) and never counts against the circuit
breaker; its ticket was opened at the mail's Date. At the end the imported tickets are
``open`` (or ``closed`` with ``--status closed``): a final "thanks, solved" in the
history resolves nothing by itself.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import mailbox
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mailgate import intake, lifecycle, reactions
from mailgate.context import Context
from mailgate.errors import TemporaryFailure, UsageError
from mailgate.events import Journal
from mailgate.store import tickets as ticket_rows
from mailgate.store import write_transaction

_DATE = re.compile(rb"^date:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.I | re.M)


@dataclass
class Summary:
    """What an import did, counted as it goes (the progress shows it)."""

    total: int = 0
    done: int = 0
    tickets: int = 0
    replies: int = 0
    duplicates: int = 0
    quarantined: int = 0
    other: int = 0
    skipped: int = 0  # older than --since
    created: list[int] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.tickets} tickets, {self.replies} replies, {self.duplicates} already there,"
            f" {self.quarantined} quarantined"
            + (f", {self.other} other" if self.other else "")
            + (f", {self.skipped} before --since" if self.skipped else "")
        )


Progress = Callable[[Summary], None]


def import_history(
    ctx: Context,
    path: Path,
    *,
    mailbox_name: str | None = None,
    since: dt.datetime | None = None,
    status: str = "open",
    progress: Progress | None = None,
) -> Summary:
    """Import every mail under ``path`` once, oldest first; the summary."""
    if status not in ("open", "closed"):
        raise UsageError(f"--status must be open or closed, not {status!r}")
    if mailbox_name is not None:
        ctx.config.mailbox(mailbox_name)
    mails = sorted(_read(path), key=lambda item: item[0])
    summary = Summary(total=len(mails))
    for when, load in mails:
        if since is not None and when < since:
            summary.skipped += 1
        else:
            _one(ctx, load(), mailbox_name, summary)
        summary.done += 1
        if progress is not None:
            progress(summary)
    _settle(ctx, summary.created, status)
    return summary


def _one(ctx: Context, raw: bytes, mailbox_name: str | None, summary: Summary) -> None:
    try:
        outcome = intake.ingest(ctx, raw, source="import", mailbox=mailbox_name)
    except TemporaryFailure as exc:
        raise UsageError(f"the database is unavailable ({exc}); run the import again") from None
    if outcome.action == "created":
        summary.tickets += 1
        if outcome.ticket is not None:
            summary.created.append(outcome.ticket)
    elif outcome.action in ("appended", "reopened"):
        summary.replies += 1
    elif outcome.action == "duplicate":
        summary.duplicates += 1
    elif outcome.action == "quarantined":
        summary.quarantined += 1
    else:
        summary.other += 1


def _settle(ctx: Context, numbers: list[int], status: str) -> None:
    """The imported tickets are open (or closed): history resolves nothing by itself."""
    for number in numbers:
        with write_transaction():
            found = ticket_rows.by_number(number)
            if found is None or found.merged_into_id:
                continue
            journal = Journal()
            ticket = ticket_rows.lock(found.id)
            lifecycle.change(ticket, journal, ctx.config, actor="admin:import", status=status)
            reactions.finish(ctx, journal, quiet=True)


def _read(path: Path) -> list[tuple[dt.datetime, Callable[[], bytes]]]:
    """(date, how to load the bytes) of every mail under ``path``, without holding them all."""
    if not path.exists():
        raise UsageError(f"{path}: no such file or directory")
    if path.is_dir() and (path / "cur").is_dir() and (path / "new").is_dir():
        box = mailbox.Maildir(path, factory=None, create=False)
        return [(_date(box.get_bytes(k)), _loader(box, k)) for k in box.iterkeys()]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.eml") if p.is_file())
        if not files:
            raise UsageError(f"{path}: no .eml files and no Maildir (cur/, new/)")
        return [(_date(_head(p)), p.read_bytes) for p in files]
    if not _looks_like_mbox(path):
        raise UsageError(f"{path}: not an mbox file (it must start with a 'From ' line)")
    mbox = mailbox.mbox(path, factory=None, create=False)
    return [(_date(mbox.get_bytes(k)), _loader(mbox, k)) for k in mbox.iterkeys()]


def _loader(box: mailbox.Mailbox[mailbox.Message], key: str) -> Callable[[], bytes]:
    return lambda: box.get_bytes(key)


def _looks_like_mbox(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(5) == b"From "


def _head(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(64 * 1024)


def _date(raw: bytes) -> dt.datetime:
    """The Date of a mail as naive UTC (the epoch when it has none: those come first)."""
    end = raw.find(b"\n\n")
    head = raw[: end if end != -1 else 64 * 1024]
    match = _DATE.search(head)
    if match is not None:
        try:
            parsed = email.utils.parsedate_to_datetime(match.group(1).decode("ascii", "replace"))
        except (TypeError, ValueError, IndexError):
            parsed = None
        if parsed is not None:
            if parsed.tzinfo is not None:
                parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
            return parsed
    return dt.datetime(1970, 1, 1)
