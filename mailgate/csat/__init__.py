"""The customer's verdict (CSAT): one-click ratings that need no web server.

The resolution notice offers ``mailto:`` links to signed addresses —
``support+rate-482913-good-<hmac>@…``, the HMAC scheme of the agents' reply
addresses with its own message (``mail/tokens.py``). A mail to such an address:

* signature good: the rating and the comment the customer wrote are recorded,
  the mail is stored on the ticket (kind ``rating``), the customer gets a short
  thank-you (``csat_thanks``); the ticket is never reopened, and no ticket opened;
* signature bad (forged, tampered, a guessed number): nothing is recorded as a
  rating and nothing reopens. The mail is stored on the ticket it names as an
  ``external`` message with a ``rating_rejected`` event — what a person wrote is
  never thrown away, and a guessed address gains its sender nothing a subject tag
  would not — but nobody is notified (a bad signature is most likely tampering);
  naming no ticket of ours, it is recorded and ignored.

A reply to the resolution itself (not to a rating link) reopens as it always did.
Imports config, events, the store and ``mailgate.mail``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mailgate.config import base_address
from mailgate.context import Context
from mailgate.events import Event, Journal
from mailgate.mail import tokens
from mailgate.store import csat as ratings
from mailgate.store import tickets as ticket_rows
from mailgate.store.db import utcnow
from mailgate.store.rows import MessageRow, TicketRow


@dataclass(frozen=True)
class RatingMail:
    """A mail to a rating address of ours: which, whether its signature holds, which ticket."""

    address: tokens.RatingAddress
    verified: bool
    ticket: TicketRow | None

    def describe(self) -> str:
        a = self.address
        if self.verified:
            return f"sent to the signed rating address of #{a.number}: rating {a.rating!r}"
        return (
            f"sent to a rating address of #{a.number or '?'} whose signature does not match:"
            " no rating, no reopen"
        )


def find(ctx: Context, recipients: Iterable[str]) -> RatingMail | None:
    """The first rating address of one of our mailboxes among ``recipients``."""
    for recipient in recipients:
        local, at, _domain = recipient.lower().rpartition("@")
        if not at or ctx.config.mailbox_for([base_address(recipient)]) is None:
            continue
        parsed = tokens.parse_rating(local)
        if parsed is None:
            continue
        verified = parsed.rating in tokens.RATINGS and tokens.verify_rating(ctx.secret, parsed)
        ticket = ticket_rows.by_number(parsed.number) if parsed.number else None
        return RatingMail(parsed, verified, ticket)
    return None


def record(
    ticket: TicketRow, rating: RatingMail, message: MessageRow, comment: str, journal: Journal,
    *, actor: str,
) -> str:  # fmt: skip
    """Record a rating mail (its message is stored); the receipt's action."""
    if not rating.verified:
        journal.add(
            Event(ticket, "rating_rejected", actor, message=message,
                  detail="the rating address's signature does not match: nothing recorded")
        )  # fmt: skip
        return "appended"
    ratings.add(ticket.id, rating.address.rating, comment.strip(), message.from_addr,
                message.id, utcnow())  # fmt: skip
    journal.add(Event(ticket, "message", actor, new="rating", message=message))
    journal.add(
        Event(ticket, "rated", actor, new=rating.address.rating, message=message,
              detail=comment.strip()[:500])
    )  # fmt: skip
    return "rated"


def summary(ticket_id: int) -> dict[str, Any] | None:
    """``csat: {rating, comment, at}`` of ``tickets show --json``: the latest rating."""
    found = ratings.latest(ticket_id)
    if found is None:
        return None
    return {
        "rating": found.rating,
        "comment": found.comment,
        "at": found.at.replace(microsecond=0).isoformat() + "Z",
        "by": found.sender,
    }
