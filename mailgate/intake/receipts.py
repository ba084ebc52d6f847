"""Step 1 of every mail: store it first, recognise it when it comes again, lease it.

The raw bytes go to the blob store and one receipt row is committed before
anything else happens, so from then on nothing can be lost: a crash, a bug or a
database outage leaves the receipt behind (the recovery job finishes it), and a
re-delivery of the same mail is recognised — by Message-ID, or by the sha256 of
mails without one — and answered "duplicate".

While one delivery processes a mail it holds the receipt's lease; nobody else
does. Imports the store and ``mailgate.mail``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import hashlib
import re
from dataclasses import replace

from mailgate.envelope import Envelope, Outcome
from mailgate.errors import TemporaryFailure
from mailgate.mail.charsets import decode_header
from mailgate.mail.mime import blank_line
from mailgate.mail.parse import first_message_id, synthesized_message_id
from mailgate.store import PeeweeException, clean, inflight, write_transaction
from mailgate.store import receipts as receipt_rows
from mailgate.store import tickets as ticket_rows
from mailgate.store.db import utcnow
from mailgate.store.rows import ReceiptRow

# A mail that crashed the process this many times is quarantined without another try.
MAX_ATTEMPTS = 3
# How long one delivery may take before another process may take the mail over.
LEASE = dt.timedelta(minutes=5)

# A field's name after a newline, in the lowercased header block (a leading newline
# added): searched from each LF at C speed, where ``^`` with re.MULTILINE and re.I is tried
# at every position. Its value, continuation lines included, is read from the block itself.
_HEADER_NAME = re.compile(rb"\n(message-id|from)[ \t]*:")
_HEADER_VALUE = re.compile(rb".*(?:\r?\n[ \t].*)*")
_BRACKETED = re.compile(r"<([^<>\s]+@[^<>\s]+)>")


def peek(raw: bytes, sha256: str) -> tuple[str, str]:
    """Message-ID and sender address from the header block alone: the idempotency key.

    A regular expression over the header bytes, not a parser: this runs before the
    mail is safely stored, so it must be cheap and must not fail on garbage.
    """
    blank = blank_line(raw)
    head = raw[: blank[0] if blank else min(len(raw), 256 * 1024)]
    found: dict[bytes, str] = {}
    for match in _HEADER_NAME.finditer(b"\n" + head.lower()):
        name = match.group(1)
        if name not in found:
            value = _HEADER_VALUE.match(head, match.end() - 1)
            found[name] = value.group().decode("ascii", "surrogateescape") if value else ""
    message_id = first_message_id(found.get(b"message-id", ""))
    if not _printable_ascii(message_id) or len(message_id) > 900:
        # An ID with raw bytes or control characters is no key anyone else would send
        # again the same way: the bytes themselves are the better key.
        message_id = ""
    sender_field = found.get(b"from", "")
    bracketed = _BRACKETED.search(sender_field)
    if bracketed:
        sender = bracketed.group(1)
    else:
        sender = email.utils.parseaddr(decode_header(sender_field))[1]
    sender = "".join(sender.split()).lower()
    if not _printable_ascii(sender):
        sender = clean(decode_header(sender))
    return message_id or synthesized_message_id(sha256), sender


def _printable_ascii(text: str) -> bool:
    return text.isascii() and text.isprintable()


def fingerprint(raw: bytes) -> str:
    """The sha256 of the body: equal for one mail delivered twice (only trace headers
    differ), different for two mails a broken client sent with the same Message-ID."""
    blank = blank_line(raw)
    cut = blank[1] if blank else len(raw)
    return hashlib.sha256(memoryview(raw)[cut:]).hexdigest()


def receive(
    message_id: str,
    sha256: str,
    sender: str,
    size: int,
    source: str,
    mailbox: str,
    envelope: Envelope,
    fingerprint: str,
    *,
    in_flight: str = "",
) -> tuple[ReceiptRow, int | None]:
    """Commit the receipt and take the lease on it.

    Returns the receipt and, when this delivery must not process it, a ticket number
    (0 if none): a duplicate of a finished mail, or of one another delivery is
    processing right now (the same mail reaching two processes at once).

    ``in_flight``: the Message-ID this session marks in flight (``intake.order``) before
    the receipt it creates or takes over is committed; whoever calls lets go of it
    (``order.in_flight(…, taken=True)``).
    """
    now = utcnow()
    # A Message-ID reused for another mail (other sender, or other text: broken clients
    # and monitoring tools do this) is not a duplicate: such a mail gets a derived key.
    with write_transaction():
        for key in keys(message_id, sha256):
            created = receipt_rows.insert(
                key=key,
                sha256=sha256,
                fingerprint=fingerprint,
                size=size,
                sender=sender[:320],
                source=source,
                mailbox=mailbox,
                envelope=envelope.as_json(),
                now=now,
                lease_until=now + LEASE,
                in_flight=in_flight,  # taken in the INSERT's round trip
            )
            if created is not None:
                return created, None
            existing = receipt_rows.by_message_id(key)
            if existing is None or not _same_mail(existing, sender, fingerprint):
                continue
            if existing.status != "received":
                return existing, ticket_rows.number_of(existing.ticket_id) or 0
            if in_flight and not inflight.holds(in_flight):
                inflight.hold(in_flight)  # before the take-over is committed, as above
            claimed = claim(existing, now)
            if claimed is None:  # being processed by another delivery right now
                return existing, ticket_rows.number_of(existing.ticket_id) or 0
            return claimed, None
    raise TemporaryFailure(f"no receipt key left for {message_id}")


def keys(message_id: str, sha256: str) -> list[str]:
    """The receipt keys a mail may be stored under, in the order ``receive`` tries them."""
    return [message_id, f"{message_id[:-1]}.{sha256[:16]}>", synthesized_message_id(sha256)]


def stored(raw: bytes) -> ReceiptRow | None:
    """The receipt ``raw`` was stored under, found by its keys and bytes; None if never."""
    sha256 = hashlib.sha256(raw).hexdigest()
    for key in keys(peek(raw, sha256)[0], sha256):
        receipt = receipt_rows.by_message_id(key)
        if receipt is not None and receipt.sha256 == sha256:
            return receipt
    return None


def _same_mail(existing: ReceiptRow, sender: str, fingerprint: str) -> bool:
    if existing.sender and sender and existing.sender != sender:
        return False
    return not (existing.fingerprint and fingerprint and existing.fingerprint != fingerprint)


def claim(receipt: ReceiptRow, now: dt.datetime) -> ReceiptRow | None:
    """Take over an unfinished mail whose lease ran out; None when someone else holds it.

    Every take-over counts as an attempt: a mail that kills the process (a parser bug,
    memory) is quarantined unread after MAX_ATTEMPTS instead of killing it forever.
    The update is conditional, so of two processes only one wins.
    """
    attempts = receipt_rows.take_lease(receipt.id, now, now + LEASE)
    if attempts is None:
        return None
    receipt = replace(receipt, attempts=attempts)
    if attempts > MAX_ATTEMPTS:
        reason = f"processing did not finish in {MAX_ATTEMPTS} attempts"
        receipt_rows.give_up(receipt.id, reason)
        receipt = replace(receipt, status="quarantined", action="quarantined", reason=reason)
    return receipt


def release(receipt: ReceiptRow, *, temporary: bool = False) -> None:
    """Give the lease back after a failure, so the sender's retry may process it at once.

    ``temporary``: the failure was the database's (busy, locked, disk full), not the
    mail's: it does not count as an attempt, so a busy hour never quarantines a mail.
    When the database is down this fails too; the lease then simply runs out and the
    recovery job finishes the mail.
    """
    with contextlib.suppress(TemporaryFailure, PeeweeException), write_transaction():
        receipt_rows.release(receipt.id, uncount=temporary)


def retry_temporary(now: dt.datetime) -> list[ReceiptRow]:
    """Mails quarantined for a temporary reason, taken back for processing."""
    taken = []
    for receipt_id in receipt_rows.temporary_quarantined(MAX_TEMPORARY_ATTEMPTS):
        with write_transaction():
            if not receipt_rows.reopen_temporary(receipt_id, now + LEASE):
                continue
        found = receipt_rows.by_id(receipt_id)
        if found is not None:
            taken.append(found)
    return taken


# A mail quarantined for a temporary reason (a database conflict that would not clear
# within three tries) is processed again by each run of the recovery job, up to this
# many attempts in all; then it stays quarantined for an admin (``quarantine retry``).
MAX_TEMPORARY_ATTEMPTS = 10


def quarantine(receipt: ReceiptRow, reason: str) -> Outcome:
    with write_transaction():
        receipt_rows.quarantine(receipt.id, reason)
    return Outcome("quarantined", receipt.message_id, reason=reason)
