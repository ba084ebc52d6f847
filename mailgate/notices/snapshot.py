"""A queued notice as a snapshot: what its mail needs, written in the change's transaction,
composed into MIME when it is sent.

The transaction of a change renders a notice's subject (one line: its thread
entry and the outbox show it) and writes this snapshot as the outbox row's
content: the headers decided then (Message-ID, In-Reply-To, References,
Reply-To, Date) and the template variables as they were then — the ticket's
status, the customer's text. ``compose_mail`` renders the bodies, picks the
files the notice carries and builds the mail when the outbox sends it (and the
outbox writes the text into the thread entry then), so the customer's mail
commits without the templates' and MIME's cost, and the mail still says what was
true when it was queued. A template that fails then is a ``TemplateError``: the
outbox fails the row with that one line.

The content is ``SNAPSHOT_MARK`` + JSON (a mail never starts with a NUL byte);
datetimes keep their time zone by name.
"""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from dataclasses import dataclass
from typing import Any

from mailgate import attachments
from mailgate.blobs import BlobStore
from mailgate.config import Config
from mailgate.context import Context
from mailgate.errors import TemplateError
from mailgate.mail import compose
from mailgate.mail.parse import Address
from mailgate.notices.render import HTML_KINDS, render_bodies
from mailgate.store import messages
from mailgate.store import outbox as outbox_rows

SNAPSHOT_MARK = b"\x00mailgate-notice:"
VERSION = 1


def is_snapshot(content: bytes) -> bool:
    return content.startswith(SNAPSHOT_MARK)


@dataclass(frozen=True)
class Snapshot:
    """Everything ``compose`` needs (the fields of the mail decided at queue time)."""

    kind: str
    mailbox: str
    sender: Address
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: str
    subject: str
    message_id: str
    in_reply_to: str
    references: tuple[str, ...]
    auto_submitted: str
    loop_token: str
    thread_topic: str
    thread_seed: str
    started: dt.datetime
    date: dt.datetime
    message: int | None  # the thread entry the notice is about (its HTML, its files)
    variables: dict[str, Any]


def encode(snapshot: Snapshot) -> bytes:
    data = {
        "v": VERSION,
        "kind": snapshot.kind,
        "mailbox": snapshot.mailbox,
        "sender": [snapshot.sender.email, snapshot.sender.name],
        "to": [[a.email, a.name] for a in snapshot.to],
        "cc": [[a.email, a.name] for a in snapshot.cc],
        "reply_to": snapshot.reply_to,
        "subject": snapshot.subject,
        "message_id": snapshot.message_id,
        "in_reply_to": snapshot.in_reply_to,
        "references": list(snapshot.references),
        "auto_submitted": snapshot.auto_submitted,
        "loop_token": snapshot.loop_token,
        "thread_topic": snapshot.thread_topic,
        "thread_seed": snapshot.thread_seed,
        "started": snapshot.started,
        "date": snapshot.date,
        "message": snapshot.message,
        "variables": snapshot.variables,
    }
    return SNAPSHOT_MARK + _ENCODER.encode(data).encode("ascii")


def decode(content: bytes) -> Snapshot:
    try:
        data = json.loads(content[len(SNAPSHOT_MARK) :], object_hook=_from_json)
        if data.get("v") != VERSION:
            raise TemplateError(f"queued notice snapshot of unknown version {data.get('v')!r}")
        return Snapshot(
            kind=data["kind"],
            mailbox=data["mailbox"],
            sender=Address(*data["sender"]),
            to=tuple(Address(*a) for a in data["to"]),
            cc=tuple(Address(*a) for a in data["cc"]),
            reply_to=data["reply_to"],
            subject=data["subject"],
            message_id=data["message_id"],
            in_reply_to=data["in_reply_to"],
            references=tuple(data["references"]),
            auto_submitted=data["auto_submitted"],
            loop_token=data["loop_token"],
            thread_topic=data["thread_topic"],
            thread_seed=data["thread_seed"],
            started=data["started"],
            date=data["date"],
            message=data["message"],
            variables=data["variables"],
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise TemplateError(f"queued notice snapshot unreadable: {exc}") from exc


def _to_json(value: object) -> object:
    if isinstance(value, dt.datetime):
        zone = value.tzinfo
        name = zone.key if isinstance(zone, zoneinfo.ZoneInfo) else ""
        return {"$datetime": value.isoformat(), "zone": name}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    raise TypeError(f"a template variable of type {type(value).__name__} cannot be queued")


# What json.dumps(data, default=_to_json) builds anew for every call (it caches only the
# encoder of its default arguments): one, kept.
_ENCODER = json.JSONEncoder(default=_to_json)


def _from_json(data: dict[str, Any]) -> object:
    if "$datetime" in data:
        value = dt.datetime.fromisoformat(data["$datetime"])
        return value.astimezone(zoneinfo.ZoneInfo(data["zone"])) if data["zone"] else value
    if "$date" in data:
        return dt.date.fromisoformat(data["$date"])
    return data


@dataclass(frozen=True)
class Composed:
    """A snapshot composed: the mail (or the reference to it in the blob store), and the
    text its thread entry keeps."""

    content: bytes
    text: str


def compose_mail(config: Config, blobs: BlobStore, content: bytes) -> Composed:
    """The mail of a queued snapshot: the HTML rendered, the files attached, MIME built.

    A notice that carries files is composed into the blob store and a reference to it
    is returned (as ``notices.queue`` did before snapshots), so the mail is never held
    whole. Raises ``TemplateError`` (one line) when it cannot be rendered.
    """
    return compose_snapshot(config, blobs, decode(content))


@dataclass(frozen=True)
class Built:
    """A snapshot's mail before MIME: what ``compose.build`` or ``compose.pieces`` takes."""

    outgoing: compose.Outgoing
    text: str


def outgoing_of(config: Config, blobs: BlobStore, snapshot: Snapshot) -> Built:
    """The bodies rendered and the files chosen for ``snapshot``; raises ``TemplateError``."""
    # A mailbox renamed since: its notices go out as the first mailbox's (``mailbox_of``).
    box = next((b for b in config.mailboxes if b.name == snapshot.mailbox), config.mailboxes[0])
    variables = snapshot.variables
    message = variables.get("message")
    if snapshot.message is not None and message is not None and snapshot.kind in HTML_KINDS:
        message["html"] = messages.html_of(snapshot.message)
    text, html = render_bodies(config, box, snapshot.kind, variables)
    carried = attachments.Carried()
    if snapshot.message is not None:
        carried = attachments.for_notice_of(config, blobs, snapshot.kind, snapshot.message, box)
    text, html = carried.bodies(text, html)
    outgoing = compose.Outgoing(
        sender=snapshot.sender,
        to=snapshot.to,
        cc=snapshot.cc,
        reply_to=snapshot.reply_to,
        subject=snapshot.subject,
        text=text,
        html=html,
        files=carried.files,
        message_id=snapshot.message_id,
        in_reply_to=snapshot.in_reply_to,
        references=snapshot.references,
        auto_submitted=snapshot.auto_submitted,
        loop_token=snapshot.loop_token,
        thread_topic=snapshot.thread_topic,
        thread_index=compose.thread_index(snapshot.thread_seed, snapshot.started, snapshot.date),
        date=snapshot.date,
        notice=snapshot.kind,
    )
    return Built(outgoing, text)


def compose_snapshot(config: Config, blobs: BlobStore, snapshot: Snapshot) -> Composed:
    """The mail of ``snapshot`` (``compose_mail`` reads it from the row first)."""
    built = outgoing_of(config, blobs, snapshot)
    if built.outgoing.files:
        sha256, _size = blobs.write_chunks(compose.pieces(built.outgoing))
        return Composed(outbox_rows.blob_reference(sha256), built.text)
    return Composed(compose.build(built.outgoing), built.text)


def mail_of(ctx: Context, content: bytes) -> bytes:
    """An outbox row's content as the mail it is or will be: a snapshot composed now (what
    ``outbox show``-like readers and tests look at before the outbox sends it)."""
    if not is_snapshot(content):
        return content
    return compose_mail(ctx.config, ctx.blobs, content).content
