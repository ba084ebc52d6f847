"""The suspended queue for admins: list, show, release, delete, purge.

A suspended mail (spam verdict of a trusted filter, or a blocked sender) made no
ticket and got no notice. Released, it is processed as if it had just arrived — a
ticket with its acknowledgement; deleted, its receipt and raw mail go (the raw mail
only when nothing else refers to it).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from mailgate import intake
from mailgate.config.calendars import parse_wall_duration
from mailgate.context import Context
from mailgate.envelope import Envelope, Outcome
from mailgate.errors import UsageError
from mailgate.store import receipts as receipt_rows
from mailgate.store import suspended as rows
from mailgate.store import write_transaction
from mailgate.store.db import utcnow
from mailgate.store.views import iso


def _json(row: rows.SuspendedRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "received_at": iso(row.received_at),
        "sender": row.sender,
        "subject": row.subject,
        "reason": row.reason,
    }


def listing() -> list[dict[str, Any]]:
    return [_json(r) for r in rows.listing()]


def _found(receipt_id: int) -> rows.SuspendedRow:
    found = rows.by_id(receipt_id)
    if found is None:
        raise UsageError(f"no suspended mail with id {receipt_id} (see `mailgate suspended list`)")
    return found


def show(ctx: Context, receipt_id: int) -> tuple[dict[str, Any], bytes]:
    """The suspended mail's facts and its raw bytes."""
    found = _found(receipt_id)
    data = {**_json(found), "score": found.score, "raw": ctx.blobs.location(found.sha256)}
    try:
        return data, ctx.blobs.get(found.sha256)
    except OSError as exc:
        raise UsageError(f"the raw mail of {receipt_id} is missing: {exc.strerror}") from None


def release(ctx: Context, receipt_id: int) -> Outcome:
    """Process the mail as if it had just arrived, without the spam check."""
    found = _found(receipt_id)
    raw = ctx.blobs.get(found.sha256)
    with write_transaction():
        rows.release(receipt_id)
    receipt = receipt_rows.by_id(receipt_id)
    assert receipt is not None
    return intake.process(ctx, receipt, raw, Envelope.from_json(receipt.envelope))


def delete(ctx: Context, receipt_id: int) -> None:
    found = _found(receipt_id)
    with write_transaction():
        rows.delete(receipt_id)
        in_use = rows.blob_in_use(found.sha256)
    if not in_use:
        ctx.blobs.delete(found.sha256)


def purge(ctx: Context, older_than: str, now: dt.datetime | None = None) -> int:
    """Delete every suspended mail received more than ``older_than`` ago ("30d"); how many."""
    try:
        seconds = parse_wall_duration(older_than)
    except ValueError as exc:
        raise UsageError(f"--older-than: {exc}") from None
    if seconds is None:
        raise UsageError("--older-than: give a duration like '30d'")
    cutoff = (now or utcnow()) - dt.timedelta(seconds=seconds)
    old = rows.older_than(cutoff)
    for row in old:
        delete(ctx, row.id)
    return len(old)
