"""Customer ratings (CSAT): what a customer said of a resolved ticket, good or bad.

Written by ``mailgate.csat`` when a mail reaches a signed rating address; the
latest rating of a ticket is what ``tickets show`` reports.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import peewee as pw

from mailgate.store import sql
from mailgate.store.models import BaseModel, Message, Ticket


class CsatRating(BaseModel):
    if TYPE_CHECKING:
        ticket_id: Any
        message_id: Any

    ticket = pw.ForeignKeyField(Ticket, backref="+", on_delete="CASCADE")
    rating = pw.CharField(max_length=10)  # good | bad
    comment = pw.TextField(default="")
    sender = pw.CharField(max_length=320, default="")
    message = pw.ForeignKeyField(Message, null=True, backref="+", on_delete="SET NULL", index=False)
    at = pw.DateTimeField()

    class Meta:
        table_name = "csat_rating"


@dataclass(frozen=True, slots=True)
class RatingRow:
    rating: str
    comment: str
    sender: str
    at: dt.datetime


def add(
    ticket_id: int, rating: str, comment: str, sender: str, message_id: int | None, at: dt.datetime
) -> None:
    sql.run(
        "INSERT INTO csat_rating (ticket_id, rating, comment, sender, message_id, at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        ticket_id,
        rating,
        comment[:4000],
        sender[:320],
        message_id,
        sql.ts(at),
    )


def latest(ticket_id: int) -> RatingRow | None:
    row = sql.one(
        "SELECT rating, comment, sender, at FROM csat_rating WHERE ticket_id = ?"
        " ORDER BY id DESC LIMIT 1",
        ticket_id,
    )
    if row is None:
        return None
    at = sql.read_ts(row[3])
    assert at is not None
    return RatingRow(str(row[0]), str(row[1]), str(row[2]), at)
