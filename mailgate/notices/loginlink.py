"""A one-time login link for the web desk, mailed to an agent who asked for it.

Not a notice of a ticket: a short mail to one of the agent's own addresses with
the link, queued in the outbox like every mail (no ticket, no circuit breaker: it
answers a person who asked, and the desk limits how often one may ask). The text
is fixed, not a template: it carries a secret, and nothing in it is worth changing.
"""

from __future__ import annotations

import uuid

from mailgate.config import Agent
from mailgate.context import Context
from mailgate.mail import compose
from mailgate.mail.parse import Address
from mailgate.store import outbox as outbox_rows
from mailgate.store import write_transaction
from mailgate.store.db import utcnow

TEXT = """\
{name},

someone (you, we hope) asked to log in to the {gateway} desk with this address.
Open this link within {minutes} minutes to log in; it works once:

  {url}

If it was not you, ignore this mail: nobody can log in without the link.
"""


def send_login_link(ctx: Context, agent: Agent, address: str, url: str, minutes: int) -> str:
    """Queue the mail with ``url`` to ``address`` (one of ``agent``'s); its Message-ID."""
    config = ctx.config
    box = config.mailboxes[0]
    now = utcnow()
    outgoing = compose.Outgoing(
        sender=Address(box.address, config.gateway.name),
        to=(Address(address, agent.name),),
        subject=f"Your login link for the {config.gateway.name} desk",
        text=TEXT.format(name=agent.name, gateway=config.gateway.name, minutes=minutes, url=url),
        message_id=f"<{uuid.uuid4().hex}.login@{config.gateway.domain}>",
        auto_submitted="auto-generated",
        loop_token=ctx.loop_token,
        date=now,
        notice="login_link",
    )
    content = compose.build(outgoing)
    with write_transaction():
        outbox_rows.insert(
            [(outgoing.message_id, None, "login_link", box.address, [address], content, True, now,
              "")],
            now,
        )  # fmt: skip
    return outgoing.message_id
