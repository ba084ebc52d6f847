"""The config schema: one frozen dataclass per table of the TOML file.

The schema *is* these dataclasses: a key that is not a field is an unknown key,
a value of the wrong type is named with the type it should have (``loader.py``
enforces both). A new config table is a new frozen dataclass here and a field of
``Config``; document every key in ``config/mailgate.toml``.

Imports only the standard library and ``mailgate.errors``.
"""

from __future__ import annotations

import fnmatch
import functools
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from mailgate.config.desk import Answers, PriorityMatrix, Spam, Tickets
from mailgate.config.web import Web, Webhook
from mailgate.errors import ConfigError

Status = Literal["new", "open", "pending", "resolved", "closed"]
Priority = Literal["low", "normal", "high", "emergency"]
PRIORITIES: tuple[str, ...] = get_args(Priority)
STATUSES: tuple[str, ...] = get_args(Status)
NOTICE_KINDS: tuple[str, ...] = (
    "acknowledgement",
    "assignment",
    "customer_reply",
    "agent_reply",
    "reopened",
    "resolution",
    "closed",
    "escalation",
    "sla_warning",
    "sla_breach",
    "pending_reminder",
    "auto_resolved",
    "csat_thanks",
    "attachment_refused",
    "note",
    "agent_activity",
    "reassigned",
    "queue",
)

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Gateway:
    name: str = "mailgate helpdesk"
    domain: str = "mailgate.localhost"
    ticket_prefix: str = "MG"
    ticket_numbers: Literal["random", "sequential"] = "random"
    # The first number handed out in "sequential" mode (a counter already past it goes on).
    first_ticket_number: int = 1000
    ticket_url: str = ""
    secret_key_file: str = "var/secret.key"
    max_message_size: int = 40 * 1024 * 1024
    # Longest one mail may be processed by the ingest worker (seconds) before it is
    # stopped and quarantined "took too long": one mail never stalls intake for everyone.
    max_processing_seconds: float = 30.0
    # Ingest worker processes of `serve` (worker/pool.py). More than one needs PostgreSQL
    # (SQLite has one writer, and intake/order.py keeps replies behind their parents
    # across processes only there); each costs its own memory.
    ingest_workers: int = 1
    # How much structure one mail may have (mail.parse.ParseLimits): beyond it the rest
    # is not read — the mail is kept whole and the repair is noted on it.
    max_mime_depth: int = 30
    max_mime_parts: int = 1000
    max_header_count: int = 1000
    # The zone of the built-in calendar "24x7" and of calendars without their own (IANA).
    timezone: str = "UTC"


@dataclass(frozen=True)
class Storage:
    blob_dir: str = "var/blobs"
    # Where blobs live, instead of blob_dir: file:///path, postgresql://…, s3://bucket/prefix
    # (config/blobs.py). With a non-file store, blob_dir holds only big mails in flight.
    blob_url: str = ""
    s3_endpoint: str = ""
    sync: Literal["normal", "full"] = "normal"


@dataclass(frozen=True)
class Database:
    url: str = "sqlite:///var/mailgate.db"


@dataclass(frozen=True)
class Lifecycle:
    reopen_window_days: int = 30
    unknown_sender: Literal["append", "new_ticket"] = "append"
    # Wall-clock durations from when the ticket entered the status ("" switches it off).
    pending_reminder_after: str = "3d"
    pending_close_after: str = "7d"
    resolved_close_after: str = "5d"
    # At most this many collaborators per ticket; a Cc beyond it is not added (trace, event).
    max_collaborators: int = 20


@dataclass(frozen=True)
class Notices:
    acknowledgement: bool = True
    assignment: bool = True
    customer_reply: bool = True
    agent_reply: bool = True
    reopened: bool = True
    resolution: bool = True
    closed: bool = False
    escalation: bool = True
    sla_warning: bool = True
    sla_breach: bool = True
    pending_reminder: bool = True
    auto_resolved: bool = True
    # The resolution notice offers one-click rating links (good/bad); the rating is thanked.
    csat: bool = True
    csat_thanks: bool = True
    # To the sender of a file over [[mailbox]] max_attachment_size: named, not kept.
    attachment_refused: bool = True
    # Agents know what happens on their tickets: a note is mailed to the assignee (else
    # the team), another agent's answer to the assignee, a reassignment to who had it.
    note: bool = True
    agent_activity: bool = True
    reassigned: bool = True
    queue: bool = True  # the answer to an agent's #queue
    # Who else hears of new tickets and customer replies when nobody is assigned.
    notify_team: bool = True
    # Bytes of the customer's files one notice to agents carries; -1: [notices]'s value.
    attach_max_bytes: int = -1

    def enabled(self, kind: str) -> bool:
        return bool(getattr(self, kind))


@dataclass(frozen=True)
class NoticeFiles:
    """``[notices]``: the files notices carry (issue 11)."""

    # The customer's files a customer_reply/assignment/reopened notice carries, in bytes;
    # beyond it each file is one line (name, type, size, `mailgate attachments get ID`).
    attach_max_bytes: int = 10 * 1024 * 1024
    # Executables (.exe, .js, .bat, application/x-msdownload…) are listed, not relayed.
    relay_executables: bool = False


@dataclass(frozen=True)
class Mailbox:
    name: str
    address: str
    aliases: tuple[str, ...] = ()
    team: str = ""
    priority: Priority = "normal"
    plus_reply_to: bool = True
    templates: str = ""
    notices: Notices = field(default_factory=Notices)
    # A file over this is ticketed without its bytes and its sender is told (25 MiB).
    max_attachment_size: int = 25 * 1024 * 1024
    # Web forms: From one of these (a local part, an address, or a pattern like
    # "*@forms.example.org") and Reply-To naming one person: that person is the requester.
    form_senders: tuple[str, ...] = (
        "noreply", "no-reply", "donotreply", "do-not-reply", "wordpress", "forms",
    )  # fmt: skip

    @property
    def addresses(self) -> tuple[str, ...]:
        return (self.address.lower(), *(a.lower() for a in self.aliases))

    def is_form_sender(self, address: str) -> bool:
        """Whether ``address`` is a web form's own (``form_senders``): it never gets mail."""
        address = address.lower()
        local_parts, patterns = self._form_senders
        if address.rsplit("@", 1)[0] in local_parts:
            return True
        return any(fnmatch.fnmatchcase(address, pattern) for pattern in patterns)

    @functools.cached_property
    def _form_senders(self) -> tuple[frozenset[str], tuple[str, ...]]:
        """``form_senders`` sorted once (every address of every notice is asked about):
        the plain local parts, and the addresses and patterns fnmatch compares."""
        entries = [e.lower() for e in self.form_senders]
        plain = [e for e in entries if "@" not in e and not any(c in e for c in "*?[")]
        return frozenset(plain), tuple(e for e in entries if e not in plain)


@dataclass(frozen=True)
class Team:
    key: str
    name: str
    address: str = ""
    members: tuple[str, ...] = ()
    escalation: str = ""
    assignment: Literal["none", "round_robin", "least_open"] = "none"


@dataclass(frozen=True)
class Agent:
    key: str
    name: str
    emails: tuple[str, ...]
    role: Literal["agent", "admin"] = "agent"
    # For mail submitted through the listener with SMTP AUTH (over TLS): login is the key.
    smtp_password_env: str = ""
    smtp_password_file: str = ""
    # A daily mail with this agent's tickets (the #queue answer) at HH:MM in
    # gateway.timezone, sent by `jobs run` / serve's job. Empty: none.
    digest: str = ""

    def __post_init__(self) -> None:
        if self.digest and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", self.digest):
            raise ValueError(f"digest {self.digest!r} is not a time like '08:00'")


@dataclass(frozen=True)
class Route:
    """A routing rule: every condition given must match; first matching rule wins."""

    name: str
    mailbox: str = ""
    to: tuple[str, ...] = ()
    sender: tuple[str, ...] = ()
    subject: tuple[str, ...] = ()
    body: tuple[str, ...] = ()
    header: tuple[str, ...] = ()
    team: str = ""
    priority: Literal["", "low", "normal", "high", "emergency"] = ""
    category: str = ""
    tags: tuple[str, ...] = ()
    assignee: str = ""
    urgency: Literal["", "low", "medium", "high"] = ""
    impact: Literal["", "low", "medium", "high"] = ""


@dataclass(frozen=True)
class Security:
    # authserv-ids of our own receiving servers: only their Authentication-Results count.
    trusted_authserv_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class AgentMail:
    # Keep the agent's signature in replies relayed to the customer (quotes are always cut).
    keep_signature: bool = True


@dataclass(frozen=True)
class SmtpRelay:
    host: str = "127.0.0.1"
    port: int = 25
    security: Literal["none", "starttls", "tls"] = "starttls"
    verify: bool = True
    username: str = ""
    password_env: str = ""
    password_file: str = ""
    timeout: int = 30
    # Connections a delivery run keeps open to the relay, each carrying a mail of a round.
    connections: int = 4


@dataclass(frozen=True)
class Limits:
    per_recipient: tuple[str, ...] = ("10/10m", "30/1h")
    per_ticket: tuple[str, ...] = ("20/1h",)
    overall: tuple[str, ...] = ("600/1h",)
    undeliverable_days: int = 7
    # Acknowledgements the overall window held back longer than this are dropped (an
    # event on the ticket says so): an answer to a mail of yesterday helps nobody.
    held_acknowledgement_max_age: str = "6h"


@dataclass(frozen=True)
class Outbound:
    transport: Literal["maildir", "smtp"] = "maildir"
    maildir: str = "var/sent"
    smtp: SmtpRelay = field(default_factory=SmtpRelay)
    limits: Limits = field(default_factory=Limits)
    batch_size: int = 100
    max_attempts: int = 12
    # At most this many recipients (To + Cc) on one outbound mail.
    max_recipients: int = 50
    # An agent's reply larger than this once encoded is not sent (the agent is told).
    max_message_size: int = 20 * 1024 * 1024


@dataclass(frozen=True)
class Templates:
    dir: str = ""


@dataclass(frozen=True)
class Listener:
    enabled: bool = True
    protocol: Literal["smtp", "lmtp"] = "smtp"
    host: str = "127.0.0.1"
    port: int = 2525
    socket: str = ""
    # Who may connect to the socket (Postfix must): permission bits as octal digits in a
    # string ("0660"; empty: as the umask makes it) and a group name ("postfix").
    socket_mode: str = ""
    socket_group: str = ""
    hostname: str = ""
    max_connections: int = 100
    tls_cert: str = ""
    tls_key: str = ""
    require_tls: bool = False


@dataclass(frozen=True)
class ImapAccount:
    name: str
    host: str
    user: str
    mailbox: str = ""
    port: int = 993
    security: Literal["tls", "starttls", "none"] = "tls"
    verify: bool = True
    auth: Literal["password", "xoauth2"] = "password"
    password_env: str = ""
    password_file: str = ""
    oauth2_token_command: str = ""
    oauth2_token_url: str = ""
    oauth2_client_id: str = ""
    oauth2_client_secret_env: str = ""
    oauth2_refresh_token_file: str = ""
    folder: str = "INBOX"
    after: Literal["move", "flag", "delete"] = "move"
    move_to: str = "Processed"
    idle: bool = True
    poll_seconds: int = 60
    batch_size: int = 50


@dataclass(frozen=True)
class Metrics:
    # Prometheus metrics on http://LISTEN/metrics while serve runs ("host:port"; empty: off).
    listen: str = ""


@dataclass(frozen=True)
class Jobs:
    outbox_seconds: int = 5
    recover_seconds: int = 300
    # How often serve runs `jobs run` (SLA warnings and breaches, reminders, auto-close).
    due_seconds: int = 60


@dataclass(frozen=True)
class Calendar:
    """Working hours: weekly ranges in a zone, and holidays (config/calendars.py checks them)."""

    key: str
    timezone: str = ""  # IANA name; empty: gateway.timezone
    mon: tuple[str, ...] = ()
    tue: tuple[str, ...] = ()
    wed: tuple[str, ...] = ()
    thu: tuple[str, ...] = ()
    fri: tuple[str, ...] = ()
    sat: tuple[str, ...] = ()
    sun: tuple[str, ...] = ()
    holidays: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sla:
    """An SLA policy: its clocks in a calendar's working time, what breach does, what it covers."""

    key: str
    name: str = ""
    calendar: str = "24x7"
    first_response: str = ""
    next_response: str = ""
    resolution: str = ""
    warn_at: str = "80%"
    breach_team: str = ""
    breach_priority: Literal["", "low", "normal", "high", "emergency"] = ""
    priorities: tuple[Priority, ...] = ()
    mailboxes: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    sender_domains: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    path: Path
    mailboxes: tuple[Mailbox, ...]
    gateway: Gateway = field(default_factory=Gateway)
    storage: Storage = field(default_factory=Storage)
    database: Database = field(default_factory=Database)
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    teams: tuple[Team, ...] = ()
    agents: tuple[Agent, ...] = ()
    outbound: Outbound = field(default_factory=Outbound)
    notices: NoticeFiles = field(default_factory=NoticeFiles)
    templates: Templates = field(default_factory=Templates)
    listener: Listener = field(default_factory=Listener)
    imap: tuple[ImapAccount, ...] = ()
    jobs: Jobs = field(default_factory=Jobs)
    metrics: Metrics = field(default_factory=Metrics)
    routes: tuple[Route, ...] = ()
    security: Security = field(default_factory=Security)
    agent_mail: AgentMail = field(default_factory=AgentMail)
    calendars: tuple[Calendar, ...] = ()
    slas: tuple[Sla, ...] = ()
    spam: Spam = field(default_factory=Spam)
    answers: Answers = field(default_factory=Answers)
    tickets: Tickets = field(default_factory=Tickets)
    priority_matrix: PriorityMatrix = field(default_factory=PriorityMatrix)
    web: Web = field(default_factory=Web)
    webhooks: tuple[Webhook, ...] = ()

    def category(self, name: str) -> str | None:
        """The configured category ``name`` stands for (any case), or None."""
        for category in self.tickets.categories:
            if category.lower() == name.strip().lower():
                return category
        return None

    # --- lookups used all over the core -------------------------------------------------

    def mailbox(self, name: str) -> Mailbox:
        for box in self.mailboxes:
            if box.name == name:
                return box
        raise ConfigError(f"no mailbox named {name!r} in {self.path}")

    def mailbox_for(self, addresses: typing.Iterable[str]) -> Mailbox | None:
        """The first of our mailboxes among these addresses (plus-addresses included)."""
        for address in addresses:
            box = self._by_address.get(base_address(address))
            if box is not None:
                return box
        return None

    @property
    def mailbox_addresses(self) -> frozenset[str]:
        """The addresses of our mailboxes (and aliases): mail to them comes back to us."""
        return frozenset(self._by_address)

    @property
    def own_addresses(self) -> frozenset[str]:
        """Every address mail may come *from* when we sent it: mailboxes and team addresses."""
        return self._own

    def agent_for(self, address: str) -> Agent | None:
        return self._agents_by_email.get(address.lower())

    def agent(self, key: str) -> Agent | None:
        for agent in self.agents:
            if agent.key == key:
                return agent
        return None

    def team(self, key: str) -> Team | None:
        for team in self.teams:
            if team.key == key:
                return team
        return None

    def __post_init__(self) -> None:
        by_address: dict[str, Mailbox] = {}
        for box in self.mailboxes:
            for address in box.addresses:
                by_address.setdefault(address, box)
        own = set(by_address)
        own.update(t.address.lower() for t in self.teams if t.address)
        agents = {e.lower(): a for a in self.agents for e in a.emails}
        object.__setattr__(self, "_by_address", by_address)
        object.__setattr__(self, "_own", frozenset(own))
        object.__setattr__(self, "_agents_by_email", agents)

    _by_address: dict[str, Mailbox] = field(init=False, repr=False, compare=False)
    _own: frozenset[str] = field(init=False, repr=False, compare=False)
    _agents_by_email: dict[str, Agent] = field(init=False, repr=False, compare=False)


def base_address(address: str) -> str:
    """``support+123@x`` → ``support@x``, lowercased: how mailbox addresses are compared."""
    local, at, domain = address.strip().lower().rpartition("@")
    if not at:
        return address.strip().lower()
    return f"{local.split('+', 1)[0]}@{domain}"


def parse_rate(text: str) -> tuple[int, int]:
    """``"10/10m"`` → (10 mails, 600 seconds)."""
    match = _RATE.match(text)
    if not match:
        raise ValueError(text)
    count, amount, unit = match.groups()
    return int(count), int(amount or 1) * _UNIT_SECONDS[unit]
