"""A notice → the bytes on the wire, with the headers that make threading work everywhere.

Pure: imports only the standard library. Built by hand rather than with
``EmailMessage``, which costs as much as parsing a mail; the rules it follows:

* every header value is one line: CR, LF and other control characters in
  customer text are removed, so a subject can never add a header;
* non-ASCII display names and subjects become RFC 2047 words (UTF-8), split
  on character boundaries; so do those with a word too long for one line (a
  1,000-character subject without a space): the words are folded onto lines of
  their own and a reader joins them again, so every header line stays far below
  SMTP's 998 octets and the text survives whole; other long ASCII headers are
  folded at spaces;
* bodies are UTF-8, quoted-printable; with an HTML part the mail is
  multipart/alternative (text first, as RFC 2046 wants the plainest first);
* Outlook threads by Thread-Topic/Thread-Index, everybody else by
  In-Reply-To/References; both are set;
* every notice says its kind in ``X-Mailgate-Notice`` (mail clients filter on it).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.utils
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from mailgate.mail.parse import Address

LOOP_HEADER = "X-Mailgate-Loop"
NOTICE_HEADER = "X-Mailgate-Notice"
_MAX_REFERENCES = 12
_SPECIALS = set('()<>@,;:\\".[]')
# A word longer than this cannot be folded onto a line of its own within 78 characters.
_LONGEST_WORD = 70


@dataclass(frozen=True)
class Outgoing:
    sender: Address
    to: tuple[Address, ...]
    subject: str
    text: str
    message_id: str
    cc: tuple[Address, ...] = ()
    reply_to: str = ""
    html: str = ""
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    auto_submitted: str = "auto-generated"  # '' for mail written by a person
    loop_token: str = ""
    thread_topic: str = ""
    thread_index: str = ""
    date: dt.datetime | None = None
    extra_headers: tuple[tuple[str, str], ...] = ()
    # The kind of notice (``sla_warning``…): people filter on X-Mailgate-Notice.
    notice: str = ""


def build(out: Outgoing) -> bytes:
    headers: list[tuple[str, str]] = [
        ("From", format_address(out.sender)),
        ("To", ", ".join(format_address(a) for a in out.to)),
    ]
    if out.cc:
        headers.append(("Cc", ", ".join(format_address(a) for a in out.cc)))
    if out.reply_to:
        headers.append(("Reply-To", format_address(Address(out.reply_to, out.sender.name))))
    headers.append(("Subject", encode_text(out.subject)))
    when = out.date or dt.datetime.now(dt.UTC)
    headers.append(
        (
            "Date",
            email.utils.format_datetime(
                when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when
            ),
        )
    )
    headers.append(("Message-ID", out.message_id))
    if out.in_reply_to:
        headers.append(("In-Reply-To", out.in_reply_to))
    references = trim_references(out.references)
    if references:
        headers.append(("References", " ".join(references)))
    if out.thread_topic:
        headers.append(("Thread-Topic", encode_text(out.thread_topic)))
    if out.thread_index:
        headers.append(("Thread-Index", out.thread_index))
    if out.auto_submitted:
        headers.append(("Auto-Submitted", out.auto_submitted))
        headers.append(
            ("Precedence", "bulk" if out.auto_submitted == "auto-generated" else "auto_reply")
        )
    # Ask Exchange/Outlook not to answer with out-of-office replies or receipts.
    headers.append(("X-Auto-Response-Suppress", "All"))
    if out.loop_token:
        headers.append((LOOP_HEADER, out.loop_token))
    if out.notice:
        headers.append((NOTICE_HEADER, one_line(out.notice)))
    headers.extend((name, encode_text(value)) for name, value in out.extra_headers)
    headers.append(("MIME-Version", "1.0"))
    head = b"".join(_header_line(name, value) for name, value in headers)
    text_part = _text_part("plain", out.text)
    if not out.html:
        return head + text_part
    boundary = f"=_mailgate_{secrets.token_hex(12)}"
    parts = (
        f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'
        f"This is a multi-part message in MIME format.\r\n--{boundary}\r\n"
    ).encode()
    parts += text_part + f"\r\n--{boundary}\r\n".encode()
    parts += _text_part("html", out.html) + f"\r\n--{boundary}--\r\n".encode()
    return head + parts


def _text_part(subtype: str, text: str) -> bytes:
    body = "\n".join(
        line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    )
    encoded = binascii.b2a_qp(body.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")
    return (
        (
            f"Content-Type: text/{subtype}; charset=utf-8\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        ).encode()
        + encoded
        + b"\r\n"
    )


def one_line(value: str) -> str:
    """Header text without line breaks or control characters."""
    if value.isprintable():
        return value.strip()
    return " ".join(
        "".join(
            " " if (ord(c) < 32 or 0x7F <= ord(c) < 0xA0 or c in "\u2028\u2029") else c
            for c in value
        ).split()
    )


def encode_text(value: str) -> str:
    """An unstructured header value: RFC 2047 words when it is not plain ASCII."""
    value = one_line(value)
    if value.isascii() and not _has_long_word(value):
        return value
    return " ".join(_encoded_words(value))


def _has_long_word(value: str) -> bool:
    return len(value) > _LONGEST_WORD and any(len(w) > _LONGEST_WORD for w in value.split())


def _encoded_words(value: str) -> list[str]:
    words: list[str] = []
    chunk = ""
    for char in value:
        # 45 bytes of UTF-8 → 60 base64 characters → a 72-character word (limit 75).
        if len((chunk + char).encode("utf-8")) > 45:
            words.append(_b_word(chunk))
            chunk = ""
        chunk += char
    if chunk:
        words.append(_b_word(chunk))
    return words


def _b_word(text: str) -> str:
    return f"=?utf-8?b?{base64.b64encode(text.encode('utf-8')).decode('ascii')}?="


def format_address(address: Address) -> str:
    addr = one_line(address.email).replace(" ", "")
    name = one_line(address.name)
    if not name:
        return addr
    if not name.isascii() or _has_long_word(name):
        return f"{' '.join(_encoded_words(name))} <{addr}>"
    if any(c in _SPECIALS for c in name):
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}" <{addr}>'
    return f"{name} <{addr}>"


def _header_line(name: str, value: str) -> bytes:
    line = f"{name}: {value}"
    if len(line) <= 78:
        return line.encode("utf-8") + b"\r\n"
    folded: list[str] = []
    current = f"{name}:"
    for word in value.split(" "):
        if len(current) + 1 + len(word) > 76 and current.strip() != f"{name}:":
            folded.append(current)
            current = " " + word
        else:
            current += " " + word
    folded.append(current)
    return "\r\n".join(folded).encode("utf-8") + b"\r\n"


def trim_references(references: Sequence[str]) -> tuple[str, ...]:
    """Long threads keep the first Message-ID and the latest few (RFC 5322 suggests it)."""
    unique = list(dict.fromkeys(r for r in references if r))
    if len(unique) <= _MAX_REFERENCES:
        return tuple(unique)
    return (unique[0], *unique[-(_MAX_REFERENCES - 1) :])


def thread_index(seed: str, started: dt.datetime, now: dt.datetime) -> str:
    """Outlook's Thread-Index: a 22-byte conversation header plus one 5-byte child block.

    The header is derived from the ticket, so every notice of a ticket lands in
    one Outlook conversation.
    """
    epoch = dt.datetime(1601, 1, 1)
    filetime = int((started - epoch).total_seconds() * 10_000_000)
    header = (
        filetime.to_bytes(8, "big")[:6] + hashlib.md5(seed.encode(), usedforsecurity=False).digest()
    )
    delta = max(int((now - started).total_seconds() * 10_000_000), 0) >> 18
    child = ((delta & 0x7FFFFFFF) << 8 | secrets.randbits(8)).to_bytes(5, "big")
    return base64.b64encode(header + child).decode("ascii")
