"""Webhook deliveries in the outbox: queued with their change, claimed in order per URL.

A delivery is an ``outbox_item`` with notice ``webhook``: ``content`` is the JSON
body exactly as it is sent (the signature covers these bytes), ``message_id`` the
delivery id, ``recipients`` the URL (so ``outbox list`` shows where it goes),
``target`` the URL and ``event`` the event's name. The mail sender never takes
these rows (``outbox.claim_due`` skips them) and this module never takes mail.

The deliveries of one URL leave in the order they were queued: a row is claimed
only when no older row of its URL is still waiting (queued, claimed or sending) —
one in backoff holds back the ones after it; a failed one does not.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from mailgate.store import sql
from mailgate.store.db import is_sqlite
from mailgate.store.outbox import COLUMNS, claim_mark, claimed_to_sending, mark_claimed

KIND = "webhook"
_WAITING = "('queued', 'claimed', 'sending')"


@dataclass(frozen=True, slots=True)
class Delivery:
    """A webhook delivery claimed and marked ``sending``: what the sender POSTs."""

    id: int
    ticket_id: int | None
    url: str
    event: str
    delivery_id: str
    body: bytes
    attempts: int  # including this one


def insert(items: Iterable[tuple[str, int | None, str, str, bytes]], now: dt.datetime) -> None:
    """Queue deliveries, due now: (delivery id, ticket id, url, event, body) each, one INSERT."""
    at = sql.ts(now)
    sql.insert_many(
        "outbox_item",
        (*COLUMNS, "target", "event"),
        [
            (
                d,
                ticket_id,
                KIND,
                "",
                sql.js([url]),
                body,
                False,
                "queued",
                0,
                at,
                "",
                at,
                url,
                event,
            )
            for d, ticket_id, url, event, body in items
        ],
    )


def due(now: dt.datetime) -> bool:
    """Whether a delivery waits that is due (``claim_due`` may still skip it while an
    older one to the same URL is in flight)."""
    return (
        sql.one(
            "SELECT 1 FROM outbox_item WHERE notice = ? AND status = 'queued'"
            " AND next_attempt_at <= ? LIMIT 1",
            KIND,
            sql.ts(now),
        )
        is not None
    )


def claim_due(size: int, worker: str, now: dt.datetime, lease_until: dt.datetime) -> list[int]:
    """Claim up to ``size`` due deliveries for ``worker``, the oldest waiting one per URL."""
    lock = "" if is_sqlite() else " FOR UPDATE SKIP LOCKED"
    ids = [
        int(r[0])
        for r in sql.rows(
            "SELECT o.id FROM outbox_item o WHERE o.notice = ? AND o.status = 'queued'"
            " AND o.next_attempt_at <= ? AND NOT EXISTS (SELECT 1 FROM outbox_item e"
            " WHERE e.notice = ? AND e.target = o.target AND e.id < o.id"
            f" AND e.status IN {_WAITING})"
            f" ORDER BY o.id LIMIT ?{lock}",
            KIND,
            sql.ts(now),
            KIND,
            size,
        )
    ]
    mark_claimed(ids, worker, lease_until)
    return ids


def start_sending(item_id: int, worker: str, lease_until: dt.datetime) -> Delivery | None:
    """Mark a delivery ``sending`` (one attempt more) — only if ``worker`` still holds it."""
    row = sql.one(
        "SELECT id, ticket_id, target, event, message_id, content, attempts FROM outbox_item"
        " WHERE id = ? AND notice = ? AND status = 'claimed' AND last_error = ?",
        item_id,
        KIND,
        claim_mark(worker),
    )
    if row is None or not claimed_to_sending(item_id, worker, row[6] + 1, lease_until):
        return None
    return Delivery(
        id=int(row[0]),
        ticket_id=None if row[1] is None else int(row[1]),
        url=str(row[2]),
        event=str(row[3]),
        delivery_id=str(row[4]),
        body=bytes(row[5]),
        attempts=int(row[6]) + 1,
    )


def requeue_stuck(now: dt.datetime) -> int:
    """Deliveries a stopped sender left ``sending`` (lease over): queued again, due now.

    Unlike mail they are sent again: the receiver may have it already, and tells by the
    delivery id (at least once, never silently lost).
    """
    return int(
        sql.run(
            "UPDATE outbox_item SET status = 'queued', next_attempt_at = ?,"
            " last_error = 'the sender stopped during this delivery; sent again'"
            " WHERE notice = ? AND status = 'sending' AND next_attempt_at <= ?",
            sql.ts(now),
            KIND,
            sql.ts(now),
        ).rowcount
    )


def release(ids: list[int], now: dt.datetime) -> None:
    """Claimed deliveries this run will not send after all: queued again, due now."""
    if ids:
        sql.run(
            "UPDATE outbox_item SET status = 'queued', next_attempt_at = ?, last_error = ''"
            f" WHERE status = 'claimed' AND id IN ({sql.placeholders(len(ids))})",
            sql.ts(now),
            *ids,
        )
