"""Read models: tickets, their threads, receipts, the outbox and the directory as plain data.

What the admin CLI lists and shows (and the web desk will): JSON-able dicts of
plain values — the shapes ``--json`` promises to scripts. Only reads. Imports the
models and config.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import peewee as pw

from mailgate.config import STATUSES, Config
from mailgate.errors import UsageError
from mailgate.mail.subject import format_tag
from mailgate.store import directory, sql, tickets
from mailgate.store import models as m
from mailgate.store import receipts as receipts_rows
from mailgate.store.rows import AgentRow, ReceiptRow, TeamRow, TicketRow


def iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.replace(microsecond=0).isoformat() + "Z"


def _key(row: m.Agent | m.Team | AgentRow | TeamRow | None) -> str | None:
    return None if row is None else str(row.key)


def ticket(number: int | str) -> TicketRow:
    """The ticket an admin names (``482913``, ``#482913``); one clear line when there is none."""
    try:
        wanted = int(str(number).strip().lstrip("#"))
    except ValueError:
        raise UsageError(f"not a ticket number: {number!r}") from None
    row = tickets.by_number(wanted)
    if row is None:
        raise UsageError(f"no ticket #{wanted}")
    return row


def ticket_list(
    config: Config,
    status: str | None = None,
    limit: int = 500,
    where: Any = None,
    category: str | None = None,
) -> list[dict[str, Any]]:
    if status is not None and status not in STATUSES:
        raise UsageError(f"unknown status {status!r}; one of {', '.join(STATUSES)}")
    query = (
        m.Ticket.select(m.Ticket, m.Contact, m.Agent, m.Team)
        .join(m.Contact, on=(m.Ticket.requester == m.Contact.id))
        .switch(m.Ticket)
        .join(m.Agent, pw.JOIN.LEFT_OUTER, on=(m.Ticket.assignee == m.Agent.id))
        .switch(m.Ticket)
        .join(m.Team, pw.JOIN.LEFT_OUTER, on=(m.Ticket.team == m.Team.id))
        .order_by(m.Ticket.updated_at.desc())
        .limit(limit)
    )
    if status:
        query = query.where(m.Ticket.status == status)
    if where is not None:  # e.g. store.sla.ticket_filter(breached=True)
        query = query.where(where)
    if category is not None:
        query = query.where(pw.fn.LOWER(m.Ticket.category) == category.lower())
    return [
        {
            "number": t.number,
            "tag": format_tag(config.gateway.ticket_prefix, t.number),
            "subject": t.subject,
            "status": t.status,
            "priority": t.priority,
            "category": t.category,
            "requester": t.requester.email,
            "assignee": _key(t.assignee),
            "team": _key(t.team),
            "updated_at": iso(t.updated_at),
        }
        for t in query
    ]


def ticket_detail(config: Config, t: TicketRow) -> dict[str, Any]:
    participants = list(
        m.Participant.select(m.Participant, m.Contact)
        .join(m.Contact)
        .where(m.Participant.ticket == t.id)
        .order_by(m.Participant.id)
    )
    links = [
        {"kind": link.kind, "ticket": link.other.number}
        for link in m.TicketLink.select()
        .where(m.TicketLink.ticket == t.id)
        .order_by(m.TicketLink.id)
    ]
    if t.merged_into_id:
        links.append({"kind": "merged_into", "ticket": tickets.number_of(t.merged_into_id)})
        links = list({(x["kind"], x["ticket"]): x for x in links}.values())
    messages = list(m.Message.select().where(m.Message.ticket == t.id).order_by(m.Message.id))
    attachments: dict[int, list[dict[str, Any]]] = {}
    if messages:
        for a in (
            m.Attachment.select()
            .where(m.Attachment.message.in_([x.id for x in messages]))
            .order_by(m.Attachment.id)
        ):
            attachments.setdefault(a.message_id, []).append(
                {
                    "id": a.id,
                    "filename": a.filename,
                    "original_filename": a.original_filename or a.filename,
                    "kept": bool(a.kept),
                    "content_type": a.content_type,
                    "size": a.size,
                    "sha256": a.sha256,
                    "inline": a.inline,
                    "content_id": a.content_id,
                }
            )
    events = m.Event.select().where(m.Event.ticket == t.id).order_by(m.Event.id)
    return {
        "number": t.number,
        "tag": format_tag(config.gateway.ticket_prefix, t.number),
        "subject": t.subject,
        "status": t.status,
        "priority": t.priority,
        "category": t.category,
        "urgency": t.urgency,
        "impact": t.impact,
        "mailbox": t.mailbox,
        "team": _key(directory.team_by_id(t.team_id)),
        "assignee": _key(directory.agent_by_id(t.assignee_id)),
        "requester": next((p.contact.email for p in participants if p.role == "requester"), None),
        "requester_name": next(
            (p.contact.name for p in participants if p.role == "requester"), None
        ),
        "collaborators": [p.contact.email for p in participants if p.role == "collaborator"],
        "links": links,
        "created_at": iso(t.created_at),
        "updated_at": iso(t.updated_at),
        "first_response_at": iso(t.first_response_at),
        "resolved_at": iso(t.resolved_at),
        "closed_at": iso(t.closed_at),
        "messages": [
            {
                "id": x.id,
                "direction": x.direction,
                "kind": x.kind,
                "from": x.from_addr,
                "from_name": x.from_name,
                # The From header as written: who wrote, even when it had no address.
                "from_raw": x.from_raw,
                "to": x.to_addrs,
                "cc": x.cc_addrs,
                "subject": x.subject,
                "message_id": x.message_id,
                "date": iso(x.date),
                "created_at": iso(x.created_at),
                "text": x.text,
                "verified": x.verified,
                "trace": x.trace,
                "attachments": attachments.get(x.id, []),
            }
            for x in messages
        ],
        "events": [
            {
                "at": iso(e.at),
                "actor": e.actor,
                "kind": e.kind,
                "old": e.old,
                "new": e.new,
                "detail": e.detail,
            }
            for e in events
        ],
    }


def receipts(status: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
    query = m.Receipt.select().order_by(m.Receipt.id.desc()).limit(limit)
    if status:
        query = query.where(m.Receipt.status == status)
    return [receipt_json(r) for r in query]


def receipt(receipt_id: int) -> ReceiptRow:
    found = receipts_rows.by_id(receipt_id)
    if found is None:
        raise UsageError(f"no received mail with id {receipt_id}")
    return found


def receipt_json(r: m.Receipt | ReceiptRow) -> dict[str, Any]:
    return {
        "id": r.id,
        "message_id": r.message_id,
        "sender": r.sender,
        "source": r.source,
        "mailbox": r.mailbox,
        "status": r.status,
        "action": r.action,
        "reason": r.reason,
        "size": r.size,
        "sha256": r.sha256,
        "attempts": r.attempts,
        "ticket": tickets.number_of(r.ticket_id),
        "received_at": iso(r.received_at),
    }


def outbox_count(status: str | None = None) -> int:
    """How many outbox items there are (with ``status``): what a listing leaves out."""
    query = m.OutboxItem.select()
    if status:
        query = query.where(m.OutboxItem.status == status)
    return int(query.count())


def outbox(status: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
    query = m.OutboxItem.select().order_by(m.OutboxItem.id.desc()).limit(limit)
    if status:
        query = query.where(m.OutboxItem.status == status)
    numbers = {
        t.id: t.number
        for t in m.Ticket.select(m.Ticket.id, m.Ticket.number).where(
            m.Ticket.id.in_([i.ticket_id for i in query if i.ticket_id] or [0])
        )
    }
    return [
        {
            "id": i.id,
            "status": i.status,
            "notice": i.notice,
            "ticket": numbers.get(i.ticket_id),
            "message_id": i.message_id,
            "recipients": i.recipients,
            "attempts": i.attempts,
            "created_at": iso(i.created_at),
            "next_attempt_at": iso(i.next_attempt_at) if i.status == "queued" else None,
            "sent_at": iso(i.sent_at),
            "last_error": i.last_error,
            # The latest delivery report about it: delivered | delayed | failed, or None.
            "delivery": i.delivery or None,
            "delivery_detail": i.delivery_detail,
            "delivery_at": iso(i.delivery_at),
            # A webhook delivery (notice "webhook"): its event and URL; None for mail.
            "event": i.event or None,
            "url": i.target or None,
        }
        for i in query
    ]


def _open_counts(column: str) -> dict[int, int]:
    rows = sql.rows(
        f"SELECT {column}, COUNT(*) FROM ticket WHERE status IN ('new', 'open', 'pending')"
        f" AND merged_into_id IS NULL AND {column} IS NOT NULL GROUP BY {column}"
    )
    return {int(k): int(v) for k, v in rows}


def agents(config: Config) -> list[dict[str, Any]]:
    ids = {a.key: a.id for a in m.Agent.select(m.Agent.key, m.Agent.id)}
    counts = _open_counts("assignee_id")
    return [
        {
            "key": agent.key,
            "name": agent.name,
            "role": agent.role,
            "emails": list(agent.emails),
            "teams": [t.key for t in config.teams if agent.key in t.members],
            "open_tickets": counts.get(ids.get(agent.key, -1), 0),
        }
        for agent in config.agents
    ]


def teams(config: Config) -> list[dict[str, Any]]:
    ids = {t.key: t.id for t in m.Team.select(m.Team.key, m.Team.id)}
    counts = _open_counts("team_id")
    queue = {
        int(k): int(v)
        for k, v in sql.rows(
            "SELECT team_id, COUNT(*) FROM ticket WHERE status IN ('new', 'open', 'pending')"
            " AND assignee_id IS NULL AND merged_into_id IS NULL AND team_id IS NOT NULL"
            " GROUP BY team_id"
        )
    }
    return [
        {
            "key": team.key,
            "name": team.name,
            "address": team.address,
            "members": list(team.members),
            "assignment": team.assignment,
            "escalation": team.escalation,
            "open_tickets": counts.get(ids.get(team.key, -1), 0),
            "queue": queue.get(ids.get(team.key, -1), 0),
        }
        for team in config.teams
    ]
