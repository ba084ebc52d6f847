"""What follows from a transaction's events — the one place where the rest of mailgate reacts.

Every transaction that changes tickets (a mail, a CLI verb, later a web-desk
action or a scheduled job) ends with ``finish``: the events go to everything that
reacts to them, inside the same transaction, and are then written with one
INSERT. A change never commits without its reactions, and a reaction never
outlives a change that rolled back.

The SLA clocks, the notices and the webhooks react; a new reaction is one more
line in ``finish``, taking the same journal. The events are written first, so a
reaction reading a ticket's history (the clocks) sees this transaction's too.
"""

from __future__ import annotations

from mailgate import notices, sla, webhooks
from mailgate.context import Context
from mailgate.events import Journal
from mailgate.mail.classify import Verdict
from mailgate.mail.parse import ParsedMail


def finish(
    ctx: Context,
    journal: Journal,
    *,
    mail: ParsedMail | None = None,
    verdict: Verdict | None = None,
    quiet: bool = False,
) -> None:
    """React to the journal's events (inside the transaction), writing them and what follows.

    ``quiet``: history being imported (``mailgate import``) — the events are written,
    nobody is notified and no due work is scheduled for what happened long ago.
    """
    journal.flush()
    if quiet:
        return
    sla.react(ctx.config, journal)  # clocks first: notices show the due times
    notices.queue(ctx, journal, mail=mail, verdict=verdict)
    webhooks.queue(ctx, journal)  # one delivery per event and subscribed [[webhook]]
    journal.flush()
