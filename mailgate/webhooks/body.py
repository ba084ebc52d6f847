"""Which ticket events are webhook events, and the JSON body each delivery carries.

The body is serialised once, when the delivery is queued, and stored as it will be
sent: the signature covers exactly these bytes, and a retry sends them again.
Imports config, events and the store's reads.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from mailgate.config import Config
from mailgate.events import Event
from mailgate.store import directory, people
from mailgate.store.rows import MessageRow, TicketRow

# Ticket event kind → webhook event; ``message`` is special-cased (see ``event_name``).
_NAMES = {
    "created": "ticket.created",
    "agent_reply": "message.sent",
    "agent_reply_direct": "message.sent",
    "assignee": "ticket.assigned",
    "status": "ticket.status_changed",
    "reopened": "ticket.status_changed",
    "priority": "ticket.priority_changed",
    "team": "ticket.team_changed",
    "merged": "ticket.merged",
    "sla_warning": "sla.warning",
    "sla_breach": "sla.breached",
    "rated": "csat.rated",
}
# Stored messages that are not "received": an agent's mail (its reply is message.sent),
# an agent's note, and a rating's comment (csat.rated carries it).
_NOT_RECEIVED = ("agent", "note", "rating")
# A message's text in a body is cut here ("truncated": true): a receiver wants to know
# what was said, and can read the whole thread from the desk's API.
MAX_TEXT = 65536
_CHANGES = (
    "ticket.assigned",
    "ticket.status_changed",
    "ticket.priority_changed",
    "ticket.team_changed",
    "ticket.merged",
)


def event_name(event: Event) -> str | None:
    """The webhook event a ticket event is, or None (most audit events are none)."""
    if event.kind == "message":
        return None if event.new in _NOT_RECEIVED else "message.received"
    return _NAMES.get(event.kind)


def iso(value: dt.datetime | None) -> str | None:
    """Naive UTC → ``2026-12-03T11:40:30Z``."""
    return None if value is None else value.replace(microsecond=0).isoformat() + "Z"


class Bodies:
    """Builds the bodies of one transaction's deliveries; reads each team, agent, person once."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._teams: dict[int, str | None] = {}
        self._agents: dict[int, str | None] = {}
        self._people: dict[int, str | None] = {}

    def body(self, name: str, event: Event, delivery_id: str) -> bytes:
        data: dict[str, Any] = {
            "id": delivery_id,
            "event": name,
            "at": iso(event.at),
            "actor": event.actor,
            "ticket": self.ticket(event.ticket),
        }
        if name in _CHANGES:
            data["change"] = {"from": event.old or None, "to": event.new or None}
        if event.message is not None and name != "csat.rated":
            data["message"] = _message(event.message, event.at)
        if name.startswith("sla."):
            data["sla"] = {"clock": event.new, "detail": event.detail}
        if name == "csat.rated":
            data["rating"] = {"score": event.new, "comment": event.detail}
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()

    def ticket(self, ticket: TicketRow) -> dict[str, Any]:
        found: dict[str, Any] = {
            "number": ticket.number,
            "subject": ticket.subject,
            "status": ticket.status,
            "priority": ticket.priority,
            "team": self._team(ticket.team_id),
            "assignee": self._agent(ticket.assignee_id),
            "requester": self._person(ticket.requester_id),
            "created_at": iso(ticket.created_at),
            "updated_at": iso(ticket.updated_at),
        }
        url = ticket_url(self.config, ticket.number)
        if url:
            found["url"] = url
        return found

    def _team(self, team_id: int | None) -> str | None:
        if team_id is None:
            return None
        if team_id not in self._teams:
            row = directory.team_by_id(team_id)
            self._teams[team_id] = row.key if row else None
        return self._teams[team_id]

    def _agent(self, agent_id: int | None) -> str | None:
        if agent_id is None:
            return None
        if agent_id not in self._agents:
            row = directory.agent_by_id(agent_id)
            self._agents[agent_id] = row.key if row else None
        return self._agents[agent_id]

    def _person(self, contact_id: int) -> str | None:
        if contact_id not in self._people:
            row = people.by_id(contact_id)
            self._people[contact_id] = row.email if row else None
        return self._people[contact_id]


def _message(message: MessageRow, at: dt.datetime) -> dict[str, Any]:
    return {
        "id": message.id,
        "kind": message.kind,
        "direction": message.direction,
        "from": message.from_addr or None,
        "from_name": message.from_name or None,
        "subject": message.subject,
        "text": message.text[:MAX_TEXT],
        "truncated": len(message.text) > MAX_TEXT,
        "created_at": iso(message.created_at or at),
    }


def ticket_url(config: Config, number: int) -> str | None:
    """The ticket's page on the desk: ``[web] public_url``, else ``http://LISTEN``; or None."""
    web = config.web
    if web.public_url:
        base = web.public_url.rstrip("/")
    elif web.listen and not web.listen.endswith(":0"):
        base = f"http://{web.listen}{web.root_path.rstrip('/')}"
    else:
        return None
    return f"{base}/tickets/{number}"
