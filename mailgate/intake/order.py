"""Several processes, one result: a reply waits for its parent still being processed elsewhere.

Any number of gateway processes on one PostgreSQL database must thread mail exactly
as one process fed the same mails in arrival order would. Arrival is the receipt:
it is committed first (``receipts.py``), so once a mail's receipt exists, a reply
that names it must find it. Without care it would not: the parent's ticket is only
visible once the parent's main transaction commits, and a reply processed in
between by another process would open a new ticket (or follow a wrong one).

So each mail is marked *in flight* (``store.inflight``: an advisory lock on its
Message-ID, taken before its receipt is committed, let go after its transaction),
and before deciding, a mail waits for every earlier receipt it refers to
(In-Reply-To, References) that is still in flight: its processing transaction's first
statement finds them, and the transaction rolls back to wait for them (``ParentsInFlight``),
one round trip in all when there are none. Only those conversations wait;
the rest of intake runs in parallel. A process that dies lets go at once (its
database session ends). The wait is bounded by 0.8 × ``gateway.max_processing_seconds``
(the waiting mail's own deadline counts the wait too): a parent slower than the
limit is stopped and quarantined, as one process would have done, and the reply
then goes on without it.
Imports the store and ``mailgate.mail``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from mailgate.config import Config
from mailgate.errors import TemporaryFailure
from mailgate.logs import event
from mailgate.mail.parse import ParsedMail
from mailgate.store import PeeweeException, inflight, is_sqlite, single_statement
from mailgate.store.rows import ReceiptRow

log = logging.getLogger("mailgate.ingest")

# How many referenced Message-IDs are checked (a References header can be very long;
# the newest are the ones a reply's parent is among).
MAX_REFERENCES = 50


@contextlib.contextmanager
def in_flight(message_id: str, *, taken: bool = False) -> Iterator[None]:
    """Mark ``message_id`` as in flight in this process while the block runs.

    ``taken``: the block takes it itself, on its way (the receipt's INSERT does:
    ``receipts.receive(in_flight=…)``, no round trip of its own); it is let go here all
    the same."""
    if not taken and not is_sqlite():
        with single_statement():  # one round trip: a session's lock needs no transaction
            inflight.hold(message_id)
    try:
        yield
    finally:
        # Usually let go with the processing's COMMIT already (``finished``).
        if inflight.holds(message_id):
            # A lost connection has let go already.
            with contextlib.suppress(TemporaryFailure, PeeweeException), single_statement():
                inflight.let_go(message_id)


def finished(message_id: str) -> None:
    """The open transaction finishes ``message_id``: let go of it with its COMMIT (one
    round trip less); ``in_flight`` lets go itself if the transaction rolls back."""
    if not is_sqlite():
        inflight.let_go_at_commit(message_id)


def parents(receipt: ReceiptRow, mail: ParsedMail) -> list[str]:
    """The Message-IDs of earlier mails this one refers to, to wait for while in flight:
    checked by the processing transaction's first statement (``receipts.status_locked``),
    which raises ``ParentsInFlight`` for those still in flight. None on SQLite."""
    if is_sqlite():
        return []
    named = [*mail.in_reply_to, *reversed(mail.references)]
    return [i for i in dict.fromkeys(named) if i != receipt.message_id][:MAX_REFERENCES]


class ParentsInFlight(Exception):
    """Raised inside the processing transaction: it rolls back, waits for ``pending``
    (``wait_for``) and processes the mail again."""

    def __init__(self, pending: list[str]) -> None:
        super().__init__(f"{len(pending)} parents in flight")
        self.pending = pending


def wait_for(config: Config, receipt: ReceiptRow, pending: list[str]) -> None:
    """Wait until the earlier mails ``pending`` are finished by whoever has them."""
    # Shorter than the waiting mail's own deadline, which counts the wait too.
    seconds = 0.8 * config.gateway.max_processing_seconds
    with single_statement():  # inflight.wait runs its own transaction
        finished = inflight.wait(pending, seconds)
    if not finished:
        event(
            log,
            "mail.parent_wait_timed_out",
            logging.WARNING,
            message_id=receipt.message_id,
            waited_for=len(pending),
            seconds=seconds,
        )
