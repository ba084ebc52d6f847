"""``#queue``: an agent asks for their tickets, and gets them by mail.

Not a notice of one ticket: a mail to the agent listing their tickets in new, open or
pending (tag, subject, status, priority, due time), through the ``queue`` template,
queued in the outbox like every mail (no ticket of its own, no breaker: it answers a
person who asked). Only the caller decides the agent proved who they are.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from mailgate.config import Agent
from mailgate.config.calendars import zone
from mailgate.context import Context
from mailgate.mail import compose
from mailgate.mail.parse import Address
from mailgate.mail.subject import format_tag
from mailgate.notices.render import render
from mailgate.store import agentqueue, write_transaction
from mailgate.store import outbox as outbox_rows
from mailgate.store.db import utcnow


def queue_rows(ctx: Context, agent_key: str) -> list[dict[str, Any]]:
    prefix = ctx.config.gateway.ticket_prefix
    return [
        {
            "tag": format_tag(prefix, t.number),
            "number": t.number,
            "subject": t.subject,
            "status": t.status,
            "priority": t.priority,
            "due": f"{t.due_at:%Y-%m-%d %H:%M} UTC" if t.due_at else "",
        }
        for t in agentqueue.tickets_of(agent_key)
    ]


def send_queue(ctx: Context, agent: Agent, mailbox: str, in_reply_to: str) -> None:
    """Queue the mail listing ``agent``'s tickets (inside the caller's transaction)."""
    config = ctx.config
    box = config.mailbox(mailbox) if mailbox else config.mailboxes[0]
    me = {"name": agent.name, "email": agent.emails[0], "key": agent.key}
    variables = {
        "gateway": {"name": config.gateway.name, "domain": config.gateway.domain},
        "mailbox": {"name": box.name, "address": box.address},
        "recipient": me,
        "agent": me,
        "queue": queue_rows(ctx, agent.key),
        "reply_address": box.address,
    }
    rendered = render(config, box, "queue", variables)
    now = utcnow()
    outgoing = compose.Outgoing(
        sender=Address(box.address, config.gateway.name),
        to=(Address(agent.emails[0], agent.name),),
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        message_id=f"<{uuid.uuid4().hex}.queue@{config.gateway.domain}>",
        reply_to=box.address,
        in_reply_to=in_reply_to,
        references=(in_reply_to,) if in_reply_to else (),
        auto_submitted="auto-replied",
        loop_token=ctx.loop_token,
        date=now,
        notice="queue",
    )
    recipients = [agent.emails[0]]
    content = compose.build(outgoing)
    outbox_rows.insert([(outgoing.message_id, None, "queue", box.address, recipients, content,
                         True, now, "")], now)  # fmt: skip


def send_digests(ctx: Context, at: dt.datetime) -> list[str]:
    """Each agent's daily digest that is due at ``at`` (naive UTC) and not sent yet today.

    The day and the hour are the agent's ``digest`` in ``gateway.timezone``; each digest is
    claimed and queued in one transaction, so two processes never send it twice.
    """
    config = ctx.config
    local = at.replace(tzinfo=dt.UTC).astimezone(zone(config.gateway.timezone))
    sent = []
    for agent in config.agents:
        if not agent.digest or local.strftime("%H:%M") < agent.digest:
            continue
        with write_transaction():
            if not agentqueue.claim_digest(agent.key, int(local.strftime("%Y%m%d"))):
                continue
            send_queue(ctx, agent, "", "")
        sent.append(agent.key)
    return sent
