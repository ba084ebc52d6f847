"""Which ticket a mail belongs to: signed reply address → In-Reply-To/References → subject tag.

Pure reads, each step written to the decision trace: ``mailgate explain`` shows
why a mail went where it went. A ticket that was merged is followed to the
ticket it lives on now. A delivery report looks for the mail of ours it reports
on instead (``bounce_target``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from mailgate.config import Config
from mailgate.mail import subject as subjects
from mailgate.mail import tokens
from mailgate.mail.parse import ParsedMail
from mailgate.store import messages
from mailgate.store import tickets as ticket_rows
from mailgate.store.rows import TicketRow


@dataclass(frozen=True)
class Found:
    """Which ticket a mail threads onto, and how that was decided."""

    ticket: TicketRow | None
    how: str
    trace: tuple[str, ...]
    message_id: str = ""  # for a delivery report: the Message-ID of our mail it is about


def tag(config: Config, number: int) -> str:
    return subjects.format_tag(config.gateway.ticket_prefix, number)


def find_ticket(mail: ParsedMail, config: Config, envelope_recipients: Sequence[str] = ()) -> Found:
    """Reply address → In-Reply-To/References → subject tag → no ticket (a new one)."""
    trace: list[str] = []
    number = _number_from_reply_address(
        [*envelope_recipients, *(a.email for a in mail.recipients)], config
    )
    if number is not None:
        ticket = ticket_rows.by_number(number)
        if ticket is not None:
            trace.append(f"reply address carries {tag(config, number)}")
            return _follow_merges(Found(ticket, "reply-address", tuple(trace)))
        trace.append(f"reply address names #{number}, which does not exist")
    ids = [*mail.in_reply_to, *reversed(mail.references)]
    if ids:
        match = _by_message_ids(ids)
        if match is not None:
            ticket, message_id, direction = match
            header = "In-Reply-To" if message_id in mail.in_reply_to else "References"
            what = "our notice" if direction == "out" else "a stored mail"
            trace.append(f"{header} {message_id} matched {what} of {tag(config, ticket.number)}")
            return _follow_merges(Found(ticket, header.lower(), tuple(trace)))
        trace.append(f"none of {len(ids)} referenced Message-IDs is known")
    number = subjects.find_tag(mail.subject, config.gateway.ticket_prefix)
    if number is not None:
        ticket = ticket_rows.by_number(number)
        if ticket is not None:
            trace.append(f"subject tag {tag(config, number)} matched")
            return _follow_merges(Found(ticket, "subject-tag", tuple(trace)))
        trace.append(f"subject tag {tag(config, number)} names no ticket of ours")
    trace.append("no ticket found → new ticket")
    return Found(None, "new", tuple(trace))


def _number_from_reply_address(addresses: Iterable[str], config: Config) -> int | None:
    """The ticket number of a plus-address of ours: ``support+482913[-token]@``, ``+note-…``."""
    for address in addresses:
        local, at, domain = address.lower().rpartition("@")
        if not at or config.mailbox_for([f"{local.split('+', 1)[0]}@{domain}"]) is None:
            continue
        detail = tokens.parse_detail(local)
        if detail is not None:
            return detail.number
    return None


def _by_message_ids(ids: Sequence[str]) -> tuple[TicketRow, str, str] | None:
    found = ticket_rows.of_messages(ids)
    if not found:
        return None
    # The earliest reference in our list wins: In-Reply-To first, then References newest first.
    by_message_id: dict[str, tuple[str, str, TicketRow]] = {}
    for row in found:
        by_message_id.setdefault(row[0], row)
    for message_id in ids:
        if message_id in by_message_id:
            _, direction, ticket = by_message_id[message_id]
            return ticket, message_id, direction
    return None


def _follow_merges(found: Found) -> Found:
    if found.ticket is None or not found.ticket.merged_into_id:
        return found
    chain = ticket_rows.merge_chain(found.ticket)
    trace = list(found.trace)
    trace.extend(f"#{a.number} was merged into #{b.number}" for a, b in pairwise(chain))
    return Found(chain[-1], found.how, tuple(trace))


def bounce_target(mail: ParsedMail, config: Config) -> Found:
    """The ticket of the mail of ours a delivery report is about (if it is about one)."""
    report = mail.report
    ids = [report.original_message_id] if report and report.original_message_id else []
    ids += [*mail.in_reply_to, *reversed(mail.references)]
    trace: list[str] = []
    for message_id in ids:
        ticket_id = messages.ticket_of_sent(message_id)
        if ticket_id is not None:
            ticket = ticket_rows.by_id(ticket_id)
            trace.append(f"report is about our {message_id} of {tag(config, ticket.number)}")
            return Found(ticket, "bounce", tuple(trace), message_id)
    trace.append("the report names no message we sent")
    return Found(None, "bounce", tuple(trace))
