"""Working time: minutes an agent spent on a ticket (``#time 25m``, ``tickets time``)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import peewee as pw

from mailgate.store import sql
from mailgate.store.models import BaseModel, Ticket


class WorkTime(BaseModel):
    if TYPE_CHECKING:
        ticket_id: Any

    ticket = pw.ForeignKeyField(Ticket, backref="+", on_delete="CASCADE")
    agent = pw.CharField(max_length=100)
    minutes = pw.IntegerField()
    source = pw.CharField(max_length=20)  # mail | cli
    at = pw.DateTimeField()

    class Meta:
        table_name = "work_time"


def add(ticket_id: int, agent: str, minutes: int, source: str, at: dt.datetime) -> None:
    sql.run(
        "INSERT INTO work_time (ticket_id, agent, minutes, source, at) VALUES (?, ?, ?, ?, ?)",
        ticket_id,
        agent,
        minutes,
        source,
        sql.ts(at),
    )


def by_agent(ticket_id: int) -> dict[str, int]:
    """Minutes per agent key on the ticket."""
    return {
        str(agent): int(total)
        for agent, total in sql.rows(
            "SELECT agent, SUM(minutes) FROM work_time WHERE ticket_id = ? GROUP BY agent"
            " ORDER BY agent",
            ticket_id,
        )
    }
