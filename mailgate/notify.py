"""Events → notices: which mail goes to whom, rendered from templates, queued in the outbox.

Called inside the transaction of the change that causes the notices, so a
change never commits without its notices and a notice never outlives a change
that rolled back. Delivery is ``outbox.py``'s job.

The rules, in one place:

=================  ==========================================  ==============================
change             notice                                      to
=================  ==========================================  ==============================
created (by mail)  acknowledgement                             requester (RFC 3834 permitting)
created            assignment (queue)                          team members, if unassigned
assignee           assignment                                  the new assignee
message customer   customer_reply                              assignee, else the team
reopened           reopened (instead of customer_reply)        assignee, else the team
agent_reply        agent_reply                                 requester, Cc collaborators
status resolved    resolution                                  requester, Cc collaborators
status closed      closed (off by default)                     requester
=================  ==========================================  ==============================

Every automatic notice passes the circuit breaker (sliding windows per
recipient, per ticket, overall) and the recipient-health check (a recent
permanent bounce); what is held back is recorded as an event on the ticket.
Notices to agents carry a reply address signed for that agent and ticket.

Imports models, tickets, config and ``mailgate.mail``; never a transport.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import jinja2.exceptions
import jinja2.sandbox

from mailgate import store, tickets
from mailgate.config import NOTICE_KINDS, Config, Limits, Mailbox, base_address, parse_rate
from mailgate.context import Context
from mailgate.errors import TemplateError, UsageError
from mailgate.logs import event
from mailgate.mail import compose, tokens
from mailgate.mail.classify import Verdict, is_noreply_address
from mailgate.mail.parse import Address, ParsedMail
from mailgate.store import models as m
from mailgate.store import sql

log = logging.getLogger("mailgate.notify")

SHIPPED_TEMPLATES = Path(__file__).resolve().parent / "templates"
CUSTOMER_FACING = ("acknowledgement", "agent_reply", "resolution", "closed")
_STAFF_KINDS = ("assignment", "customer_reply", "reopened", "command_error", "escalation")
# Every template set: the configurable notices, and the answer to commands not understood.
TEMPLATE_KINDS = (*NOTICE_KINDS, "command_error")
TEMPLATE_FILES = ("subject.txt", "body.txt", "body.html")


# --- templates ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _environment(search_path: tuple[str, ...]) -> jinja2.sandbox.SandboxedEnvironment:
    return jinja2.sandbox.SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(list(search_path)),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=True,
    )


def search_path(config: Config, mailbox: Mailbox | None) -> tuple[str, ...]:
    """Mailbox directory first, then the site directory, then the shipped templates."""
    paths = []
    if mailbox is not None and mailbox.templates:
        paths.append(mailbox.templates)
    if config.templates.dir:
        paths.append(config.templates.dir)
    paths.append(str(SHIPPED_TEMPLATES))
    return tuple(paths)


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def render(
    config: Config, mailbox: Mailbox | None, kind: str, variables: dict[str, Any]
) -> Rendered:
    env = _environment(search_path(config, mailbox))
    try:
        subject = env.get_template(f"{kind}/subject.txt").render(variables)
        text = env.get_template(f"{kind}/body.txt").render(variables)
        try:
            html_template = env.get_template(f"{kind}/body.html")
        except jinja2.TemplateNotFound:
            html = ""
        else:
            html = html_template.render(variables)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"{exc.filename or exc.name}:{exc.lineno}: {exc.message}") from exc
    except jinja2.TemplateNotFound as exc:
        where = ", ".join(search_path(config, mailbox))
        raise TemplateError(f"template {exc.name} not found in {where}") from exc
    except (jinja2.UndefinedError, jinja2.exceptions.SecurityError, TypeError, ValueError) as exc:
        where = _template_line(exc)
        raise TemplateError(f"{where}{type(exc).__name__}: {exc}") from exc
    return Rendered(compose.one_line(subject), text.strip("\n") + "\n", html)


def _template_line(exc: BaseException) -> str:
    """file:line of the template frame in a rendering traceback (Jinja rewrites them)."""
    tb = exc.__traceback__
    where = ""
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith((".txt", ".html")):
            where = f"{filename}:{tb.tb_lineno}: "
        tb = tb.tb_next
    return where


# --- what to send -------------------------------------------------------------------------


@dataclass
class Intent:
    """One notice to queue: its template, the people it goes to, what it is about."""

    kind: str
    ticket: m.Ticket
    to: list[Address]
    cc: list[Address] = field(default_factory=list)
    agent: m.Agent | None = None  # the agent it is about: the assignee, or who answered
    message: m.Message | None = None
    previous_status: str = ""
    # The agent it goes to: gets a reply address signed for them and this ticket.
    for_agent: m.Agent | None = None
    people: People | None = None
    detail: str = ""


@dataclass(frozen=True)
class People:
    """Who a ticket concerns, read once per transaction for all its notices."""

    requester: Address
    collaborators: list[Address]
    team: m.Team | None
    assignee: m.Agent | None
    follow_up_of: int | None = None  # the number of the closed ticket this one continues


def people_of(ticket: m.Ticket) -> People:
    requester = sql.one("SELECT email, name FROM contact WHERE id = ?", ticket.requester_id)
    collaborators = sql.rows(
        "SELECT c.email, c.name FROM participant p JOIN contact c ON c.id = p.contact_id"
        " WHERE p.ticket_id = ? AND p.role = 'collaborator' ORDER BY p.id",
        ticket.id,
    )
    team = None
    if ticket.team_id:
        row = sql.one("SELECT key, name, address FROM team WHERE id = ?", ticket.team_id)
        if row is not None:
            team = m.Team(id=ticket.team_id, key=row[0], name=row[1], address=row[2])
    return People(
        requester=Address(str(requester[0]), str(requester[1] or "")) if requester else Address(""),
        collaborators=[Address(str(e), str(n or "")) for e, n in collaborators],
        team=team,
        assignee=_agent("id", ticket.assignee_id) if ticket.assignee_id else None,
        # The earlier ticket only when this requester was on it: never name a stranger's.
        follow_up_of=sql.value(
            "SELECT t.number FROM ticket_link l JOIN ticket t ON t.id = l.other_id"
            " JOIN participant p ON p.ticket_id = t.id AND p.contact_id = ?"
            " WHERE l.ticket_id = ? AND l.kind = 'follow_up_of'",
            ticket.requester_id,
            ticket.id,
        ),
    )


def _agent(column: str, value: object) -> m.Agent | None:
    row = sql.one(f"SELECT id, key, name, emails, role FROM agent WHERE {column} = ?", value)
    if row is None:
        return None
    return m.Agent(id=row[0], key=row[1], name=row[2], emails=json.loads(row[3]), role=row[4])


def queue(
    ctx: Context,
    changes: Sequence[tickets.Change],
    *,
    mail: ParsedMail | None,
    verdict: Verdict | None,
) -> None:
    """Turn one transaction's changes into outbox rows (inside that transaction).

    The statements do not grow with the number of notices: recipient health, the
    circuit breaker and the thread references are read once per ticket, and all
    rows are written with one INSERT per table.
    """
    by_ticket: dict[int, list[tickets.Change]] = {}
    for change in changes:
        by_ticket.setdefault(change.ticket.id, []).append(change)
    for ticket_changes in by_ticket.values():
        intents = _intents(ctx, ticket_changes, mail, verdict)
        if not intents:
            continue
        ticket = intents[0].ticket
        thread = _thread(ticket, mail)
        admitted = _admit(ctx.config, ticket, intents, m.utcnow())
        _insert(
            ctx.config,
            [p for i in admitted if (p := prepare(ctx, i, mail, thread=thread)) is not None],
        )


def _latest(changes: list[tickets.Change]) -> m.Ticket:
    """The ticket as this transaction left it (writers update the instance they change)."""
    for change in reversed(changes):
        if change.kind not in ("linked", "merged"):
            return change.ticket
    return tickets.by_id(changes[0].ticket.id)


def _intents(
    ctx: Context, changes: list[tickets.Change], mail: ParsedMail | None, verdict: Verdict | None
) -> list[Intent]:
    ticket = _latest(changes)
    box = _mailbox(ctx.config, ticket)
    on = box.notices
    kinds = {c.kind: c for c in changes}
    message_change = next((c for c in changes if c.kind == "message"), None)
    message = message_change.message if message_change else None
    intents: list[Intent] = []
    people = people_of(ticket)
    requester = people.requester
    collaborators = people.collaborators

    if "created" in kinds and mail is not None and on.acknowledgement:
        if verdict is not None and verdict.answerable and not is_noreply_address(requester.email):
            intents.append(Intent("acknowledgement", ticket, [requester], message=message))
    new_assignee = kinds.get("assignee")
    if new_assignee is not None and new_assignee.new and on.assignment:
        agent = _agent("key", new_assignee.new)
        if agent is not None and new_assignee.actor != f"agent:{agent.key}":
            intents.append(
                Intent(
                    "assignment",
                    ticket,
                    [],
                    agent=agent,
                    for_agent=agent,
                    message=_latest_customer(ticket),
                )
            )
    elif ticket.assignee_id is None and on.assignment and on.notify_team:
        if "created" in kinds:
            intents.extend(_team_intents(ctx, "assignment", ticket, message))
        elif (moved := kinds.get("team") or new_assignee) is not None and ticket.status not in (
            "resolved",
            "closed",
        ):
            # Moved to a team, or handed back: the ticket waits in the queue, and the
            # team hears of it (not the agent who did it).
            intents.extend(
                i
                for i in _team_intents(ctx, "assignment", ticket, _latest_customer(ticket))
                if i.for_agent is None or moved.actor != f"agent:{i.for_agent.key}"
            )
    customer_message = message is not None and message.kind in ("customer", "external")
    if "reopened" in kinds and on.reopened:
        intents.extend(_staff_intents(ctx, "reopened", ticket, message, kinds["reopened"].old))
    elif customer_message and "created" not in kinds and on.customer_reply:
        intents.extend(_staff_intents(ctx, "customer_reply", ticket, message, ""))
    if "agent_reply" in kinds and on.agent_reply:
        change = kinds["agent_reply"]
        intents.append(
            Intent(
                "agent_reply",
                ticket,
                [requester],
                cc=collaborators,
                agent=_agent_of(change.actor),
                message=change.message,
            )
        )
    status = kinds.get("status")
    if status is not None and status.new == "resolved" and on.resolution:
        resolution = kinds.get("resolution")
        intents.append(
            Intent(
                "resolution",
                ticket,
                [requester],
                cc=collaborators,
                agent=_agent_of(status.actor),
                message=resolution.message if resolution else None,
            )
        )
    priority = kinds.get("priority")
    if priority is not None and priority.new == "emergency" and on.escalation:
        intents.extend(_escalation(ctx, ticket, priority.actor))
    elif "created" in kinds and ticket.priority == "emergency" and on.escalation:
        intents.extend(_escalation(ctx, ticket, "system"))  # routed straight to emergency
    if "command_error" in kinds:
        change = kinds["command_error"]
        agent = _agent_of(change.actor)
        if agent is not None:
            intents.append(
                Intent(
                    "command_error",
                    ticket,
                    [],
                    agent=agent,
                    for_agent=agent,
                    message=change.message,
                    detail=change.detail,
                )
            )
    if status is not None and status.new == "closed" and on.closed:
        intents.append(Intent("closed", ticket, [requester], agent=_agent_of(status.actor)))
    for intent in intents:
        intent.people = people
    return intents


def _staff_intents(
    ctx: Context, kind: str, ticket: m.Ticket, message: m.Message | None, previous: str
) -> list[Intent]:
    agent = _agent("id", ticket.assignee_id) if ticket.assignee_id else None
    if agent is not None:
        return [
            Intent(
                kind,
                ticket,
                [],
                agent=agent,
                for_agent=agent,
                message=message,
                previous_status=previous,
            )
        ]
    intents = _team_intents(ctx, kind, ticket, message)
    for intent in intents:
        intent.previous_status = previous
    return intents


def _team_intents(
    ctx: Context, kind: str, ticket: m.Ticket, message: m.Message | None
) -> list[Intent]:
    """A team hears of its queue: each member with a reply address signed for them."""
    key = sql.value("SELECT key FROM team WHERE id = ?", ticket.team_id) if ticket.team_id else None
    team = ctx.config.team(str(key)) if key else None
    if team is None:
        return []
    if team.members:
        return [
            Intent(
                kind, ticket, [], for_agent=tickets.agent_row(member, ctx.config), message=message
            )
            for member in team.members
        ]
    if team.address:
        return [Intent(kind, ticket, [Address(team.address, team.name)], message=message)]
    return []


def _escalation(ctx: Context, ticket: m.Ticket, actor: str) -> list[Intent]:
    """An emergency is told to the team's escalation contact (unless they raised it)."""
    key = sql.value("SELECT key FROM team WHERE id = ?", ticket.team_id) if ticket.team_id else None
    team = ctx.config.team(str(key)) if key else None
    if team is None or not team.escalation or actor == f"agent:{team.escalation}":
        return []
    contact = tickets.agent_row(team.escalation, ctx.config)
    return [
        Intent(
            "escalation",
            ticket,
            [],
            agent=_agent_of(actor),
            for_agent=contact,
            message=_latest_customer(ticket),
        )
    ]


def _agent_of(actor: str) -> m.Agent | None:
    if actor.startswith("agent:"):
        return _agent("key", actor.split(":", 1)[1])
    return None


def _mailbox(config: Config, ticket: m.Ticket) -> Mailbox:
    for box in config.mailboxes:
        if box.name == ticket.mailbox:
            return box
    return config.mailboxes[0]


def _latest_customer(ticket: m.Ticket) -> m.Message | None:
    row = sql.one(
        "SELECT id, message_id, subject, text, from_addr, from_name, created_at, kind FROM message"
        " WHERE ticket_id = ? AND direction = 'in' AND kind IN ('customer', 'external')"
        " ORDER BY id DESC LIMIT 1",
        ticket.id,
    )
    if row is None:
        return None
    return m.Message(
        id=row[0],
        ticket=ticket.id,
        message_id=row[1],
        subject=row[2],
        text=row[3],
        from_addr=row[4],
        from_name=row[5],
        created_at=sql.read_ts(row[6]),
        direction="in",
        kind=row[7],
    )


# --- queuing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """A notice rendered and composed, ready to queue (or to print for a preview)."""

    kind: str
    ticket: m.Ticket
    outgoing: compose.Outgoing
    content: bytes
    automatic: bool

    @property
    def recipients(self) -> list[str]:
        return [a.email for a in (*self.outgoing.to, *self.outgoing.cc)]


def prepare(
    ctx: Context,
    intent: Intent,
    mail: ParsedMail | None,
    *,
    thread: tuple[str, tuple[str, ...]] | None = None,
) -> Prepared | None:
    """Render and compose one notice for the recipients of ``intent``; None if there are none."""
    config = ctx.config
    ticket = intent.ticket
    to = list(intent.to)
    if intent.for_agent is not None and not to:
        to = [Address(intent.for_agent.emails[0], intent.for_agent.name)]
    cc = list(intent.cc)
    automatic = intent.kind != "agent_reply"
    now = m.utcnow()
    if not to and cc:
        to, cc = cc[:1], cc[1:]
    if not to:
        return None
    box = _mailbox(config, ticket)
    token = ""
    if intent.for_agent is not None:
        token = tokens.sign(ctx.secret, intent.for_agent.key, ticket.number)
    reply_address = box.address
    if box.plus_reply_to or token:
        reply_address = tokens.reply_address(box.address, ticket.number, token)
    rendered = render(config, box, intent.kind, variables_for(ctx, intent, box, reply_address))
    in_reply_to, references = thread if thread is not None else _thread(ticket, mail)
    if intent.message is not None and intent.message.kind in ("customer", "external"):
        in_reply_to = intent.message.message_id
    subject = rendered.subject
    foreign = [t for t in (ticket.foreign_tags or []) if t not in subject]
    if foreign and intent.kind in CUSTOMER_FACING:
        subject = f"{subject} {' '.join(foreign)}"
    outgoing = compose.Outgoing(
        sender=Address(box.address, config.gateway.name),
        to=tuple(to),
        cc=tuple(cc),
        reply_to=reply_address,
        subject=subject,
        text=rendered.text,
        html=rendered.html,
        message_id=f"<{uuid.uuid4().hex}.{ticket.number}@{config.gateway.domain}>",
        in_reply_to=in_reply_to,
        references=references,
        auto_submitted=_AUTO_SUBMITTED.get(intent.kind, "auto-generated"),
        loop_token=ctx.loop_token,
        thread_topic=ticket.subject,
        thread_index=compose.thread_index(
            f"{config.gateway.domain}#{ticket.number}", ticket.created_at, now
        ),
        date=now,
    )
    return Prepared(intent.kind, ticket, outgoing, compose.build(outgoing), automatic)


# Acknowledgements answer a person (RFC 3834 auto-replied); an agent's reply is written
# by a person and carries no marker; every other notice is auto-generated.
_AUTO_SUBMITTED = {"acknowledgement": "auto-replied", "agent_reply": ""}


def _insert(config: Config, notices: list[Prepared]) -> None:
    """Outbox rows, the thread's outbound messages and the breaker log: one INSERT each."""
    if not notices:
        return
    now = sql.ts(m.utcnow())
    sql.insert_many(
        "outbox_item",
        (
            "message_id",
            "ticket_id",
            "notice",
            "sender",
            "recipients",
            "content",
            "automatic",
            "status",
            "attempts",
            "next_attempt_at",
            "last_error",
            "created_at",
        ),
        [
            (
                p.outgoing.message_id,
                p.ticket.id,
                p.kind,
                p.outgoing.sender.email,
                sql.js(p.recipients),
                p.content,
                p.automatic,
                "queued",
                0,
                now,
                "",
                now,
            )
            for p in notices
        ],
    )
    sql.insert_many(
        "message",
        (
            "ticket_id",
            "direction",
            "kind",
            "message_id",
            "from_addr",
            "from_name",
            "to_addrs",
            "cc_addrs",
            "subject",
            "date",
            "text",
            "full_text",
            "html",
            "raw_sha256",
            "trace",
            "verified",
            "created_at",
        ),
        [
            (
                p.ticket.id,
                "out",
                "agent" if p.kind == "agent_reply" else "system",
                p.outgoing.message_id,
                p.outgoing.sender.email,
                p.outgoing.sender.name,
                sql.js([str(a) for a in p.outgoing.to]),
                sql.js([str(a) for a in p.outgoing.cc]),
                p.outgoing.subject,
                now,
                p.outgoing.text,
                p.outgoing.text,
                "",
                "",
                sql.js([f"notice {p.kind}"]),
                True,
                now,
            )
            for p in notices
        ],
    )
    automatic = [
        (_window_key(config, p.kind, r.lower()), p.ticket.id, now)
        for p in notices
        if p.automatic
        for r in p.recipients
    ]
    if automatic:
        sql.insert_many("auto_mail_log", ("recipient", "ticket_id", "at"), automatic)
        sql.run(
            "INSERT INTO mail_counter (minute, count) VALUES (?, ?) ON CONFLICT (minute)"
            " DO UPDATE SET count = mail_counter.count + excluded.count",
            _minute(m.utcnow()),
            len(automatic),
        )
    for p in notices:
        event(
            log,
            "notice.queued",
            logging.DEBUG,
            notice=p.kind,
            ticket=p.ticket.number,
            recipients=len(p.recipients),
            message_id=p.outgoing.message_id,
        )


def _admit(
    config: Config, ticket: m.Ticket, intents: list[Intent], now: dt.datetime
) -> list[Intent]:
    """The intents with only the recipients that may get mail now.

    Everybody held back — an address that bounced permanently, or a full window of
    the circuit breaker — is recorded as an event on the ticket, never dropped
    silently. Counts include the notices admitted earlier in this same transaction.
    """
    for intent in intents:
        if intent.for_agent is not None and not intent.to:
            intent.to = [Address(intent.for_agent.emails[0], intent.for_agent.name)]
    emails = sorted({a.email.lower() for i in intents for a in (*i.to, *i.cc)})
    if not emails:
        return []
    unhealthy = {
        str(email): (sql.read_ts(until), str(reason or ""))
        for email, until, reason in sql.rows(
            "SELECT email, undeliverable_until, undeliverable_reason FROM contact"
            f" WHERE email IN ({sql.placeholders(len(emails))}) AND undeliverable_until > ?",
            *emails,
            sql.ts(now),
        )
    }
    breaker = _Breaker(_rates(config.outbound.limits), ticket.id, emails, now)
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
                    reason = breaker.check(_window_key(config, intent.kind, email))
                else:
                    reason = ""
                if reason:
                    tickets.record(
                        tickets.Change(
                            ticket,
                            "notice_suppressed",
                            "system",
                            new=email,
                            detail=f"{intent.kind}: {reason}",
                        )
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
                    _window_key(config, intent.kind, p.email.lower())
                    for p in (*kept["to"], *kept["cc"])
                ]
            )
        if kept["to"] or kept["cc"]:
            intent.to, intent.cc = kept["to"], kept["cc"]
            admitted.append(intent)
    return admitted


# Notices that keep staff working a ticket. A busy hour must not cut agents and team
# addresses off them, so they skip the per-recipient window; the per-ticket and overall
# windows still count them. An answer to an agent's own mail (command_error) is not here:
# with a broken client it could loop, so it stays limited per recipient.
_STAFF_NOTICES = ("assignment", "customer_reply", "reopened", "escalation")


def _window_key(config: Config, kind: str, email: str) -> str:
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
            since = sql.ts(now - dt.timedelta(seconds=seconds))
            seen = dict(
                sql.rows(
                    "SELECT recipient, COUNT(*) FROM auto_mail_log WHERE recipient IN"
                    f" ({sql.placeholders(len(recipients))}) AND at > ? GROUP BY recipient",
                    *recipients,
                    since,
                )
            )
            self.windows.append(
                (
                    "per recipient",
                    "recipient",
                    count,
                    seconds,
                    {str(k): int(v) for k, v in seen.items()},
                )
            )
        for count, seconds in per_ticket:
            since = sql.ts(now - dt.timedelta(seconds=seconds))
            seen_count = sql.value(
                "SELECT COUNT(*) FROM (SELECT 1 FROM auto_mail_log WHERE ticket_id = ? AND at > ?"
                " LIMIT ?) AS recent",
                ticket_id,
                since,
                count,
            )
            self.windows.append(
                ("per ticket", "ticket", count, seconds, {"": int(seen_count or 0)})
            )
        for count, seconds in overall:
            # Minute buckets: the window is rounded to whole minutes.
            seen_count = sql.value(
                "SELECT COALESCE(SUM(count), 0) FROM mail_counter WHERE minute > ?",
                _minute(now) - max(seconds // 60, 1),
            )
            self.windows.append(("overall", "all", count, seconds, {"": int(seen_count or 0)}))

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
def _rates(limits: Limits) -> tuple[tuple[tuple[int, int], ...], ...]:
    return tuple(
        tuple(parse_rate(r) for r in rates)
        for rates in (limits.per_recipient, limits.per_ticket, limits.overall)
    )


def _minute(when: dt.datetime) -> int:
    return int(when.replace(tzinfo=dt.UTC).timestamp() // 60)


def prune(config: Config) -> None:
    """Drop breaker bookkeeping older than the longest window (a scheduled job)."""
    longest = max((s for rates in _rates(config.outbound.limits) for _, s in rates), default=3600)
    cutoff = m.utcnow() - dt.timedelta(seconds=longest)
    with store.write_transaction():
        sql.run("DELETE FROM auto_mail_log WHERE at < ?", sql.ts(cutoff))
        sql.run("DELETE FROM mail_counter WHERE minute < ?", _minute(cutoff))


def _span(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _thread(ticket: m.Ticket, mail: ParsedMail | None) -> tuple[str, tuple[str, ...]]:
    """In-Reply-To the customer's message being answered; References along the conversation."""
    first = sql.rows(
        "SELECT message_id FROM message WHERE ticket_id = ? AND direction = 'in'"
        " ORDER BY id LIMIT 1",
        ticket.id,
    )
    latest = sql.rows(
        "SELECT message_id FROM message WHERE ticket_id = ? AND kind IN ('customer', 'external')"
        " ORDER BY id DESC LIMIT 3",
        ticket.id,
    )
    # The customer's latest mail is what every notice answers (it is stored already when
    # the notice comes from it); the first one roots the conversation.
    chain = [str(r[0]) for r in first] + [str(r[0]) for r in reversed(latest)]
    answered = chain[-1] if chain else ""
    return answered, compose.trim_references(chain)


def variables_for(ctx: Context, intent: Intent, box: Mailbox, reply_address: str) -> dict[str, Any]:
    """The template variables (documented in templates/README.md): plain values only."""
    config = ctx.config
    ticket = intent.ticket
    people = intent.people or people_of(ticket)
    requester, team, assignee = people.requester, people.team, people.assignee
    url = (
        config.gateway.ticket_url.replace("{number}", str(ticket.number))
        if config.gateway.ticket_url
        else ""
    )
    message = intent.message
    return {
        "gateway": {"name": config.gateway.name, "domain": config.gateway.domain},
        "mailbox": {"name": box.name, "address": box.address},
        "ticket": {
            "number": ticket.number,
            "tag": tickets.tag(config, ticket.number),
            "subject": ticket.subject,
            "status": ticket.status,
            "priority": ticket.priority,
            "team": team.name if team else "",
            "assignee": assignee.name if assignee else "",
            "created_at": ticket.created_at,
            "url": url,
            "follow_up_of": tickets.tag(config, people.follow_up_of) if people.follow_up_of else "",
        },
        "requester": {"name": requester.name, "email": requester.email},
        "agent": _agent_vars(intent.agent),
        "recipient": _agent_vars(intent.for_agent),
        "team": {"name": team.name, "address": team.address} if team else None,
        "message": (
            {
                "from": _sender_label(message),
                "from_name": message.from_name or "",
                "from_email": message.from_addr,
                "kind": message.kind,
                "verified": bool(message.verified),
                "unverified_agent": not message.verified
                and config.agent_for(message.from_addr or "") is not None,
                "subject": message.subject,
                "text": message.text,
                "date": message.created_at,
            }
            if message is not None
            else None
        ),
        "previous_status": intent.previous_status,
        "problems": intent.detail.splitlines() if intent.kind == "command_error" else [],
        "reply_address": reply_address,
        "ticket_url": url,
        "reopen_window_days": config.lifecycle.reopen_window_days,
    }


def _agent_vars(agent: m.Agent | None) -> dict[str, str] | None:
    if agent is None:
        return None
    return {"name": agent.name, "email": agent.emails[0], "key": agent.key}


def _sender_label(message: m.Message) -> str:
    name = message.from_name or ""
    return f"{name} <{message.from_addr}>" if name else message.from_addr


def record_bounce(
    ctx: Context,
    ticket: m.Ticket,
    mail: ParsedMail,
    message: m.Message,
    changes: tickets.Changes,
    about: str,
) -> None:
    """A delivery report on our mail ``about``: an event per recipient; permanent ones suppress.

    Only addresses that mail actually went to count: a report is easy to forge, and
    must never let a customer silence an agent (or anybody else) for days.
    """
    report = mail.report
    recipients = report.recipients if report else ()
    if not recipients:
        changes.add(
            tickets.Change(
                ticket,
                "delivery_failed",
                "system",
                message=message,
                detail="a delivery report without recipient details",
            )
        )
        return
    sent_to = _recipients_of(about)
    config = ctx.config
    days = config.outbound.limits.undeliverable_days
    for r in recipients:
        address = r.address.lower()
        if address not in sent_to:
            changes.add(
                tickets.Change(
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
            changes.add(
                tickets.Change(
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
        changes.add(
            tickets.Change(
                ticket, kind, "system", new=address, message=message, detail=detail[:1000]
            )
        )
        staff = base_address(address) in config.own_addresses or config.agent_for(address)
        if r.permanent and days > 0 and not staff:
            until = m.utcnow() + dt.timedelta(days=days)
            person = tickets.contact(address)
            sql.run(
                "UPDATE contact SET undeliverable_until = ?, undeliverable_reason = ? WHERE id = ?",
                sql.ts(until),
                detail[:1000],
                person.id,
            )


def _recipients_of(message_id: str) -> set[str]:
    found = sql.value("SELECT recipients FROM outbox_item WHERE message_id = ?", message_id)
    return {str(r).lower() for r in json.loads(found)} if found else set()


# --- checking and previewing templates ----------------------------------------------------


@dataclass(frozen=True)
class TemplateProblem:
    severity: str  # error | warning
    where: str  # file[:line]
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.where}: {self.message}"


def sample_variables(config: Config, box: Mailbox, kind: str) -> dict[str, Any]:
    """Variables of a made-up ticket, shaped exactly like ``variables_for``'s."""
    team = config.team(box.team) if box.team else None
    agent = config.agents[0] if config.agents else None
    tag = tickets.tag(config, 482913)
    url = (
        config.gateway.ticket_url.replace("{number}", "482913") if config.gateway.ticket_url else ""
    )
    agent_vars = {"name": agent.name, "email": agent.emails[0], "key": agent.key} if agent else None
    return {
        "gateway": {"name": config.gateway.name, "domain": config.gateway.domain},
        "mailbox": {"name": box.name, "address": box.address},
        "ticket": {
            "number": 482913,
            "tag": tag,
            "subject": "The mobile online banking is down <b>&",
            "status": "open",
            "priority": "normal",
            "team": team.name if team else "",
            "assignee": agent.name if agent else "",
            "created_at": dt.datetime(2026, 11, 22, 8, 0),
            "url": url,
            "follow_up_of": "",
        },
        "requester": {"name": "Carla Customer", "email": "carla@customer.example"},
        "agent": agent_vars,
        "recipient": agent_vars if kind in _STAFF_KINDS else None,
        "team": {"name": team.name, "address": team.address} if team else None,
        "message": {
            "from": "Carla Customer <carla@customer.example>",
            "from_name": "Carla Customer",
            "from_email": "carla@customer.example",
            "kind": "customer",
            "verified": False,
            "unverified_agent": False,
            "subject": "The mobile online banking is down",
            "text": "Hello,\n\nthe mobile online banking is down.\n<script>x</script>",
            "date": dt.datetime(2026, 11, 22, 8, 0),
        },
        "previous_status": "resolved",
        "problems": ["'#asign me': unknown command (known: #assign, #team, …)"],
        "reply_address": tokens.reply_address(box.address, 482913),
        "ticket_url": url,
        "reopen_window_days": config.lifecycle.reopen_window_days,
    }


def check_templates(config: Config) -> list[TemplateProblem]:
    """Render every template (shipped and every override) against a sample ticket."""
    problems: list[TemplateProblem] = []
    sources: list[tuple[str, Mailbox]] = [(str(SHIPPED_TEMPLATES), config.mailboxes[0])]
    if config.templates.dir:
        sources.append((config.templates.dir, config.mailboxes[0]))
    sources.extend((box.templates, box) for box in config.mailboxes if box.templates)
    for directory, box in sources:
        if not Path(directory).is_dir():
            problems.append(
                TemplateProblem("error", directory, "template directory does not exist")
            )
            continue
        chain = search_path(config, box)
        env = _environment(chain[chain.index(directory) :] if directory in chain else (directory,))
        for kind in TEMPLATE_KINDS:
            for name in TEMPLATE_FILES:
                path = Path(directory) / kind / name
                if not path.is_file():
                    continue
                problems.extend(_check_one(env, config, box, kind, name, path))
    for box in config.mailboxes:
        for kind in CUSTOMER_FACING:
            try:
                rendered = render(config, box, kind, sample_variables(config, box, kind))
            except TemplateError:
                continue  # reported above with its file and line
            if tickets.tag(config, 482913) not in rendered.subject:
                problems.append(
                    TemplateProblem(
                        "warning",
                        f"{kind}/subject.txt (mailbox {box.name})",
                        "the subject lacks {{ ticket.tag }}: replies would not thread by subject",
                    )
                )
    return problems


def _check_one(
    env: jinja2.sandbox.SandboxedEnvironment,
    config: Config,
    box: Mailbox,
    kind: str,
    name: str,
    path: Path,
) -> list[TemplateProblem]:
    try:
        env.get_template(f"{kind}/{name}").render(sample_variables(config, box, kind))
    except jinja2.TemplateSyntaxError as exc:
        return [TemplateProblem("error", f"{path}:{exc.lineno}", exc.message or "syntax error")]
    except Exception as exc:  # noqa: BLE001 - any rendering failure is the admin's to see
        where = _template_line(exc).rstrip(": ") or str(path)
        return [TemplateProblem("error", where, f"{type(exc).__name__}: {exc}")]
    return []


def preview(ctx: Context, kind: str, number: int | None) -> bytes:
    """The complete message ``kind`` would send for ticket ``number`` (a sample without one)."""
    if kind not in TEMPLATE_KINDS:
        raise UsageError(f"no notice {kind!r}; one of {', '.join(TEMPLATE_KINDS)}")
    config = ctx.config
    if number is None:
        box = config.mailboxes[0]
        variables = sample_variables(config, box, kind)
        rendered = render(config, box, kind, variables)
        outgoing = compose.Outgoing(
            sender=Address(box.address, config.gateway.name),
            to=(Address("carla@customer.example", "Carla Customer"),),
            reply_to=variables["reply_address"],
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            message_id=f"<preview.482913@{config.gateway.domain}>",
            auto_submitted=_AUTO_SUBMITTED.get(kind, "auto-generated"),
            loop_token=ctx.loop_token,
        )
        return compose.build(outgoing)
    ticket = m.Ticket.get_or_none(m.Ticket.number == number)
    if ticket is None:
        raise UsageError(f"no ticket #{number}")
    people = people_of(ticket)
    staff = kind in _STAFF_KINDS
    recipient = people.assignee
    if staff and recipient is None:
        first = sql.value("SELECT key FROM agent WHERE active = ? ORDER BY id LIMIT 1", True)
        recipient = _agent("key", first) if first else None
    intent = Intent(
        kind,
        ticket,
        [] if staff else [people.requester],
        cc=[] if staff else people.collaborators,
        agent=people.assignee,
        for_agent=recipient if staff else None,
        message=_latest_customer(ticket),
        previous_status="resolved",
        people=people,
    )
    prepared = prepare(ctx, intent, None)
    if prepared is None:
        raise UsageError(f"nobody would receive {kind} for #{number}")
    return prepared.content
