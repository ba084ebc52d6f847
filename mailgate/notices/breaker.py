"""The circuit breaker and recipient health: who may get automatic mail right now.

Every automatic notice passes sliding windows per recipient, per ticket and
overall (``[outbound.limits]``), and the recipient-health check (an address that
bounced permanently is left alone for ``undeliverable_days``). Whoever is held
back is recorded as an event on the ticket, never dropped silently. Staff
notices to agents and team addresses skip the per-recipient window, so a busy
hour does not cut staff off their tickets.

A delivery report (``record_bounce``) is where recipient health comes from.
Imports config, events, the store and ``mailgate.mail``.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from dataclasses import replace

from mailgate.config import Config, Limits, base_address, parse_rate
from mailgate.context import Context
from mailgate.events import Event, Journal
from mailgate.logs import event
from mailgate.mail.bounces import FailedRecipient
from mailgate.mail.parse import Address, ParsedMail
from mailgate.notices.rules import Intent
from mailgate.store import breaker as counts
from mailgate.store import counters, people
from mailgate.store import events as event_rows
from mailgate.store import outbox as outbox_rows
from mailgate.store.db import utcnow, write_transaction
from mailgate.store.rows import MessageRow, TicketRow

log = logging.getLogger("mailgate.notices")

# The ``setting`` counter of recipients the breaker held back (metrics read it).
BREAKER_TRIPS = "breaker_trips"


def admit(
    config: Config, ticket: TicketRow, intents: list[Intent], now: dt.datetime
) -> list[Intent]:
    """The intents with only the recipients that may get mail now.

    Everybody held back — an address that bounced permanently, or a full window of
    the circuit breaker — is recorded as an event on the ticket, never dropped
    silently. Counts include the notices admitted earlier in this same transaction.
    """
    intents = [
        replace(i, to=[Address(i.for_agent.emails[0], i.for_agent.name)])
        if i.for_agent is not None and not i.to
        else i
        for i in intents
    ]
    emails = sorted({a.email.lower() for i in intents for a in (*i.to, *i.cc)})
    if not emails:
        return []
    unhealthy = people.undeliverable(emails, now)
    breaker = _Breaker(rates(config.outbound.limits), ticket.id, emails, now)
    admitted = []
    for intent in intents:
        automatic = intent.kind != "agent_reply"
        kept: dict[str, list[Address]] = {"to": [], "cc": []}
        for field_name in ("to", "cc"):
            for person in getattr(intent, field_name):
                email = person.email.lower()
                if email in unhealthy:
                    until, why = unhealthy[email]
                    reason = (
                        f"address undeliverable until {until:%Y-%m-%d %H:%M} UTC"
                        f" after a permanent bounce ({why[:200]})"
                    )
                elif base_address(email) in config.mailbox_addresses:
                    reason = "that is one of our own mailboxes (it would come back as a loop)"
                elif automatic:
                    reason = breaker.check(window_key(config, intent.kind, email))
                    if reason:  # a trip: counted for mailgate_breaker_trips_total
                        counters.increment(BREAKER_TRIPS)
                else:
                    reason = ""
                if reason:
                    event_rows.add(
                        ticket.id,
                        "notice_suppressed",
                        "system",
                        new=email,
                        detail=f"{intent.kind}: {reason}",
                    )
                    event(
                        log,
                        "notice.suppressed",
                        notice=intent.kind,
                        ticket=ticket.number,
                        reason=reason,
                    )
                    continue
                kept[field_name].append(person)
        if automatic:
            breaker.count(
                [
                    window_key(config, intent.kind, p.email.lower())
                    for p in (*kept["to"], *kept["cc"])
                ]
            )
        if kept["to"] or kept["cc"]:
            admitted.append(replace(intent, to=kept["to"], cc=kept["cc"]))
    return admitted


# Notices that keep staff working a ticket. A busy hour must not cut agents and team
# addresses off them, so they skip the per-recipient window; the per-ticket and overall
# windows still count them. An answer to an agent's own mail (command_error) is not here:
# with a broken client it could loop, so it stays limited per recipient.
_STAFF_NOTICES = (
    "assignment", "customer_reply", "reopened", "escalation", "sla_warning", "sla_breach",
)  # fmt: skip


def window_key(config: Config, kind: str, email: str) -> str:
    """The recipient as the breaker's log stores it: ``staff:``-prefixed when exempt.

    The per-recipient windows look up plain addresses only, so an exempt notice neither
    meets their limit nor uses it up (a busy hour of assignments must not silence the
    agent's command_error replies); the per-ticket window counts every row.
    """
    staff = config.agent_for(email) is not None or email in config.own_addresses
    return f"staff:{email}" if staff and kind in _STAFF_NOTICES else email


class _Breaker:
    """Sliding-window counts of automatic mail: per recipient, per ticket, overall.

    Read once per transaction (one query per scope and window, each stopping at its
    limit, so a busy hour costs no more than the limit), then counted in memory.
    """

    def __init__(
        self,
        rates: tuple[tuple[tuple[int, int], ...], ...],
        ticket_id: int,
        recipients: list[str],
        now: dt.datetime,
    ) -> None:
        per_recipient, per_ticket, overall = rates
        self.windows: list[tuple[str, str, int, int, dict[str, int]]] = []
        for count, seconds in per_recipient:
            seen = counts.per_recipient(recipients, now - dt.timedelta(seconds=seconds))
            self.windows.append(("per recipient", "recipient", count, seconds, seen))
        for count, seconds in per_ticket:
            seen_count = counts.per_ticket(ticket_id, now - dt.timedelta(seconds=seconds), count)
            self.windows.append(("per ticket", "ticket", count, seconds, {"": seen_count}))
        for count, seconds in overall:
            # Minute buckets: the window is rounded to whole minutes.
            seen_count = counts.overall(counts.minute(now) - max(seconds // 60, 1))
            self.windows.append(("overall", "all", count, seconds, {"": seen_count}))

    def check(self, recipient: str) -> str:
        exempt = recipient.startswith("staff:")
        for label, scope, count, seconds, seen in self.windows:
            if scope == "recipient" and exempt:
                continue
            key = recipient if scope == "recipient" else ""
            if seen.get(key, 0) >= count:
                return f"circuit breaker: {count} automatic mails {label} within {_span(seconds)}"
        return ""

    def count(self, recipients: list[str]) -> None:
        if not recipients:
            return
        for _label, scope, _count, _seconds, seen in self.windows:
            if scope == "recipient":
                for recipient in recipients:
                    if not recipient.startswith("staff:"):
                        seen[recipient] = seen.get(recipient, 0) + 1
            else:
                seen[""] = seen.get("", 0) + len(recipients)


@functools.lru_cache(maxsize=8)
def rates(limits: Limits) -> tuple[tuple[tuple[int, int], ...], ...]:
    return tuple(
        tuple(parse_rate(r) for r in rates)
        for rates in (limits.per_recipient, limits.per_ticket, limits.overall)
    )


def prune(config: Config) -> None:
    """Drop breaker bookkeeping older than the longest window (a scheduled job)."""
    longest = max((s for rates in rates(config.outbound.limits) for _, s in rates), default=3600)
    with write_transaction():
        counts.prune(utcnow() - dt.timedelta(seconds=longest))


def _span(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def record_bounce(
    ctx: Context,
    ticket: TicketRow,
    mail: ParsedMail,
    message: MessageRow,
    journal: Journal,
    about: str,
) -> None:
    """A delivery report on our mail ``about``: an event per recipient; permanent ones suppress.

    Only addresses that mail actually went to count: a report is easy to forge, and
    must never let a customer silence an agent (or anybody else) for days.
    """
    report = mail.report
    recipients = report.recipients if report else ()
    if not recipients:
        journal.add(
            Event(
                ticket,
                "delivery_failed",
                "system",
                message=message,
                detail="a delivery report without recipient details",
            )
        )
        return
    sent_to = outbox_rows.recipients_of(about)
    config = ctx.config
    days = config.outbound.limits.undeliverable_days
    _record_delivery(about, [r for r in recipients if r.address.lower() in sent_to])
    for r in recipients:
        address = r.address.lower()
        if address not in sent_to:
            journal.add(
                Event(
                    ticket,
                    "delivery_report_ignored",
                    "system",
                    new=address,
                    message=message,
                    detail=f"{about} was not sent to this address",
                )
            )
            continue
        if r.action in ("delivered", "relayed", "expanded"):
            journal.add(
                Event(
                    ticket,
                    "delivery_report",
                    "system",
                    new=address,
                    message=message,
                    detail=f"{r.action} {r.status}".strip(),
                )
            )
            continue
        kind = "delivery_failed" if r.permanent else "delivery_delayed"
        detail = " ".join(x for x in (r.status, r.diagnostic) if x)
        journal.add(
            Event(ticket, kind, "system", new=address, message=message, detail=detail[:1000])
        )
        staff = base_address(address) in config.own_addresses or config.agent_for(address)
        if r.permanent and days > 0 and not staff:
            people.mark_undeliverable(address, utcnow() + dt.timedelta(days=days), detail)


_SUCCESS = ("delivered", "relayed", "expanded")


def _record_delivery(about: str, recipients: list[FailedRecipient]) -> None:
    """The outbox item's latest delivery report: ``failed`` when the mail did not reach a
    recipient (a failure, permanent or given up after retries; a report without an
    action is a failure), else ``delayed`` when one still waits, else ``delivered``
    (delivered, relayed or expanded). Only recipients the mail went to count, as for
    recipient health."""
    if not recipients:
        return
    actions = {r.action for r in recipients}
    if any(r.permanent or r.action not in (*_SUCCESS, "delayed") for r in recipients):
        outcome = "failed"
    elif not actions <= set(_SUCCESS):
        outcome = "delayed"
    else:
        outcome = "delivered"
    detail = "; ".join(
        f"{r.address}: {r.action or 'failed'} {r.status}".strip() for r in recipients
    )
    outbox_rows.record_delivery(about, outcome, detail[:1000], utcnow())
