"""Events: what happened to a ticket, with actor and time — the audit trail, and what reacts.

Every change of a ticket is an ``Event``: the lifecycle records the changes of
state (status, assignee, team, priority, merged, …), intake and the agents' verbs
record the rest (a message, a note, an agent's reply, a command error). A
transaction collects its events in one ``Journal``; at its end
``reactions.finish`` hands them to everything that reacts (the notices) and
writes them with one INSERT.

Imports the store's rows and event table only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from mailgate.store import events as event_rows
from mailgate.store.db import utcnow
from mailgate.store.rows import MessageRow, TicketRow


@dataclass(frozen=True, slots=True)
class Event:
    """One audit event, as written to the ``event`` table; notices are derived from these."""

    ticket: TicketRow  # the ticket as this event left it
    kind: str
    actor: str
    old: str = ""
    new: str = ""
    message: MessageRow | None = None
    detail: str = ""
    at: dt.datetime = field(default_factory=utcnow)

    def row(self) -> tuple[object, ...]:
        return (
            self.ticket.id,
            self.at,
            self.actor[:400],
            self.kind,
            self.old,
            self.new,
            self.message.id if self.message is not None else None,
            self.detail,
        )


class Journal:
    """The events of one transaction, in order, and each ticket as the transaction left it.

    ``flush()`` writes the events not written yet with one INSERT. ``mark()`` and
    ``rollback(mark)`` go with a savepoint: what a failing step recorded is taken
    back with its writes.
    """

    def __init__(self) -> None:
        self.items: list[Event] = []
        self._written = 0
        self._tickets: dict[int, TicketRow] = {}

    def add(self, event: Event) -> Event:
        self.items.append(event)
        return event

    def track(self, ticket: TicketRow) -> TicketRow:
        """Remember ``ticket`` as the current value of its row (the lifecycle calls this)."""
        self._tickets[ticket.id] = ticket
        return ticket

    def ticket(self, ticket_id: int) -> TicketRow | None:
        """The ticket as this transaction left it: tracked, else as its latest event saw it."""
        tracked = self._tickets.get(ticket_id)
        if tracked is not None:
            return tracked
        for event in reversed(self.items):
            if event.ticket.id == ticket_id:
                return event.ticket
        return None

    def kinds(self) -> list[str]:
        return [e.kind for e in self.items]

    def mark(self) -> tuple[int, dict[int, TicketRow]]:
        return len(self.items), dict(self._tickets)

    def rollback(self, mark: tuple[int, dict[int, TicketRow]]) -> None:
        count, tickets = mark
        if count < self._written:
            raise RuntimeError("events already written cannot be taken back")
        del self.items[count:]
        self._tickets = dict(tickets)

    def flush(self) -> None:
        pending = self.items[self._written :]
        if pending:
            event_rows.insert([e.row() for e in pending])
            self._written = len(self.items)
