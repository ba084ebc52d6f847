"""Deliver the outbox: queued mail leaves through the configured transport, exactly once.

States of an outbox item::

    queued ──claim──▶ claimed ──▶ sending ──250──▶ sent
      ▲                  │           │ 4xx / refused: back to queued, later (backoff)
      └── lease expired ─┘           │ 5xx: failed (event on the ticket)
                                     └ crash: uncertain — see below

Recipients are answered one by one: when some get 250 and others a 4xx, the
mail goes back to the queue for exactly the deferred ones (its recipient list
narrowed, so nobody who has it gets it twice); a 5xx recipient fails with an
event on the ticket, as when the whole mail fails.

``sending`` is committed right before a mail is handed over and ``sent``
right after, with the mail's Message-ID as the idempotency key. A crash in
between leaves the row ``sending``: for the Maildir transport we look whether
the file is there; for SMTP we cannot ask the relay, so the row becomes
``uncertain`` with an event on the ticket instead of being sent a second time
(``mailgate outbox retry ID`` sends it again on purpose). A ``claimed`` row
was never handed over: when its lease expires it is simply queued again, so a
crash never loses a queued notice.

One delivery run keeps ``outbound.smtp.connections`` SMTP connections open for its
whole batch and sends it in rounds, a mail on each connection: a round is marked
``sending`` in one commit before it is handed over, so a crash leaves at most one
round uncertain. Several gateway processes may run this at once (claims use SKIP
LOCKED on PostgreSQL).

The package: ``relays`` (Maildir and SMTP, what each answers) and ``delivery``
(batches, marks, retries, recovery); the SQL is ``store.outbox``'s. This front
door is what the rest of mailgate uses.
"""

from mailgate.outbox.delivery import LEASE, Report, backoff, deliver, recover, retry
from mailgate.outbox.relays import (
    MaildirTransport,
    PermanentError,
    Refusal,
    SmtpTransport,
    TemporaryError,
    Transport,
    transport_for,
)

__all__ = [
    "LEASE",
    "MaildirTransport",
    "PermanentError",
    "Refusal",
    "Report",
    "SmtpTransport",
    "TemporaryError",
    "Transport",
    "backoff",
    "deliver",
    "recover",
    "retry",
    "transport_for",
]
