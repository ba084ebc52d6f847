"""Queue the deliveries of one transaction's events: one outbox row per (event, hook).

``reactions.finish`` calls ``queue`` inside the transaction of the change, so a
delivery exists exactly when its change committed — once per event and hook; the
delivery id in the body lets a receiver drop a retry it already has.
"""

from __future__ import annotations

import uuid

from mailgate.context import Context
from mailgate.events import Journal
from mailgate.store import webhooks as hook_rows
from mailgate.store.db import utcnow
from mailgate.webhooks.body import Bodies, event_name


def queue(ctx: Context, journal: Journal) -> int:
    """Queue a delivery for every event of ``journal`` a hook subscribed to; how many."""
    hooks = ctx.config.webhooks
    if not hooks:
        return 0
    bodies = Bodies(ctx.config)
    items: list[tuple[str, int | None, str, str, bytes]] = []
    for event in journal.items:
        name = event_name(event)
        if name is None:
            continue
        for hook in hooks:
            if name in hook.events:
                delivery_id = str(uuid.uuid4())
                body = bodies.body(name, event, delivery_id)
                items.append((delivery_id, event.ticket.id, hook.url, name, body))
    if items:
        hook_rows.insert(items, utcnow())
    return len(items)
