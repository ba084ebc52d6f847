"""Intake: raw bytes in, a ticket or a threaded reply out, exactly once — the one front door.

Every transport (SMTP/LMTP listener, IMAP poller, ``mailgate ingest`` pipe)
reaches ``ingest()`` (wired by ``app.py``; transports never import intake). A
mail takes these steps, one module each:

1. ``receipts.py`` — **store first**: the raw bytes go to the blob store and one
   receipt row is committed; a re-delivery is recognised as a duplicate; the
   receipt's lease says who works on it.
2. ``plan.py`` (with ``find.py``) — **decide**: parse, classify, find the ticket,
   who wrote, what follows. Pure reads; ``explain.py`` runs the same code.
3. ``apply.py`` — **carry it out in ONE transaction**: message, ticket changes
   through the lifecycle, agent commands, ``reactions.finish`` (notices queued,
   events written). On an unexpected error everything rolls back and the receipt
   is quarantined with the reason; a database that is unavailable raises
   ``TemporaryFailure`` so the transport can answer 451, leave the mail on the
   server, or exit 75.

The outcome is a value (``envelope.Outcome``), never an exception. ``retry``
processes a quarantined mail again; ``recover`` finishes interrupted ones;
``stop`` quarantines a mail whose processing was stopped from outside (the
worker's per-mail deadline, ``gateway.max_processing_seconds``).
"""

from __future__ import annotations

import hashlib
import logging

from mailgate.context import Context
from mailgate.envelope import Envelope, Outcome
from mailgate.errors import TemporaryFailure, UsageError
from mailgate.intake import order, receipts
from mailgate.intake.apply import process
from mailgate.intake.explain import explain
from mailgate.intake.find import tag
from mailgate.logs import event, redact
from mailgate.mail.parse import synthesized_message_id
from mailgate.store import DataError, write_transaction
from mailgate.store import receipts as receipt_rows
from mailgate.store.db import utcnow
from mailgate.store.rows import ReceiptRow

__all__ = ["Envelope", "Outcome", "explain", "ingest", "process", "recover", "retry", "stop"]

log = logging.getLogger("mailgate.ingest")


def ingest(
    ctx: Context,
    raw: bytes,
    *,
    source: str,
    mailbox: str | None = None,
    envelope: Envelope | None = None,
) -> Outcome:
    """Record one mail exactly once; raises only ``TemporaryFailure`` (retry later)."""
    envelope = envelope or Envelope()
    if mailbox is not None:
        ctx.config.mailbox(mailbox)  # an unknown name is a usage error, before anything is stored
    sha256 = hashlib.sha256(raw).hexdigest()
    message_id, sender = receipts.peek(raw, sha256)
    ctx.blobs.put(raw, sha256)
    fingerprint = receipts.fingerprint(raw)
    # In flight from before its receipt is committed until its ticket is: a reply that
    # another process takes meanwhile waits for it (order.py). The receipt's INSERT takes it.
    with order.in_flight(message_id, taken=True):
        return _receive(
            ctx, raw, source, mailbox, envelope, sha256, message_id, sender, fingerprint
        )


def _receive(
    ctx: Context,
    raw: bytes,
    source: str,
    mailbox: str | None,
    envelope: Envelope,
    sha256: str,
    message_id: str,
    sender: str,
    fingerprint: str,
) -> Outcome:
    def receive(key: str, who: str) -> tuple[ReceiptRow, int | None]:
        return receipts.receive(
            key, sha256, who, len(raw), source, mailbox or "", envelope, fingerprint,
            in_flight=message_id,
        )  # fmt: skip

    try:
        receipt, duplicate = receive(message_id, sender)
    except TemporaryFailure:
        raise
    except (DataError, ValueError, UnicodeError):  # a value the database refused:
        # keep the mail under its bytes alone
        log.exception("receipt refused; storing the mail under its sha256")
        receipt, duplicate = receive(synthesized_message_id(sha256), "")
    if duplicate is not None:
        outcome = Outcome(
            "duplicate",
            receipt.message_id,
            ticket=duplicate,
            tag=tag(ctx.config, duplicate) if duplicate else None,
            reason=(
                f"already received {receipt.received_at:%Y-%m-%d %H:%M:%S} UTC"
                if receipt.status != "received"
                else "another delivery of this mail is being processed right now"
            ),
        )
        _log(source, sender, outcome, receipt.id)
        return outcome
    outcome = process(ctx, receipt, raw, envelope)
    _log(source, sender, outcome, receipt.id)
    return outcome


def _log(source: str, sender: str, outcome: Outcome, receipt: int) -> None:
    event(
        log,
        "mail.ingested",
        source=source,
        sender=redact(sender),
        action=outcome.action,
        ticket=outcome.ticket,
        receipt=receipt,
        message_id=outcome.message_id,
        reason=outcome.reason if outcome.action in ("quarantined", "ignored") else None,
    )


def retry(ctx: Context, receipt_id: int) -> Outcome:
    """Process a quarantined mail again (after a fix), from its stored raw bytes."""
    receipt = receipt_rows.by_id(receipt_id)
    if receipt is None:
        raise UsageError(f"no received mail with id {receipt_id}")
    if receipt.status != "quarantined":
        raise UsageError(f"mail {receipt_id} is not quarantined (it is {receipt.status})")
    raw = ctx.blobs.get(receipt.sha256)
    with write_transaction():
        receipt_rows.reopen_quarantined(receipt.id)
    receipt = receipt_rows.by_id(receipt.id)
    assert receipt is not None
    with order.in_flight(receipt.message_id):
        return process(ctx, receipt, raw, Envelope.from_json(receipt.envelope))


def stop(raw: bytes, reason: str, source: str) -> Outcome | None:
    """Processing of ``raw`` was stopped from outside (a deadline): quarantine its receipt.

    The outcome as stored when it had finished after all; None when it was never stored.
    """
    receipt = receipts.stored(raw)
    if receipt is None:
        return None
    if receipt.status == "received":
        outcome = receipts.quarantine(receipt, reason)
    else:
        outcome = Outcome(
            receipt.action or receipt.status, receipt.message_id, reason=receipt.reason
        )
    event(
        log,
        "mail.ingested",
        logging.WARNING,
        source=source,
        action=outcome.action,
        ticket=outcome.ticket,
        receipt=receipt.id,
        message_id=outcome.message_id,
        reason=outcome.reason,
    )
    return outcome


def recover(ctx: Context) -> list[Outcome]:
    """Finish mails whose processing was interrupted (crash, database outage), and
    process again those quarantined for a temporary reason (a database conflict).

    Only receipts whose lease ran out are taken, each with a conditional update, so
    several gateway processes running this at once never process one mail twice.
    """
    outcomes = []
    for again in receipts.retry_temporary(utcnow()):
        try:
            raw = ctx.blobs.get(again.sha256)
        except OSError as exc:
            outcomes.append(
                receipts.quarantine(again, f"raw mail missing from the blob store: {exc}")
            )
            continue
        with order.in_flight(again.message_id):
            outcomes.append(process(ctx, again, raw, Envelope.from_json(again.envelope)))
    for receipt_id in receipt_rows.unfinished(utcnow()):
        found = receipt_rows.by_id(receipt_id)
        if found is None:
            continue
        with write_transaction():
            receipt = receipts.claim(found, utcnow())
        if receipt is None:
            continue
        if receipt.status == "quarantined":
            outcome = Outcome("quarantined", receipt.message_id, reason=receipt.reason)
        else:
            try:
                raw = ctx.blobs.get(receipt.sha256)
            except OSError as exc:
                reason = f"raw mail missing from the blob store: {exc}"
                outcome = receipts.quarantine(receipt, reason)
            else:
                with order.in_flight(receipt.message_id):
                    outcome = process(ctx, receipt, raw, Envelope.from_json(receipt.envelope))
        event(
            log,
            "mail.recovered",
            action=outcome.action,
            ticket=outcome.ticket,
            receipt=receipt.id,
            message_id=outcome.message_id,
        )
        outcomes.append(outcome)
    return outcomes
