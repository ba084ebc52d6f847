"""The peewee models: every table, as the queries of ``store/`` see it.

Only modules of ``mailgate.store`` import this (``tests/test_layering.py``). The
tables are *created and changed by migrations* (``store/migrations/``), never
from these classes: a field added here needs a migration adding the column, and
``tests/test_migrations.py`` fails until both agree. A new capability may keep its
models in a module of its own (``store/<capability>.py``) deriving from
``BaseModel``; every subclass is checked against the migrated schema.

Timestamps are naive UTC (``utcnow()``) on every backend. Imports peewee and
``store.db`` only.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import peewee as pw

# Re-exported: queries written against the models use both (and tests do).
from mailgate.store.db import db as db
from mailgate.store.db import utcnow as utcnow


class JSONField(pw.TextField):
    """A list or dict stored as JSON text: portable across SQLite and PostgreSQL."""

    def db_value(self, value: Any) -> Any:
        return None if value is None else json.dumps(value, ensure_ascii=False)

    def python_value(self, value: Any) -> Any:
        return None if value is None else json.loads(value)


class BytesField(pw.BlobField):
    """Binary data that reads back as ``bytes`` on every backend (psycopg2 gives memoryview)."""

    def python_value(self, value: Any) -> Any:
        return bytes(value) if isinstance(value, memoryview | bytearray) else value


class BaseModel(pw.Model):
    # peewee is untyped: declare what it adds at run time (primary and foreign key ids).
    if TYPE_CHECKING:
        id: Any

    class Meta:
        database = db
        legacy_table_names = False


class Setting(BaseModel):
    """Small counters and cursors (sequential ticket numbers, round-robin positions)."""

    key = pw.CharField(primary_key=True, max_length=100)
    value = pw.BigIntegerField(default=0)


class Team(BaseModel):
    key = pw.CharField(unique=True, max_length=100)
    name = pw.CharField(max_length=200)
    address = pw.CharField(max_length=320, default="")


class Agent(BaseModel):
    key = pw.CharField(unique=True, max_length=100)
    name = pw.CharField(max_length=200)
    emails = JSONField(default=list)
    role = pw.CharField(max_length=20, default="agent")
    active = pw.BooleanField(default=True)


class Contact(BaseModel):
    email = pw.CharField(unique=True, max_length=320)
    name = pw.CharField(max_length=300, default="")
    created_at = pw.DateTimeField(default=utcnow)
    # Recipient health: a permanent bounce suppresses all mail to the address until then.
    undeliverable_until = pw.DateTimeField(null=True)
    undeliverable_reason = pw.TextField(default="")


class Ticket(BaseModel):
    if TYPE_CHECKING:
        team_id: Any
        assignee_id: Any
        requester_id: Any
        merged_into_id: Any

    number = pw.BigIntegerField(unique=True)
    subject = pw.TextField(default="")
    status = pw.CharField(max_length=20, default="new", index=True)
    priority = pw.CharField(max_length=20, default="normal")
    mailbox = pw.CharField(max_length=100)
    team = pw.ForeignKeyField(Team, null=True, backref="tickets", on_delete="SET NULL")
    assignee = pw.ForeignKeyField(Agent, null=True, backref="tickets", on_delete="SET NULL")
    requester = pw.ForeignKeyField(Contact, backref="tickets", index=False)
    category = pw.CharField(max_length=100, default="")
    tags = JSONField(default=list)
    # Foreign tags (a vendor's "[Ticket#123]") seen in the subject, kept on our replies.
    foreign_tags = JSONField(default=list)
    merged_into = pw.ForeignKeyField(
        "self", null=True, backref="merged", on_delete="SET NULL", index=False
    )
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow, index=True)
    first_response_at = pw.DateTimeField(null=True)
    resolved_at = pw.DateTimeField(null=True)
    closed_at = pw.DateTimeField(null=True)
    # Urgency and impact (low, medium, high; '' unset): the priority matrix's inputs.
    urgency = pw.CharField(max_length=10, default="")
    impact = pw.CharField(max_length=10, default="")
    # When the next running SLA clock runs out (None: none runs): the "due" sort of the
    # desk's lists. Written only by store.sla.replace_clocks, with the clocks (0015).
    next_due_at = pw.DateTimeField(null=True, index=True)

    class Meta:
        # Lists filtered by priority, newest first (migration 0014).
        indexes = ((("priority", "updated_at"), False),)


class Participant(BaseModel):
    """Who belongs to a ticket's conversation: the requester and collaborators (Cc)."""

    if TYPE_CHECKING:
        ticket_id: Any
        contact_id: Any

    ticket = pw.ForeignKeyField(Ticket, backref="participants", on_delete="CASCADE")
    contact = pw.ForeignKeyField(Contact, backref="participations", index=False)
    role = pw.CharField(max_length=20)  # requester | collaborator

    class Meta:
        indexes = ((("ticket", "contact"), True),)


class TicketLink(BaseModel):
    """A relation between tickets, stored once per direction so both sides list it."""

    if TYPE_CHECKING:
        ticket_id: Any
        other_id: Any

    ticket = pw.ForeignKeyField(Ticket, backref="links", on_delete="CASCADE")
    other = pw.ForeignKeyField(Ticket, backref="+", on_delete="CASCADE")
    kind = pw.CharField(max_length=30)  # follow_up_of | followed_by | merged_into | merged_from


class Receipt(BaseModel):
    """One row per distinct inbound mail: the idempotency key and the quarantine.

    Written and committed before the mail is processed, so that from then on a
    crash or a bug can never lose it: ``status`` says how far it got.
    """

    if TYPE_CHECKING:
        ticket_id: Any

    message_id = pw.CharField(unique=True, max_length=998)
    sha256 = pw.CharField(max_length=64)
    # sha256 of the body: tells one mail delivered twice from two mails sharing an ID.
    fingerprint = pw.CharField(max_length=64, default="")
    # sha256 of what the mail says (From, Subject, Date, decoded text): the same mail
    # re-encoded in transit is a duplicate (migration 0004).
    content_fingerprint = pw.CharField(max_length=64, default="", index=True)
    size = pw.IntegerField()
    sender = pw.CharField(max_length=320, default="")
    # The SMTP envelope (recipients, authenticated login): needed to process it again.
    envelope = JSONField(default=dict)
    source = pw.CharField(max_length=20)
    mailbox = pw.CharField(max_length=100, default="")
    status = pw.CharField(max_length=20, default="received")
    action = pw.CharField(max_length=20, default="")
    reason = pw.TextField(default="")
    attempts = pw.IntegerField(default=0)
    ticket = pw.ForeignKeyField(Ticket, null=True, backref="+", on_delete="SET NULL", index=False)
    received_at = pw.DateTimeField(default=utcnow)
    processed_at = pw.DateTimeField(null=True)
    # While a delivery processes the mail, nobody else does; after it, a crash is assumed.
    lease_until = pw.DateTimeField(null=True)


class Message(BaseModel):
    """One entry of a ticket's thread: every inbound and outbound mail, and notes."""

    if TYPE_CHECKING:
        ticket_id: Any
        receipt_id: Any

    ticket = pw.ForeignKeyField(Ticket, backref="messages", on_delete="CASCADE")
    receipt = pw.ForeignKeyField(Receipt, null=True, backref="+", on_delete="SET NULL", index=False)
    direction = pw.CharField(max_length=3)  # in | out
    kind = pw.CharField(max_length=20)  # customer agent note system auto_reply bounce external
    message_id = pw.CharField(max_length=998, index=True)
    from_addr = pw.CharField(max_length=320, default="")
    from_name = pw.CharField(max_length=300, default="")
    # The From header as written (decoded, one line): kept when it has no usable address.
    from_raw = pw.TextField(default="")
    to_addrs = JSONField(default=list)
    cc_addrs = JSONField(default=list)
    subject = pw.TextField(default="")
    date = pw.DateTimeField(null=True)
    text = pw.TextField(default="")
    full_text = pw.TextField(default="")
    html = pw.TextField(default="")
    raw_sha256 = pw.CharField(max_length=64, default="")
    trace = JSONField(default=list)
    verified = pw.BooleanField(default=False)
    created_at = pw.DateTimeField(default=utcnow)


class Attachment(BaseModel):
    if TYPE_CHECKING:
        message_id: Any

    message = pw.ForeignKeyField(Message, backref="attachments", on_delete="CASCADE")
    sha256 = pw.CharField(max_length=64)
    size = pw.BigIntegerField()
    content_type = pw.CharField(max_length=200)
    filename = pw.CharField(max_length=255)
    content_id = pw.CharField(max_length=998, default="")
    inline = pw.BooleanField(default=False)
    original_filename = pw.TextField(default="")
    kept = pw.BooleanField(default=True)


class Event(BaseModel):
    """The audit trail: every change of a ticket, with actor and time."""

    if TYPE_CHECKING:
        ticket_id: Any

    ticket = pw.ForeignKeyField(Ticket, backref="events", on_delete="CASCADE")
    at = pw.DateTimeField(default=utcnow)
    actor = pw.CharField(max_length=400)
    kind = pw.CharField(max_length=40)
    old = pw.TextField(default="")
    new = pw.TextField(default="")
    message = pw.ForeignKeyField(Message, null=True, backref="+", on_delete="SET NULL", index=False)
    detail = pw.TextField(default="")


class OutboxItem(BaseModel):
    """A mail waiting to leave: written in the transaction of the change that caused it."""

    if TYPE_CHECKING:
        ticket_id: Any

    message_id = pw.CharField(unique=True, max_length=998)
    ticket = pw.ForeignKeyField(Ticket, null=True, backref="+", on_delete="SET NULL")
    notice = pw.CharField(max_length=40)
    sender = pw.CharField(max_length=320)
    recipients = JSONField()
    content = BytesField()  # the mail as it goes on the wire
    automatic = pw.BooleanField(default=True)
    status = pw.CharField(max_length=20, default="queued")
    attempts = pw.IntegerField(default=0)
    next_attempt_at = pw.DateTimeField(default=utcnow)
    last_error = pw.TextField(default="")
    created_at = pw.DateTimeField(default=utcnow)
    sent_at = pw.DateTimeField(null=True)
    # The latest delivery report (DSN) about this mail: delivered | delayed | failed.
    delivery = pw.CharField(max_length=20, default="")
    delivery_detail = pw.TextField(default="")
    delivery_at = pw.DateTimeField(null=True)
    # A webhook delivery (notice "webhook"): the hook's URL and the event; '' for mail.
    target = pw.TextField(default="")
    event = pw.CharField(max_length=60, default="")

    class Meta:
        indexes = ((("status", "next_attempt_at"), False),)


class AutoMailLog(BaseModel):
    """Automatic mail queued per recipient: the sliding windows of the circuit breaker."""

    recipient = pw.CharField(max_length=320)
    ticket_id = pw.BigIntegerField(null=True)
    at = pw.DateTimeField(default=utcnow)  # no index of its own (migration 0016)

    class Meta:
        indexes = ((("recipient", "at"), False), (("ticket_id", "at"), False))


class MailCounter(BaseModel):
    """Automatic mail per minute, all recipients: the overall window of the circuit breaker.

    Counting the rows of ``auto_mail_log`` for "all mail in the last hour" would
    cost as much as the hour was busy; a row per minute keeps it at most 1,440 rows
    for a day's window.
    """

    minute = pw.BigIntegerField(primary_key=True)
    count = pw.IntegerField(default=0)


class ImapState(BaseModel):
    """Where each IMAP mailbox stands, and its ledger of what became of fetched mail."""

    name = pw.CharField(unique=True, max_length=200)
    uidvalidity = pw.BigIntegerField(default=0)
    last_uid = pw.BigIntegerField(default=0)
    fetched = pw.IntegerField(default=0)  # ingested + duplicate + quarantined
    ingested = pw.IntegerField(default=0)
    duplicate = pw.IntegerField(default=0)
    quarantined = pw.IntegerField(default=0)
    failed = pw.IntegerField(default=0)
    last_error = pw.TextField(default="")
    last_error_at = pw.DateTimeField(null=True)
    last_success_at = pw.DateTimeField(null=True)  # a session that worked, or a stored batch
    updated_at = pw.DateTimeField(default=utcnow)


class WebPassword(BaseModel):
    """An agent's desk password as an Argon2 hash, by the agent's config key (migration 0010)."""

    agent_key = pw.CharField(primary_key=True, max_length=100)
    hash = pw.CharField(max_length=255)
    set_at = pw.DateTimeField(default=utcnow)


class WebSession(BaseModel):
    """A desk session; only the SHA-256 of its id is kept (the id is in the cookie)."""

    id_hash = pw.CharField(primary_key=True, max_length=64)
    agent_key = pw.CharField(max_length=100, index=True)
    csrf = pw.CharField(max_length=100)
    created_at = pw.DateTimeField(default=utcnow)
    seen_at = pw.DateTimeField(default=utcnow, index=True)
    ended_at = pw.DateTimeField(null=True)


class WebLoginAttempt(BaseModel):
    """A login tried on the desk: the rate limits count the failed ones."""

    account = pw.CharField(max_length=320)
    client = pw.CharField(max_length=100)
    at = pw.DateTimeField(default=utcnow)  # no index of its own (migration 0016)
    ok = pw.BooleanField()

    class Meta:
        indexes = ((("account", "at"), False), (("client", "at"), False))


class WebLoginLink(BaseModel):
    """A one-time login link; only the SHA-256 of its token is kept."""

    token_hash = pw.CharField(primary_key=True, max_length=64)
    agent_key = pw.CharField(max_length=100)
    created_at = pw.DateTimeField(default=utcnow)
    expires_at = pw.DateTimeField(index=True)
    used_at = pw.DateTimeField(null=True)

    class Meta:
        indexes = ((("agent_key", "created_at"), False),)
class ApiToken(BaseModel):
    """A bearer token of the JSON API (migration 0011): only its SHA-256 is kept."""

    if TYPE_CHECKING:
        agent_id: Any

    agent = pw.ForeignKeyField(Agent, backref="+", on_delete="CASCADE")
    token_hash = pw.CharField(max_length=64, unique=True)
    created_at = pw.DateTimeField(default=utcnow)
    last_used_at = pw.DateTimeField(null=True)
    revoked_at = pw.DateTimeField(null=True)

    class Meta:
        table_name = "api_token"
class StoredBlob(BaseModel):
    """A blob of the PostgreSQL blob store (``store/blobdb.py``; migration 0013)."""

    sha256 = pw.CharField(primary_key=True, max_length=64)
    size = pw.BigIntegerField()
    content = BytesField()
    stored_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "blob"
