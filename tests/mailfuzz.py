"""Hostile and broken mail for property-based fuzzing of the whole intake (hypothesis).

Two sources of input: real mails (written here the way clients write them, plus
the real-world corpus in ``../shared/corpus`` when present) mutated byte-wise
with the fragments that break parsers, and MIME generated from scratch with
every header, charset, transfer encoding and nesting a careless or hostile
sender can produce. ``check()`` runs one input through ``ingest()`` and says
what broke the intake's promise, if anything: no exception escapes, every input
ends as exactly one finished receipt, and a mail is never answered "try again
later" (``TemporaryFailure``) when the database and the disk are fine.

Used by ``tests/test_fuzz.py`` (a few deterministic examples in ``make test``)
and ``bench/fuzz.py`` (a long run that prints what it found).
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable
from pathlib import Path

from hypothesis import strategies as st

from mailgate.context import Context
from mailgate.errors import TemporaryFailure
from mailgate.intake import ingest
from mailgate.store import models as m
from tests.support import compose

ACTIONS = {"created", "appended", "reopened", "ignored", "bounce", "quarantined", "duplicate"}

# Bytes that have broken mail parsers somewhere: NULs, raw 8-bit, stray boundaries,
# encoded words with impossible charsets, folding at the wrong place, endless lines.
NASTY: tuple[bytes, ...] = (
    b"\x00",
    b"\r\n\r\n",
    b"\n",
    b"\r",
    b"\r\n\t",
    b"\xff\xfe\xf8",
    b"\xc3",
    b"=?\xf8?Q?n?=",
    b"=?utf-8?b?w6k=?=",
    b"=?x-unknown?q?=FF=00?=",
    b"=?utf-8?q?caf=C3=A9?= =?",
    b'Content-Type: multipart/mixed; boundary=""\r\n',
    b'Content-Type: multipart/mixed; boundary="\x00"\r\n',
    b"Content-Type: text/plain; charset=\x00utf-8\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b'Content-Disposition: attachment; filename*=utf-8\'\'%FF%00%C3"\r\n',
    b"--",
    b"--boundary--\r\n",
    b"From: \r\n",
    b"From: <>\r\n",
    b"From: =?\xf8?Q?n?=\r\n",
    b"Message-ID: <\x00@x>\r\n",
    b"In-Reply-To: <" + b"a" * 2000 + b"@x>\r\n",
    b"Subject: " + b"x" * 5000 + b"\r\n",
    b"<html><body><script>alert(1)</script>",
    b"=\r\n",
    b"=XX",
    b"begin 644 x\r\n",
)


def seed_mails() -> list[bytes]:
    """Mails as clients write them: plain, HTML, attachments, a reply, 8-bit, a bounce."""
    bounce = (
        b"From: MAILER-DAEMON@mx.example.net\r\nTo: support@example.org\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <b1@mx.example.net>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status;"
        b' boundary="r"\r\n\r\n--r\r\nContent-Type: text/plain\r\n\r\nIt failed.\r\n'
        b"--r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        b"Final-Recipient: rfc822; a@b.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        b"--r\r\nContent-Type: message/rfc822\r\n\r\nFrom: support@example.org\r\n"
        b"Subject: x\r\n\r\nbody\r\n--r--\r\n"
    )
    eight_bit = (
        "From: Jörg <jörg@kunde.example>\r\nTo: support@example.org\r\nSubject: Grüße\r\n"
        "Message-ID: <8bit@kunde.example>\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\nÜberweisung hängt.\r\n"
    ).encode()
    return [
        compose(message_id="<seed-plain@customer.example>"),
        compose(
            message_id="<seed-html@customer.example>",
            html="<p>Hello <b>there</b><img src='cid:x'></p>",
        ),
        compose(
            message_id="<seed-attach@customer.example>",
            attachments=[
                ("scan.pdf", "application/pdf", b"%PDF-1.4 " + bytes(range(256))),
                ("notes.txt", "text/plain", "Grüße".encode()),
            ],
        ),
        compose(
            message_id="<seed-reply@customer.example>",
            subject="Re: [EB#123456] The mobile online banking is down",
            in_reply_to="<x@helpdesk.example.org>",
            references="<x@helpdesk.example.org>",
            body="Still broken.\n\nOn Monday Helpdesk wrote:\n> We are on it.\n",
        ),
        eight_bit,
        bounce,
    ]


def corpus_mails(root: Path, limit: int = 400) -> list[bytes]:
    """Up to ``limit`` real mails of the corpus (sorted, so a run is repeatable)."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".eml", ".txt", ""))
    mails = []
    for path in files:
        data = path.read_bytes()
        if b":" in data[:200] and len(data) < 2_000_000:
            mails.append(data)
        if len(mails) >= limit:
            break
    return mails


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A seed mail with a few byte-level changes: flips, nasty inserts, cuts, repeats."""
    raw = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(("flip", "insert", "cut", "repeat", "delete")))
        at = draw(st.integers(0, len(raw)))
        if kind == "flip" and raw:
            raw[min(at, len(raw) - 1)] = draw(st.integers(0, 255))
        elif kind == "insert":
            raw[at:at] = draw(st.sampled_from(NASTY) | st.binary(max_size=40))
        elif kind == "cut":
            del raw[at:]
        elif kind == "repeat":
            end = draw(st.integers(at, min(len(raw), at + 200)))
            raw[at:at] = raw[at:end] * draw(st.integers(1, 20))
        else:
            end = draw(st.integers(at, min(len(raw), at + 200)))
            del raw[at:end]
    return bytes(raw)


_CHARSETS = ("utf-8", "iso-8859-1", "windows-1252", "koi8-r", "gb2312", "x-bogus", "", "utf-7")
_ENCODINGS = ("7bit", "8bit", "base64", "quoted-printable", "binary", "x-uuencode", "bogus")
_LEAF_TYPES = (
    "text/plain",
    "text/html",
    "application/octet-stream",
    "image/png",
    "message/rfc822",
    "message/delivery-status",
    "application/ms-tnef",
    "text/calendar",
)
_header_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60
) | st.sampled_from(("", "=?\xf8?Q?n?=", "=?utf-8?b?w6k=?=", "<>", "a@b", '"x" <y@z>'))


def _value(draw: st.DrawFn) -> bytes:
    """A header value as raw bytes: UTF-8, Latin-1 or whatever the sender's client did."""
    text = draw(_header_text)
    encoding = draw(st.sampled_from(("utf-8", "latin-1")))
    return text.replace("\r", " ").replace("\n", " ").encode(encoding, "replace")


@st.composite
def _part(draw: st.DrawFn, depth: int) -> bytes:
    if depth < 3 and draw(st.integers(0, 3)) == 0:
        subtype = draw(st.sampled_from(("mixed", "alternative", "related", "report", "signed")))
        boundary = draw(st.sampled_from(("b1", "=_x", "", "a b", "b1\x00", "-" * 80)))
        children = draw(st.lists(_part(depth + 1), min_size=0, max_size=4))
        head = f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'.encode(
            "utf-8", "replace"
        )
        body = b"".join(b"--" + boundary.encode() + b"\r\n" + child + b"\r\n" for child in children)
        ending = b"--" + boundary.encode() + b"--\r\n" if draw(st.booleans()) else b""
        return head + b"preamble\r\n" + body + ending
    ctype = draw(st.sampled_from(_LEAF_TYPES))
    charset = draw(st.sampled_from(_CHARSETS))
    encoding = draw(st.sampled_from(_ENCODINGS))
    lines = [f"Content-Type: {ctype}; charset={charset}".encode()]
    lines.append(f"Content-Transfer-Encoding: {encoding}".encode())
    if draw(st.booleans()):
        lines.append(b'Content-Disposition: attachment; filename="' + _value(draw) + b'"')
    if draw(st.booleans()):
        lines.append(b"Content-ID: <" + _value(draw) + b">")
    body = draw(st.binary(max_size=300) | st.text(max_size=300).map(lambda t: t.encode()))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


@st.composite
def generated_mime(draw: st.DrawFn) -> bytes:
    """A whole mail built from scratch: top-level headers, then a (possibly nested) body."""
    headers = [
        (b"From", draw(st.sampled_from((b"Carla <carla@customer.example>", b"", b"<>")) | _raw())),
        (b"To", draw(st.sampled_from((b"support@example.org", b"help@example.org")) | _raw())),
        (b"Subject", _value(draw)),
        (b"Date", draw(st.sampled_from((b"Mon, 23 Nov 2026 09:00:00 +0000", b"yesterday", b"")))),
    ]
    if draw(st.booleans()):
        headers.append((b"Message-ID", b"<" + _value(draw) + b"@customer.example>"))
    if draw(st.booleans()):
        headers.append((b"In-Reply-To", b"<" + _value(draw) + b">"))
    for name in draw(st.lists(st.sampled_from((b"Cc", b"Reply-To", b"Auto-Submitted",
                                               b"Precedence", b"List-Id", b"Return-Path",
                                               b"Authentication-Results", b"Received",
                                               b"X-Mailgate-Loop", b"References")), max_size=5)):
        headers.append((name, _value(draw)))
    head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
    return head + b"MIME-Version: 1.0\r\n" + draw(_part(0))


def _raw() -> st.SearchStrategy[bytes]:
    return st.binary(max_size=60).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))


def check(ctx: Context, raw: bytes) -> str | None:
    """Ingest one input; None when the intake kept its promise, else what went wrong."""
    before = m.Receipt.select().count()
    try:
        outcome = ingest(ctx, raw, source="smtp")
    except TemporaryFailure as exc:
        return f"TemporaryFailure (would be 451/75): {exc}"
    except Exception as exc:  # noqa: BLE001 - what the fuzzer is looking for
        frames = traceback.extract_tb(exc.__traceback__)[-3:]
        where = " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames))
        return f"{type(exc).__name__}: {str(exc)[:200]} at {where}"
    if outcome.action not in ACTIONS:
        return f"unknown outcome {outcome.action!r}"
    after = m.Receipt.select().count()
    receipt = m.Receipt.get_or_none(m.Receipt.message_id == outcome.message_id)
    # A re-delivery of the same bytes is no new receipt; the same mail encoded otherwise
    # (the content fingerprint) is stored, then finished as a duplicate.
    content_duplicate = receipt is not None and receipt.action == "duplicate"
    expected = before + (0 if outcome.action == "duplicate" and not content_duplicate else 1)
    if after != expected:
        return f"{after - before} receipts for one {outcome.action} mail"
    if receipt is None:
        return f"no receipt under {outcome.message_id!r}"
    if receipt.status not in ("processed", "quarantined"):
        return f"receipt left {receipt.status!r}"
    return None


def run_all(ctx: Context, inputs: Iterable[bytes]) -> list[tuple[bytes, str]]:
    """Every input through ``check``; the failures."""
    return [(raw, problem) for raw in inputs if (problem := check(ctx, raw)) is not None]
