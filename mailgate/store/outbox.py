"""Outbox rows: notices queued in the transaction of their change, and what delivery needs.

``insert`` is the notices' hot path (one INSERT for all notices of a mail); the
rest serves ``mailgate.outbox`` — claiming due mail (SKIP LOCKED on PostgreSQL,
so several senders never take the same row), the ``sending``/``sent`` marks,
recovery after a crash, an admin's retry — and the bounce handling (to whom did
a mail of ours go).

A claim is held by one delivery run: ``claim_due`` writes ``claimed by <worker>``
into ``last_error`` and a lease into ``next_attempt_at``; ``claimed_mails`` and
``claimed_to_sending`` only take a row whose claim is still that worker's.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

from mailgate.store import sql
from mailgate.store.db import is_sqlite
from mailgate.store.rows import OutboxMail, OutboxRow

COLUMNS = (
    "message_id",
    "ticket_id",
    "notice",
    "sender",
    "recipients",
    "content",
    "automatic",
    "status",
    "attempts",
    "next_attempt_at",
    "last_error",
    "created_at",
)
_SELECT = "SELECT id, ticket_id, notice, message_id, status, attempts FROM outbox_item"


# The content of a notice composed into the blob store (it carries files): this mark,
# then the sha256. No mail starts with a NUL byte.
BLOB_MARK = b"\x00mailgate-blob:"


def blob_reference(sha256: str) -> bytes:
    return BLOB_MARK + sha256.encode("ascii")


def referenced_blob(content: bytes) -> str:
    """The sha256 a content refers to; '' for a mail stored in the row itself."""
    return content[len(BLOB_MARK) :].decode("ascii") if content.startswith(BLOB_MARK) else ""


def insert(
    items: Iterable[tuple[str, int | None, str, str, list[str], bytes, bool, dt.datetime, str]],
    now: dt.datetime,
) -> None:
    """Queue mail: (Message-ID, ticket id, notice, sender, recipients, content, automatic,
    due, note) per item, one INSERT; due is now, or later for mail the circuit breaker
    held ("held: <why>" in the note, which ``last_error`` keeps until it is claimed)."""
    at = sql.ts(now)
    sql.insert_many(
        "outbox_item",
        COLUMNS,
        [
            (
                message_id,
                ticket_id,
                notice,
                sender,
                sql.js(recipients),
                content,
                automatic,
                "queued",
                0,
                sql.ts(due),
                note,
                at,
            )
            for (
                message_id,
                ticket_id,
                notice,
                sender,
                recipients,
                content,
                automatic,
                due,
                note,
            ) in items
        ],
    )


def _row(row: tuple[Any, ...] | None) -> OutboxRow | None:
    if row is None:
        return None
    return OutboxRow(
        id=int(row[0]),
        ticket_id=None if row[1] is None else int(row[1]),
        notice=str(row[2]),
        message_id=str(row[3]),
        status=str(row[4]),
        attempts=int(row[5]),
    )


def by_id(item_id: int) -> OutboxRow | None:
    return _row(sql.one(f"{_SELECT} WHERE id = ?", item_id))


def recipients_of(message_id: str) -> set[str]:
    """The envelope recipients of the mail we sent with this Message-ID (lowercase)."""
    found = sql.value("SELECT recipients FROM outbox_item WHERE message_id = ?", message_id)
    return {str(r).lower() for r in json.loads(found)} if found else set()


def record_delivery(message_id: str, delivery: str, detail: str, at: dt.datetime) -> None:
    """The latest delivery report about the mail we sent with this Message-ID."""
    sql.run(
        "UPDATE outbox_item SET delivery = ?, delivery_detail = ?, delivery_at = ?"
        " WHERE message_id = ?",
        delivery,
        detail,
        sql.ts(at),
        message_id,
    )


HELD = "held: %"


def held(now: dt.datetime) -> list[tuple[int, int | None, str, list[str], str, dt.datetime]]:
    """Mail the circuit breaker holds back: (id, ticket id, notice, recipients, why, due)."""
    found = []
    for row in sql.rows(
        "SELECT id, ticket_id, notice, recipients, last_error, next_attempt_at FROM outbox_item"
        " WHERE status = 'queued' AND last_error LIKE ? AND next_attempt_at > ? ORDER BY id",
        HELD,
        sql.ts(now),
    ):
        due = sql.read_ts(row[5])
        assert due is not None
        recipients = json.loads(row[3]) if isinstance(row[3], str) else list(row[3])
        ticket_id = None if row[1] is None else int(row[1])
        found.append((int(row[0]), ticket_id, str(row[2]), recipients, str(row[4])[6:], due))
    return found


def release_held(now: dt.datetime, ticket_id: int | None = None) -> int:
    """What is held (of one ticket, or all) is due now (an admin reset the breaker)."""
    only = "" if ticket_id is None else " AND ticket_id = ?"
    return int(
        sql.run(
            "UPDATE outbox_item SET next_attempt_at = ? WHERE status = 'queued'"
            f" AND last_error LIKE ? AND next_attempt_at > ?{only}",
            sql.ts(now),
            HELD,
            sql.ts(now),
            *(() if ticket_id is None else (ticket_id,)),
        ).rowcount
    )


def stale_held(notice: str, created_before: dt.datetime) -> list[tuple[Any, ...]]:
    """(id, ticket id) of the held mail of kind ``notice`` queued before then."""
    return sql.rows(
        "SELECT id, ticket_id FROM outbox_item WHERE status = 'queued' AND notice = ?"
        " AND last_error LIKE ? AND created_at < ?",
        notice,
        HELD,
        sql.ts(created_before),
    )


def drop_stale_held(
    notice: str, created_before: dt.datetime, why: str
) -> list[tuple[int, int | None]]:
    """Held mail of kind ``notice`` queued before then: marked failed with ``why``;
    (id, ticket id) of each."""
    rows = stale_held(notice, created_before)
    for item_id, _ in rows:
        sql.run(
            "UPDATE outbox_item SET status = 'failed', last_error = ? WHERE id = ?"
            " AND status = 'queued'",
            why,
            item_id,
        )
    return [(int(r[0]), None if r[1] is None else int(r[1])) for r in rows]


def lease_over(now: dt.datetime) -> bool:
    """Whether a row (mail or webhook delivery) is claimed or ``sending`` past its lease:
    what ``requeue_expired_claims`` and the recoveries look for."""
    return (
        sql.one(
            "SELECT 1 FROM outbox_item WHERE status IN ('claimed', 'sending')"
            " AND next_attempt_at <= ? LIMIT 1",
            sql.ts(now),
        )
        is not None
    )


def mail_due(now: dt.datetime) -> bool:
    """Whether ``claim_due`` would find a mail to claim."""
    return (
        sql.one(
            "SELECT 1 FROM outbox_item WHERE status = 'queued' AND next_attempt_at <= ?"
            " AND notice <> 'webhook' LIMIT 1",
            sql.ts(now),
        )
        is not None
    )


def requeue_expired_claims(now: dt.datetime) -> None:
    """Claims whose lease ran out were never handed over: queue them again, due now."""
    sql.run(
        "UPDATE outbox_item SET status = 'queued', next_attempt_at = ?"
        " WHERE status = 'claimed' AND next_attempt_at <= ?",
        sql.ts(now),
        sql.ts(now),
    )


def stuck_sending(now: dt.datetime) -> list[OutboxRow]:
    """Mail marked ``sending`` whose lease ran out: the sender stopped while handing it over
    (webhook deliveries are recovered by ``store.webhooks``)."""
    return [
        row
        for raw in sql.rows(
            f"{_SELECT} WHERE status = 'sending' AND next_attempt_at <= ?"
            " AND notice <> 'webhook' ORDER BY id",
            sql.ts(now),
        )
        if (row := _row(raw)) is not None
    ]


def claim_due(size: int, worker: str, now: dt.datetime, lease_until: dt.datetime) -> list[int]:
    """Claim up to ``size`` queued mails that are due, oldest first, for ``worker``.

    Webhook deliveries are not mail: ``store.webhooks`` claims those, on their own thread."""
    lock = "" if is_sqlite() else " FOR UPDATE SKIP LOCKED"
    ids = [
        int(r[0])
        for r in sql.rows(
            "SELECT id FROM outbox_item WHERE status = 'queued' AND next_attempt_at <= ?"
            f" AND notice <> 'webhook' ORDER BY id LIMIT ?{lock}",
            sql.ts(now),
            size,
        )
    ]
    mark_claimed(ids, worker, lease_until)
    return ids


def mark_claimed(ids: list[int], worker: str, lease_until: dt.datetime) -> None:
    """Rows ``worker`` took (mail or webhook deliveries): ``claimed`` until ``lease_until``."""
    if ids:
        sql.run(
            "UPDATE outbox_item SET status = 'claimed', last_error = ?, next_attempt_at = ?"
            f" WHERE id IN ({sql.placeholders(len(ids))})",
            claim_mark(worker),
            sql.ts(lease_until),
            *ids,
        )


def release_claims(ids: list[int], now: dt.datetime) -> None:
    """Claimed mails a run will not send after all: queued again, due now."""
    if ids:
        sql.run(
            "UPDATE outbox_item SET status = 'queued', next_attempt_at = ?"
            f" WHERE status = 'claimed' AND id IN ({sql.placeholders(len(ids))})",
            sql.ts(now),
            *ids,
        )


def claimed_to_sending(
    item_id: int,
    worker: str,
    attempts: int,
    lease_until: dt.datetime,
    content: bytes | None = None,
) -> bool:
    """Move a row ``worker`` still holds from ``claimed`` to ``sending`` (mail and webhooks);
    ``content``: the mail composed from the row's snapshot replaces it, in the same
    statement (a retry sends the same bytes)."""
    keep = "" if content is None else ", content = ?"
    updated = sql.run(
        f"UPDATE outbox_item SET status = 'sending', attempts = ?, next_attempt_at = ?{keep}"
        " WHERE id = ? AND status = 'claimed' AND last_error = ?",
        attempts,
        sql.ts(lease_until),
        *(() if content is None else (content,)),
        item_id,
        claim_mark(worker),
    ).rowcount
    return bool(updated == 1)


def claimed_mails(ids: list[int], worker: str) -> list[OutboxMail]:
    """The rows of ``ids`` that ``worker`` still holds, as they will be sent (one more
    attempt), in the order of ``ids``: one statement for a whole batch."""
    if not ids:
        return []
    found = {
        int(row[0]): OutboxMail(
            id=int(row[0]),
            ticket_id=row[1],
            notice=row[2],
            sender=row[3],
            recipients=tuple(json.loads(row[4])),
            content=bytes(row[5]),
            message_id=row[6],
            attempts=int(row[7]) + 1,
        )
        for row in sql.rows(
            "SELECT id, ticket_id, notice, sender, recipients, content, message_id, attempts"
            f" FROM outbox_item WHERE id IN ({sql.placeholders(len(ids))})"
            " AND status = 'claimed' AND last_error = ?",
            *ids,
            claim_mark(worker),
        )
    }
    return [found[i] for i in ids if i in found]


def settle_sent(ids: list[int], sent_at: dt.datetime) -> None:
    """Mails the relay took from every recipient: ``sent``, one statement for a round."""
    if ids:
        sql.run(
            "UPDATE outbox_item SET status = 'sent', sent_at = ?, last_error = ''"
            f" WHERE id IN ({sql.placeholders(len(ids))})",
            sql.ts(sent_at),
            *ids,
        )


def claim_mark(worker: str) -> str:
    return f"claimed by {worker}"


def settle(
    item_id: int,
    status: str,
    *,
    recipients: list[str] | None = None,
    sent_at: dt.datetime | None = None,
    next_attempt_at: dt.datetime | None = None,
    last_error: str | None = None,
) -> None:
    """Set an item's status (and the fields given): after a delivery attempt, after
    recovery, or an admin's decision. ``recipients`` narrows who the mail still goes to."""
    fields: dict[str, object] = {"status": status}
    if recipients is not None:
        fields["recipients"] = sql.js(recipients)
    if sent_at is not None:
        fields["sent_at"] = sql.ts(sent_at)
    if next_attempt_at is not None:
        fields["next_attempt_at"] = sql.ts(next_attempt_at)
    if last_error is not None:
        fields["last_error"] = last_error
    assignments = ", ".join(f"{name} = ?" for name in fields)
    sql.run(f"UPDATE outbox_item SET {assignments} WHERE id = ?", *fields.values(), item_id)
