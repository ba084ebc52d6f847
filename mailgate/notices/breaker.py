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
from typing import TYPE_CHECKING

from mailgate.config import Config, Limits, base_address, parse_rate
from mailgate.context import Context
from mailgate.events import Event, Journal
from mailgate.logs import event
from mailgate.mail.parse import Address, ParsedMail
from mailgate.notices.rules import Intent
from mailgate.store import breaker as counts
from mailgate.store import counters, people
from mailgate.store import events as event_rows

if TYPE_CHECKING:
    from mailgate.mail.bounces import FailedRecipient
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
        i.but(to=[Address(i.for_agent.emails[0], i.for_agent.name)])
        if i.for_agent is not None and not i.to
        else i
        for i in intents
    ]
    emails = sorted({a.email.lower() for i in intents for a in (*i.to, *i.cc)})
    if not emails:
        return []
    breaker = _Breaker(rates(config.outbound.limits), ticket.id, emails, now)
    # Recipient health comes with the breaker's counts; the details only when needed.
    unhealthy = people.undeliverable(sorted(breaker.unhealthy), now) if breaker.unhealthy else {}
    admitted = []
    for intent in intents:
        automatic = intent.kind not in UNLIMITED
        if intent.kind == "agent_reply":
            # An agent's answer passes the per-ticket window like automatic mail (a loop
            # between an agent's client and a customer's stops there), but is never
            # dropped: it is queued for when the window opens, and the agent is told.
            reason, opens = breaker.ticket_window(now)
            if reason:
                admitted.extend(_held(config, ticket, intent, reason, opens))
                continue
        kept: dict[str, list[Address]] = {"to": [], "cc": []}
        deferred: dict[str, list[Address]] = {"to": [], "cc": []}
        deferred_why, deferred_due = "", now
        counted: list[str] = []  # the window keys of the recipients kept (automatic mail)
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
                    to_staff = config.agent_for(email) is not None or (
                        base_address(email) in config.own_addresses
                    )
                    key = window_key(config, intent.kind, email)
                    reason, due = breaker.check(key, intent.kind, to_staff, now)
                    if reason:  # a trip (held or suppressed): mailgate_breaker_trips_total
                        counters.increment(BREAKER_TRIPS)
                    if reason and due is not None:
                        # The overall window: held back, queued for when it opens.
                        deferred[field_name].append(person)
                        deferred_why, deferred_due = reason, max(deferred_due, due)
                        continue
                    if not reason:
                        counted.append(key)
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
            breaker.count(counted)
        if kept["to"] or kept["cc"]:
            to, cc = _capped(config, ticket, intent.kind, kept["to"], kept["cc"])
            admitted.append(intent.but(to=to, cc=cc))
        if deferred["to"] or deferred["cc"]:
            held = intent.but(to=deferred["to"], cc=deferred["cc"])
            admitted.extend(_held(config, ticket, held, deferred_why, deferred_due))
    return admitted


# Notices the breaker never holds back nor counts: an agent's answer (held only by the
# per-ticket window, see ``admit``) and the note telling an agent theirs is held.
UNLIMITED = ("agent_reply", "reply_held")


def _held(
    config: Config, ticket: TicketRow, intent: Intent, reason: str, due: dt.datetime
) -> list[Intent]:
    """The held mail, due when the window opens, and a note to the agent who wrote it."""
    when = f"{due:%Y-%m-%d %H:%M} UTC"
    event_rows.add(
        ticket.id,
        "notice_held",
        "system",
        new=", ".join(a.email.lower() for a in (*intent.to, *intent.cc))[:1000],
        detail=f"{intent.kind}: {reason}; queued for {when}",
    )
    event(log, "notice.held", notice=intent.kind, ticket=ticket.number, reason=reason, due=when)
    to, cc = _capped(config, ticket, intent.kind, list(intent.to), list(intent.cc))
    held = [intent.but(to=to, cc=cc, due=due, held=reason)]
    agent = intent.agent
    if agent is not None and intent.kind == "agent_reply":
        held.append(
            Intent(
                "reply_held",
                ticket,
                [],
                agent=agent,
                for_agent=agent,
                message=intent.message,
                detail=f"{reason}\nqueued, it goes out by itself at {when}",
            )
        )
    return held


def _capped(
    config: Config, ticket: TicketRow, kind: str, to: list[Address], cc: list[Address]
) -> tuple[list[Address], list[Address]]:
    """At most ``outbound.max_recipients`` on one mail: To first, then Cc in order."""
    limit = config.outbound.max_recipients
    if len(to) + len(cc) <= limit:
        return to, cc
    kept_to = to[:limit]
    kept_cc = cc[: max(0, limit - len(kept_to))]
    left_out = len(to) + len(cc) - len(kept_to) - len(kept_cc)
    event_rows.add(
        ticket.id,
        "recipients_capped",
        "system",
        new=str(left_out),
        detail=f"{kind}: outbound.max_recipients = {limit}",
    )
    event(log, "notice.capped", notice=kind, ticket=ticket.number, left_out=left_out)
    return kept_to, kept_cc


# Notices that keep staff working a ticket. A busy hour must not cut agents and team
# addresses off them, so they skip the per-recipient window; the per-ticket and overall
# windows still count them. An answer to an agent's own mail (command_error) is not here:
# with a broken client it could loop, so it stays limited per recipient.
_STAFF_NOTICES = (
    "assignment", "customer_reply", "reopened", "escalation", "sla_warning", "sla_breach",
)  # fmt: skip


# Of the overall window, acknowledgements to new senders may use this share; the rest is
# kept for the notices of tickets under way (resolutions, reminders).
ACK_SHARE = 0.8


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

    Read once per transaction (one statement for every scope and window, each count
    stopping at its limit where it can, so a busy hour costs no more than the limit),
    then counted in memory.
    """

    def __init__(
        self,
        rates: tuple[tuple[tuple[int, int], ...], ...],
        ticket_id: int,
        recipients: list[str],
        now: dt.datetime,
    ) -> None:
        per_recipient, per_ticket, overall = rates
        seen_recipients, seen_tickets, seen_overall, self.unhealthy = counts.windows(
            recipients,
            [now - dt.timedelta(seconds=seconds) for _, seconds in per_recipient],
            ticket_id,
            [(now - dt.timedelta(seconds=seconds), count) for count, seconds in per_ticket],
            # Minute buckets: the window is rounded to whole minutes.
            [counts.minute(now) - max(seconds // 60, 1) for _, seconds in overall],
            now,
        )
        self.windows: list[tuple[str, str, int, int, dict[str, int]]] = []
        for (count, seconds), seen in zip(per_recipient, seen_recipients, strict=True):
            self.windows.append(("per recipient", "recipient", count, seconds, seen))
        for (count, seconds), seen_count in zip(per_ticket, seen_tickets, strict=True):
            self.windows.append(("per ticket", "ticket", count, seconds, {"": seen_count}))
        for (count, seconds), seen_count in zip(overall, seen_overall, strict=True):
            self.windows.append(("overall", "all", count, seconds, {"": seen_count}))

    def check(
        self, recipient: str, kind: str, to_staff: bool, now: dt.datetime
    ) -> tuple[str, dt.datetime | None]:
        """Why ``recipient`` may not get this notice now ('' if it may), and — for the
        overall window, which holds mail back instead of suppressing it — when it opens.

        The overall window never holds notices to staff. Acknowledgements to new senders
        are held first: from ``ACK_SHARE`` of the window on, the rest only when it is full.
        """
        exempt = recipient.startswith("staff:")
        for label, scope, count, seconds, seen in self.windows:
            if scope == "recipient" and exempt:
                continue
            if scope == "all":
                if to_staff:
                    continue
                limit = count
                if kind == "acknowledgement":
                    limit = max(0, min(count - 1, int(count * ACK_SHARE)))
                if seen.get("", 0) >= limit:
                    why = (
                        f"circuit breaker: {count} automatic mails {label} within {_span(seconds)}"
                    )
                    if kind == "acknowledgement":
                        why += " (acknowledgements are held first)"
                    return why, now + dt.timedelta(seconds=seconds)
                continue
            key = recipient if scope == "recipient" else ""
            if seen.get(key, 0) >= count:
                why = f"circuit breaker: {count} automatic mails {label} within {_span(seconds)}"
                return why, None
        return "", None

    def ticket_window(self, now: dt.datetime) -> tuple[str, dt.datetime]:
        """Why the per-ticket window is full ('' if it is not), and when it opens."""
        for label, scope, count, seconds, seen in self.windows:
            if scope == "ticket" and seen.get("", 0) >= count:
                why = f"circuit breaker: {count} automatic mails {label} within {_span(seconds)}"
                return why, now + dt.timedelta(seconds=seconds)
        return "", now

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
