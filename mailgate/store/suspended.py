"""The suspended queue's rows: mail kept out of the desk (spam verdict, blocked sender).

The receipt of a suspended mail has status ``suspended``; its row here says who sent
it, its subject and why. Released, the receipt goes back to ``received`` (action
``released``: processed without the spam check); deleted, both rows go.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import peewee as pw

from mailgate.store import sql
from mailgate.store.db import utcnow
from mailgate.store.models import BaseModel, Receipt


class SuspendedMail(BaseModel):
    if TYPE_CHECKING:
        receipt_id: Any

    receipt = pw.ForeignKeyField(Receipt, backref="+", on_delete="CASCADE", unique=True)
    sender = pw.CharField(max_length=320)
    subject = pw.TextField()
    reason = pw.TextField()
    score = pw.FloatField(null=True)
    received_at = pw.DateTimeField(index=True)

    class Meta:
        table_name = "suspended_mail"


@dataclass(frozen=True, slots=True)
class SuspendedRow:
    id: int  # the receipt's id: what `suspended show/release/delete` take
    sender: str
    subject: str
    reason: str
    score: float | None
    received_at: dt.datetime
    sha256: str


_SELECT = (
    "SELECT s.receipt_id, s.sender, s.subject, s.reason, s.score, s.received_at, r.sha256"
    " FROM suspended_mail s JOIN receipt r ON r.id = s.receipt_id"
)


def _row(r: tuple[Any, ...]) -> SuspendedRow:
    received = sql.read_ts(r[5])
    assert received is not None
    score = None if r[4] is None else float(r[4])
    return SuspendedRow(int(r[0]), str(r[1]), str(r[2]), str(r[3]), score, received, str(r[6]))


def suspend(
    receipt_id: int, *, sender: str, subject: str, reason: str, score: float | None,
    received_at: dt.datetime,
) -> None:  # fmt: skip
    """Keep a received mail out of the desk (inside the transaction that processed it)."""
    sql.run(
        "UPDATE receipt SET status = 'suspended', action = 'suspended', reason = ?,"
        " processed_at = ? WHERE id = ?",
        reason[:1000],
        sql.ts(utcnow()),
        receipt_id,
    )
    sql.run(
        "INSERT INTO suspended_mail (receipt_id, sender, subject, reason, score, received_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        receipt_id,
        sender[:320],
        subject[:2000],
        reason[:1000],
        score,
        sql.ts(received_at),
    )


def listing(limit: int = 1000) -> list[SuspendedRow]:
    return [_row(r) for r in sql.rows(f"{_SELECT} ORDER BY s.received_at DESC LIMIT ?", limit)]


def count() -> int:
    """How many mails wait in the suspended queue (``mailgate status``)."""
    return int(sql.value("SELECT COUNT(*) FROM suspended_mail") or 0)


def by_id(receipt_id: int) -> SuspendedRow | None:
    found = sql.one(f"{_SELECT} WHERE s.receipt_id = ?", receipt_id)
    return _row(found) if found else None


def release(receipt_id: int) -> None:
    """Back to ``received``, marked to skip the spam check; processed right after."""
    sql.run("DELETE FROM suspended_mail WHERE receipt_id = ?", receipt_id)
    sql.run(
        "UPDATE receipt SET status = 'received', action = 'released', reason = '',"
        " lease_until = NULL WHERE id = ? AND status = 'suspended'",
        receipt_id,
    )


def delete(receipt_id: int) -> None:
    sql.run("DELETE FROM suspended_mail WHERE receipt_id = ?", receipt_id)
    sql.run("DELETE FROM receipt WHERE id = ? AND status = 'suspended'", receipt_id)


def older_than(cutoff: dt.datetime) -> list[SuspendedRow]:
    return [_row(r) for r in sql.rows(f"{_SELECT} WHERE s.received_at < ?", sql.ts(cutoff))]


def blob_in_use(sha256: str) -> bool:
    """Whether another receipt or a message still needs the raw mail ``sha256``."""
    return bool(
        sql.value("SELECT COUNT(*) FROM receipt WHERE sha256 = ?", sha256)
        or sql.value("SELECT COUNT(*) FROM message WHERE raw_sha256 = ?", sha256)
    )
