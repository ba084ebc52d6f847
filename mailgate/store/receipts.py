"""Receipts: one row per distinct inbound mail — the idempotency key, the lease, the quarantine.

A receipt is committed before its mail is processed, so that from then on a
crash or a bug can never lose the mail: ``status`` says how far it got
(received, processed, quarantined) and ``lease_until`` who may work on it.
Hand-written SQL (``store.sql``): every mail writes and updates its receipt.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from mailgate.store import inflight, sql
from mailgate.store.db import is_sqlite, utcnow
from mailgate.store.faults import TEMPORARY_PREFIX
from mailgate.store.rows import ReceiptRow

_SELECT = (
    "SELECT id, message_id, sha256, fingerprint, size, sender, envelope, source, mailbox,"
    " status, action, reason, attempts, ticket_id, received_at FROM receipt"
)


def _row(row: tuple[Any, ...] | None) -> ReceiptRow | None:
    if row is None:
        return None
    received = sql.read_ts(row[14])
    assert received is not None
    return ReceiptRow(
        id=int(row[0]),
        message_id=str(row[1]),
        sha256=str(row[2]),
        fingerprint=str(row[3] or ""),
        size=int(row[4]),
        sender=str(row[5] or ""),
        envelope=json.loads(row[6] or "{}"),
        source=str(row[7]),
        mailbox=str(row[8] or ""),
        status=str(row[9]),
        action=str(row[10] or ""),
        reason=str(row[11] or ""),
        attempts=int(row[12]),
        ticket_id=None if row[13] is None else int(row[13]),
        received_at=received,
    )


def by_id(receipt_id: int) -> ReceiptRow | None:
    return _row(sql.one(f"{_SELECT} WHERE id = ?", receipt_id))


def by_message_id(message_id: str) -> ReceiptRow | None:
    return _row(sql.one(f"{_SELECT} WHERE message_id = ?", message_id))


def insert(
    *,
    key: str,
    sha256: str,
    fingerprint: str,
    size: int,
    sender: str,
    source: str,
    mailbox: str,
    envelope: dict[str, Any],
    now: dt.datetime,
    lease_until: dt.datetime,
    in_flight: str = "",
) -> ReceiptRow | None:
    """A new receipt under ``key``, leased to the caller; None when the key is taken.

    ON CONFLICT makes the first delivery win atomically, on every backend. As the first
    statement of its transaction, it is committed the moment it returns on PostgreSQL
    (``sql.one_committed``: no round trip of its own for the COMMIT).

    ``in_flight`` (PostgreSQL): the Message-ID to mark in flight (``store.inflight``) when
    the receipt is created — taken by the INSERT's RETURNING, so it is held before the
    receipt is committed (whoever sees the receipt can wait for it), in the same round
    trip. Nothing is taken when the key was taken already.
    """
    taking = in_flight and not is_sqlite()
    also, lock = "", tuple[int, ...]()  # the in-flight lock's expression, its key
    if taking:
        expression, lock_key = inflight.hold_expression(in_flight)
        also, lock = f", {expression}", (lock_key,)
    created = sql.one_committed(
        "INSERT INTO receipt (message_id, sha256, fingerprint, size, sender, source,"
        " mailbox, envelope, status, action, reason, attempts, received_at, lease_until)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'received', '', '', 1, ?, ?)"
        f" ON CONFLICT (message_id) DO NOTHING RETURNING id{also}",
        key,
        sha256,
        fingerprint,
        size,
        sender,
        source,
        mailbox,
        sql.js(envelope),
        sql.ts(now),
        sql.ts(lease_until),
        *lock,
    )
    if created is None:
        return None
    if taking and created[1]:
        inflight.took(in_flight)
    return ReceiptRow(
        id=int(created[0]),
        message_id=key,
        sha256=sha256,
        fingerprint=fingerprint,
        size=size,
        sender=sender,
        envelope=envelope,
        source=source,
        mailbox=mailbox,
        status="received",
        action="",
        reason="",
        attempts=1,
        ticket_id=None,
        received_at=now,
    )


def take_lease(receipt_id: int, now: dt.datetime, lease_until: dt.datetime) -> int | None:
    """Take over an unfinished receipt whose lease ran out: its attempts now, or None.

    The update is conditional, so of two processes only one wins; every take-over
    counts as an attempt.
    """
    row = sql.one(
        "UPDATE receipt SET attempts = attempts + 1, lease_until = ?"
        " WHERE id = ? AND status = 'received' AND (lease_until IS NULL OR lease_until < ?)"
        " RETURNING attempts",
        sql.ts(lease_until),
        receipt_id,
        sql.ts(now),
    )
    return None if row is None else int(row[0])


def give_up(receipt_id: int, reason: str) -> None:
    """Quarantine a receipt nobody finished (it crashed the process too often)."""
    sql.run(
        "UPDATE receipt SET status = 'quarantined', action = 'quarantined', reason = ?"
        " WHERE id = ? AND status = 'received'",
        reason,
        receipt_id,
    )


def release(receipt_id: int, *, uncount: bool = False) -> None:
    """Give the lease back, so the sender's retry may process the mail at once.

    ``uncount``: the attempt failed for a temporary reason (database busy, disk full),
    which is no processing attempt — only real errors and crashes count.
    """
    less = ", attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END" if uncount else ""
    sql.run(
        f"UPDATE receipt SET lease_until = NULL{less} WHERE id = ? AND status = 'received'",
        receipt_id,
    )


def temporary_quarantined(max_attempts: int, limit: int = 100) -> list[int]:
    """Mail quarantined for a temporary reason, not yet tried ``max_attempts`` times."""
    return [
        int(r[0])
        for r in sql.rows(
            "SELECT id FROM receipt WHERE status = 'quarantined' AND reason LIKE ?"
            " AND attempts < ? ORDER BY id LIMIT ?",
            TEMPORARY_PREFIX + "%",
            max_attempts,
            limit,
        )
    ]


def reopen_temporary(receipt_id: int, lease_until: dt.datetime) -> bool:
    """Take a mail quarantined for a temporary reason back into processing (conditional:
    of several processes only one wins); its attempts are kept."""
    row = sql.one(
        "UPDATE receipt SET status = 'received', action = '', reason = '', lease_until = ?,"
        " attempts = attempts + 1"
        " WHERE id = ? AND status = 'quarantined' AND reason LIKE ? RETURNING id",
        sql.ts(lease_until),
        receipt_id,
        TEMPORARY_PREFIX + "%",
    )
    return row is not None


def quarantine(receipt_id: int, reason: str) -> None:
    sql.run(
        "UPDATE receipt SET status = 'quarantined', action = 'quarantined', reason = ?,"
        " processed_at = ? WHERE id = ?",
        reason[:2000],
        sql.ts(utcnow()),
        receipt_id,
    )


def status_locked(
    receipt_id: int, content_fingerprint: str, parents: Sequence[str] = ()
) -> tuple[str | None, bool, list[str]]:
    """The receipt's status, row-locked for the processing transaction, with the mail's
    content fingerprint written (it is only seen once the transaction commits); whether
    an earlier mail said the same (``same_content`` finds it); and (PostgreSQL) those of
    ``parents`` still in flight (``inflight.UNFINISHED_BEFORE``).

    One UPDATE … RETURNING does it all: an UPDATE takes the row lock as SELECT … FOR
    UPDATE did on PostgreSQL, and waits for (then sees) a transaction that holds it.
    """
    checked = bool(parents) and not is_sqlite()
    found = sql.one(
        "UPDATE receipt SET content_fingerprint = ? WHERE id = ? RETURNING status,"
        f" EXISTS ({_SAME_CONTENT}){f', {inflight.UNFINISHED_BEFORE}' if checked else ''}",
        content_fingerprint,
        receipt_id,
        content_fingerprint,
        content_fingerprint,
        receipt_id,
        *((receipt_id, [sql.clean(p) for p in parents]) if checked else ()),
    )
    if found is None:
        return None, False, []
    return str(found[0]), bool(found[1]), [str(p) for p in found[2]] if checked else []


# An earlier mail with the same content fingerprint (processed, not quarantined). The
# index has only the fingerprints that are not '' (migration 0016): the query says so.
_SAME_CONTENT = (
    "SELECT ticket_id, received_at FROM receipt AS earlier WHERE ? <> ''"
    " AND earlier.content_fingerprint = ? AND earlier.content_fingerprint <> ''"
    " AND earlier.id <> ? AND earlier.status = 'processed'"
    " AND earlier.action NOT IN ('duplicate', 'quarantined')"
)


def finish(
    receipt_id: int, *, action: str, reason: str, ticket_id: int | None, mailbox: str
) -> None:
    sql.later(  # usually the last write of the processing: sent with its COMMIT
        "UPDATE receipt SET status = 'processed', action = ?, reason = ?, ticket_id = ?,"
        " processed_at = ?, mailbox = ? WHERE id = ?",
        action,
        reason,
        ticket_id,
        sql.ts(utcnow()),
        mailbox,
        receipt_id,
    )


def same_content(fingerprint: str, receipt_id: int) -> tuple[int | None, dt.datetime] | None:
    """The ticket and time of an earlier mail that said the same (processed, not
    quarantined); None when there is none."""
    row = sql.one(
        f"{_SAME_CONTENT} ORDER BY earlier.id LIMIT 1", fingerprint, fingerprint, receipt_id
    )
    if row is None:
        return None
    when = sql.read_ts(row[1])
    assert when is not None
    return (None if row[0] is None else int(row[0])), when


def unfinished(now: dt.datetime, limit: int = 500) -> list[int]:
    """Receipts nobody is working on that are not finished (interrupted processing)."""
    return [
        int(r[0])
        for r in sql.rows(
            "SELECT id FROM receipt WHERE status = 'received'"
            " AND (lease_until IS NULL OR lease_until < ?) ORDER BY id LIMIT ?",
            sql.ts(now),
            limit,
        )
    ]


def reopen_quarantined(receipt_id: int) -> None:
    """Make a quarantined mail processable again (``quarantine retry``)."""
    sql.run(
        "UPDATE receipt SET status = 'received', attempts = 1, reason = '' WHERE id = ?",
        receipt_id,
    )


def dismiss(receipt_id: int) -> bool:
    """An admin gave up on a quarantined mail (``quarantine delete``): it counts as done.

    The receipt stays, so a re-delivery is still a duplicate, and so does the raw mail
    in the blob store; it just no longer waits for anybody. False when not quarantined.
    """
    done = sql.run(
        "UPDATE receipt SET status = 'processed', action = 'deleted',"
        " reason = 'deleted from the quarantine: ' || reason, processed_at = ?"
        " WHERE id = ? AND status = 'quarantined'",
        sql.ts(utcnow()),
        receipt_id,
    )
    return bool(done.rowcount)
