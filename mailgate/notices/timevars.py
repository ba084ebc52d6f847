"""The template variables of time: SLA due times, the rating links, the rating, lifecycle timers.

``sla`` (every notice): the ticket's policy and clocks, due times in the
calendar's zone; ``clock``: the clock an ``sla_warning``/``sla_breach`` is about;
``csat``: the signed one-click rating links of the resolution notice;
``rating``: what a customer rated (``csat_thanks``); ``lifecycle``: the pending
and closing delays in words. Documented in ``mailgate/templates/README.md``.
Imports config, the store's reads and ``mailgate.mail``.
"""

from __future__ import annotations

import datetime as dt
import functools
import urllib.parse
from typing import Any

from mailgate.config import Config, Mailbox
from mailgate.config.calendars import parse_wall_duration, zone
from mailgate.context import Context
from mailgate.mail import tokens
from mailgate.mail.subject import format_tag
from mailgate.notices.rules import Intent
from mailgate.store import csat as ratings
from mailgate.store import sla as clock_rows
from mailgate.store.db import utcnow

LABELS = {
    "first_response": "first response",
    "next_response": "next response",
    "resolution": "resolution",
}


def time_variables(ctx: Context, intent: Intent, box: Mailbox) -> dict[str, Any]:
    config, ticket = ctx.config, intent.ticket
    rows = clock_rows.clocks_of(ticket.id)
    clocks = [_clock(c) for c in rows]
    sla = None
    if clocks:
        first = rows[0]
        running = [c for c in clocks if c["due"] is not None and not c["met"] and not c["paused"]]
        sla = {
            "policy": first.policy_name,
            "calendar": first.calendar,
            "timezone": first.timezone,
            "due": min(running, key=lambda c: c["due"])["due_text"] if running else "",
            "clocks": clocks,
        }
    clock = None
    if intent.kind in ("sla_warning", "sla_breach"):
        clock = next((c for c in clocks if c["name"] == intent.detail), None)
    csat = None
    if intent.kind == "resolution" and box.notices.csat:
        csat = links(
            ctx.secret,
            box.address,
            ticket.number,
            format_tag(config.gateway.ticket_prefix, ticket.number),
        )
    rating = None
    if intent.kind == "csat_thanks":
        found = ratings.latest(ticket.id)
        if found is not None:
            rating = {"rating": found.rating, "comment": found.comment}
    return {
        "sla": sla,
        "clock": clock,
        "csat": csat,
        "rating": rating,
        "lifecycle": _lifecycle(config),
    }


def links(secret: bytes, mailbox_address: str, number: int, tag: str) -> dict[str, str]:
    """``mailto:`` links to the signed rating addresses: one click in any mail client."""
    found = {}
    for rating in tokens.RATINGS:
        address = tokens.rating_address(
            mailbox_address, number, rating, tokens.sign_rating(secret, number, rating)
        )
        subject = urllib.parse.quote(f"Rating: {rating} {tag}")
        found[rating] = f"mailto:{address}?subject={subject}"
        found[f"{rating}_address"] = address
    return found


def _clock(c: clock_rows.ClockRow) -> dict[str, Any]:
    local = None
    if c.due_at is not None:
        local = c.due_at.replace(tzinfo=dt.UTC).astimezone(zone(c.timezone))
    return {
        "name": c.name,
        "label": LABELS.get(c.name, c.name),
        "due": local,
        "due_text": due_text(local),
        "paused": c.paused,
        "met": c.met_at is not None,
        "breached": c.due_at is not None
        and (c.due_at < c.met_at if c.met_at is not None else c.due_at <= utcnow()),
    }


def due_text(local: dt.datetime | None) -> str:
    if local is None:
        return ""
    return f"{local:%a %Y-%m-%d %H:%M} {local.tzname()}"


def _lifecycle(config: Config) -> dict[str, str]:
    lifecycle = config.lifecycle
    return {
        "pending_reminder_after": in_words(lifecycle.pending_reminder_after),
        "pending_close_after": in_words(lifecycle.pending_close_after),
        "resolved_close_after": in_words(lifecycle.resolved_close_after),
    }


@functools.lru_cache(maxsize=64)
def in_words(duration: str) -> str:
    """``"7d"`` → ``"7 days"``, ``"36h"`` → ``"36 hours"``; ``""`` for a switched-off delay."""
    seconds = parse_wall_duration(duration)
    if seconds is None:
        return ""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} seconds"


def sample_time_variables(config: Config, box: Mailbox, kind: str) -> dict[str, Any]:
    """The same keys for ``templates check``: a made-up ticket under a made-up policy."""
    due = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC).astimezone(zone(config.gateway.timezone))
    clock = {
        "name": "resolution",
        "label": "resolution",
        "due": due,
        "due_text": due_text(due),
        "paused": False,
        "met": False,
        "breached": kind == "sla_breach",
    }
    secret = b"sample"
    return {
        "sla": {
            "policy": "Severity A",
            "calendar": "24x7",
            "timezone": config.gateway.timezone,
            "due": clock["due_text"],
            "clocks": [clock],
        },
        "clock": clock if kind in ("sla_warning", "sla_breach") else None,
        "csat": links(secret, box.address, 482913, format_tag(config.gateway.ticket_prefix, 482913))
        if kind == "resolution" and box.notices.csat
        else None,
        "rating": {"rating": "good", "comment": "Quick and friendly, thanks!"}
        if kind == "csat_thanks"
        else None,
        "lifecycle": _lifecycle(config),
    }
