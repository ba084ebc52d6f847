"""The thread of a ticket: stored mails, notes and our notices, with their attachments.

Hand-written SQL (``store.sql``): a message and its attachments are written for
every mail, and threading looks Message-IDs up here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from mailgate.store import sql, tickets
from mailgate.store.db import utcnow
from mailgate.store.rows import MessageRow

_COLUMNS = (
    "ticket_id",
    "receipt_id",
    "direction",
    "kind",
    "message_id",
    "from_addr",
    "from_name",
    "from_raw",
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
)
_INSERT = f"INSERT INTO message ({', '.join(_COLUMNS)}) VALUES ({sql.placeholders(len(_COLUMNS))})"
# What our notices store of themselves (no receipt, no date or raw From of their own).
OUTBOUND_COLUMNS = tuple(c for c in _COLUMNS if c not in ("receipt_id", "from_raw"))


def add(
    ticket_id: int,
    *,
    direction: str,
    kind: str,
    message_id: str,
    from_addr: str = "",
    from_name: str = "",
    from_raw: str = "",
    to: Sequence[str] = (),
    cc: Sequence[str] = (),
    subject: str = "",
    date: dt.datetime | None = None,
    text: str = "",
    full_text: str = "",
    html: str = "",
    raw_sha256: str = "",
    trace: Sequence[str] = (),
    verified: bool = False,
    receipt_id: int | None = None,
    touch: bool = True,
) -> MessageRow:
    """Store one entry of the thread; ``touch`` marks the ticket updated (not a new one)."""
    now = utcnow()
    from_addr, from_name = from_addr.lower(), from_name[:300]
    message_pk = sql.insert(
        _INSERT,
        ticket_id,
        receipt_id,
        direction,
        kind,
        message_id,
        from_addr,
        from_name,
        from_raw[:998],
        sql.js(list(to)),
        sql.js(list(cc)),
        subject,
        sql.ts(date),
        text,
        full_text,
        html,
        raw_sha256,
        sql.js(list(trace)),
        verified,
        sql.ts(now),
    )
    if touch:  # a ticket created in this transaction is up to date already
        tickets.touch(ticket_id, now)
    return MessageRow(
        id=message_pk,
        ticket_id=ticket_id,
        direction=direction,
        kind=kind,
        message_id=message_id,
        subject=subject,
        text=text,
        full_text=full_text,
        from_addr=from_addr,
        from_name=from_name,
        verified=verified,
        created_at=now,
    )


def add_outbound(
    notices: Iterable[tuple[int, str, str, str, str, list[str], list[str], str, str, list[str]]],
    now: dt.datetime,
) -> None:
    """Our notices as entries of their threads, one INSERT: (ticket id, kind, Message-ID,
    from, from name, to, cc, subject, text, trace) per notice."""
    at = sql.ts(now)
    rows = []
    for ticket_id, kind, message_id, from_addr, from_name, to, cc, subject, text, trace in notices:
        rows.append(
            (ticket_id, "out", kind, message_id, from_addr, from_name, sql.js(to), sql.js(cc),
             subject, at, text, text, "", "", sql.js(trace), True, at)
        )  # fmt: skip
    sql.insert_many("message", OUTBOUND_COLUMNS, rows)


def set_outbound_texts(texts: Iterable[tuple[str, str]]) -> None:
    """(Message-ID, text) per notice: the text of our notice's thread entry, written when
    its mail is composed (``notices.snapshot``); queued with an empty one."""
    for message_id, text in texts:
        sql.later(
            "UPDATE message SET text = ?, full_text = ? WHERE message_id = ? AND direction = 'out'",
            text,
            text,
            message_id,
        )


ATTACHMENT_COLUMNS = (
    "message_id", "sha256", "size", "content_type", "filename", "content_id", "inline",
    "original_filename", "kept",
)  # fmt: skip


def add_attachments(message_id: int, attachments: Iterable[Sequence[object]]) -> None:
    """(sha256, size, content_type, filename, content_id, inline, original_filename, kept)
    per attachment, one INSERT."""
    sql.insert_many(
        "attachment",
        ATTACHMENT_COLUMNS,
        [(message_id, *a) for a in attachments],
    )


def html_of(message_id: int) -> str:
    """The stored (sanitised) HTML of a message; '' when it had none."""
    found = sql.one("SELECT html FROM message WHERE id = ?", message_id)
    return str(found[0] or "") if found else ""


def html_in_ticket(ticket_id: int, message_id: int) -> str | None:
    """The stored HTML of message ``message_id`` if it is of ticket ``ticket_id``; None if
    it is not (a web page must not show another ticket's mail by its id)."""
    found = sql.one(
        "SELECT html FROM message WHERE id = ? AND ticket_id = ?", message_id, ticket_id
    )
    return None if found is None else str(found[0] or "")


def with_html(ticket_id: int) -> set[int]:
    """The ids of the ticket's messages that have an HTML body (one query)."""
    found = sql.rows("SELECT id FROM message WHERE ticket_id = ? AND html <> ''", ticket_id)
    return {int(row[0]) for row in found}


def set_kind(message_id: int, kind: str) -> None:
    sql.run("UPDATE message SET kind = ? WHERE id = ?", kind, message_id)


def set_trace(message_id: int, trace: Sequence[str]) -> None:
    sql.run("UPDATE message SET trace = ? WHERE id = ?", sql.js(list(trace)), message_id)


def ticket_of_sent(message_id: str) -> int | None:
    """The ticket of a mail we sent with this Message-ID (what a bounce reports on)."""
    found = sql.value(
        "SELECT ticket_id FROM message WHERE message_id = ? AND direction = 'out'", message_id
    )
    return None if found is None else int(found)


def sent_texts(
    ticket_id: int, ids: Sequence[str], latest: int = 3, *, sender: str = ""
) -> tuple[list[str], str | None]:
    """The texts of our mails on the ticket that a reply may quote: those it names
    (In-Reply-To, References) first, then the newest ``latest`` — what the quote
    stripping gets as hints (``mail.quote_hints``); and ``sender``'s role on the ticket
    (``people.role_of``; None when not a participant, or no ``sender``). One statement:
    a reply's plan reads them all in the ingest transaction."""
    named = list(dict.fromkeys(ids))[:50]
    parts: list[str] = []
    params: list[object] = []
    if named:
        parts.append(
            "SELECT 0, id, text FROM (SELECT id, text FROM message WHERE ticket_id = ?"
            f" AND direction = 'out' AND message_id IN ({sql.placeholders(len(named))})"
            " ORDER BY id DESC LIMIT 5) AS named"
        )
        params += [ticket_id, *named]
    parts.append(
        "SELECT 1, id, text FROM (SELECT id, text FROM message WHERE ticket_id = ?"
        " AND direction = 'out' ORDER BY id DESC LIMIT ?) AS newest"
    )
    params += [ticket_id, latest]
    if sender:
        parts.append(
            "SELECT 2, 0, p.role FROM participant p JOIN contact c ON c.id = p.contact_id"
            " WHERE p.ticket_id = ? AND c.email = ?"
        )
        params += [ticket_id, sender]
    found = sorted(
        sql.rows(" UNION ALL ".join(parts), *params), key=lambda r: (int(r[0]), -int(r[1]))
    )
    roles = [str(r[2]) for r in found if r[0] == 2]
    texts = {int(r[1]): str(r[2] or "") for r in found if r[0] != 2}
    return list(texts.values()), roles[0] if roles else None


def latest_customer(ticket_id: int) -> MessageRow | None:
    """The newest mail of the customer (or a stranger) on the ticket."""
    row = sql.one(
        "SELECT id, message_id, subject, text, from_addr, from_name, created_at, kind FROM message"
        " WHERE ticket_id = ? AND direction = 'in' AND kind IN ('customer', 'external')"
        " ORDER BY id DESC LIMIT 1",
        ticket_id,
    )
    if row is None:
        return None
    return MessageRow(
        id=int(row[0]),
        ticket_id=ticket_id,
        message_id=str(row[1]),
        subject=str(row[2]),
        text=str(row[3]),
        from_addr=str(row[4]),
        from_name=str(row[5]),
        created_at=sql.read_ts(row[6]),
        direction="in",
        kind=str(row[7]),
    )


def conversation_ids(ticket_id: int) -> list[str]:
    """The Message-IDs a notice refers to: the first inbound mail, then the customer's latest 3."""
    # One statement for both (every notice's thread is read in the ingest transaction).
    found = sql.rows(
        "SELECT 0, id, message_id FROM (SELECT id, message_id FROM message WHERE ticket_id = ?"
        " AND direction = 'in' ORDER BY id LIMIT 1) AS first UNION ALL"
        " SELECT 1, id, message_id FROM (SELECT id, message_id FROM message WHERE ticket_id = ?"
        " AND kind IN ('customer', 'external') ORDER BY id DESC LIMIT 3) AS latest",
        ticket_id,
        ticket_id,
    )
    first = [str(r[2]) for r in found if r[0] == 0]
    latest = sorted((int(r[1]), str(r[2])) for r in found if r[0] == 1)
    return first + [message_id for _, message_id in latest]
