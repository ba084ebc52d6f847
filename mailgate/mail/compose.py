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
* every notice says its kind in ``X-Mailgate-Notice`` (mail clients filter on it);
* files go after the body (multipart/mixed), inline images beside the HTML that
  shows them (multipart/related); names are RFC 2231 (with an RFC 2047 ``name=``
  for old Outlook), base64 in lines of 76; a forwarded mail (message/rfc822) is
  carried as it is, as RFC 2046 wants.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.utils
import hashlib
import io
import re
import secrets
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from mailgate.mail.parse import Address

LOOP_HEADER = "X-Mailgate-Loop"
NOTICE_HEADER = "X-Mailgate-Notice"
_MAX_REFERENCES = 12
_SPECIALS = set('()<>@,;:\\".[]')
# A word longer than this cannot be folded onto a line of its own within 78 characters.
_LONGEST_WORD = 70


@dataclass(frozen=True)
class OutFile:
    """A file a notice carries: its bytes, and how the recipient's client should show it."""

    filename: str
    content_type: str
    data: bytes = b""
    content_id: str = ""  # without <>; set for an image the HTML shows (cid:…)
    inline: bool = False
    # Instead of ``data``: the bytes in chunks, read only while the mail is built, so
    # a 25 MiB file is never held whole beside its encoding.
    chunks: Callable[[], Iterable[bytes]] | None = None

    def whole(self) -> bytes:
        return self.data if self.chunks is None else b"".join(self.chunks())


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
    files: tuple[OutFile, ...] = ()


def build(out: Outgoing) -> bytes:
    # Written into one growing buffer that becomes the result without a copy: the mail
    # exists once, and a file's encoding only a chunk at a time.
    written = io.BytesIO()
    for piece in pieces(out):
        written.write(piece)
    return written.getvalue()


def pieces(out: Outgoing) -> Iterator[bytes]:
    """The mail in pieces, a file's encoding a chunk at a time (to write it to disk)."""
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
    # The mail is built as a list of pieces and joined once: a 25 MiB file is encoded
    # chunk by chunk and copied once more, not once per level of MIME nesting.
    body: list[_Piece] = [_text_part("plain", out.text)]
    if out.html:
        body = _multipart("alternative", [body, [_text_part("html", out.html)]])
    inline = [f for f in out.files if f.inline and f.content_id and out.html]
    files = [f for f in out.files if f not in inline]
    if inline:
        body = _multipart("related", [body, *(_file_part(f) for f in inline)])
    if files:
        body = _multipart("mixed", [body, *(_file_part(f) for f in files)])
    yield head
    for piece in body:
        if isinstance(piece, bytes):
            yield piece
        else:
            yield from piece


class _Encoded:
    """A file's encoded lines, produced only when the mail is written out."""

    def __init__(self, lines: Callable[[], Iterator[bytes]], empty: bool) -> None:
        self._lines = lines
        self._empty = empty

    def __iter__(self) -> Iterator[bytes]:
        return self._lines()

    def endswith(self, suffix: bytes) -> bool:
        return not self._empty  # base64 lines end with CRLF; nothing does not


_Piece = bytes | _Encoded


def _multipart(subtype: str, parts: Sequence[list[_Piece]]) -> list[_Piece]:
    boundary = f"=_mailgate_{secrets.token_hex(12)}"
    pieces: list[_Piece] = [
        f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'
        "This is a multi-part message in MIME format.\r\n".encode()
    ]
    for part in parts:
        pieces.append(f"--{boundary}\r\n".encode())
        pieces.extend(part)
        if not part[-1].endswith(b"\r\n"):
            pieces.append(b"\r\n")
    pieces.append(f"--{boundary}--\r\n".encode())
    return pieces


_MIME_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,62}/[a-z0-9][a-z0-9!#$&^_.+-]{0,62}")
_LONG_LINE = re.compile(rb"[^\n]{998}")


def _file_part(file: OutFile) -> list[_Piece]:
    ctype = file.content_type.lower().strip()
    if not _MIME_TYPE.fullmatch(ctype):
        ctype = "application/octet-stream"
    name = one_line(file.filename) or "attachment"
    disposition = "inline" if file.inline and file.content_id else "attachment"
    lines = [
        f"Content-Type: {ctype};{_parameter('name', name, legacy=True)}",
        f"Content-Disposition: {disposition};{_parameter('filename', name)}",
    ]
    if file.content_id:
        cid = one_line(file.content_id).replace(" ", "").strip("<>")
        lines.append(f"Content-ID: <{cid}>")
    forwarded = ctype in ("message/rfc822", "message/global")
    whole = file.whole() if forwarded else b""
    data: list[_Piece]
    if forwarded and not _LONG_LINE.search(whole):
        # RFC 2046: a message/rfc822 part is never base64; it travels as it was written.
        encoding = "7bit" if whole.isascii() else "8bit"
        data = [whole.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")]
    else:
        if forwarded:
            lines[0] = "Content-Type: application/octet-stream;" + lines[0].split(";", 1)[1]
        encoding = "base64"
        if forwarded:
            data = list(_base64_lines(whole))
        elif file.chunks is None:
            data = [_Encoded(lambda: _base64_lines(file.data), not file.data)]
        else:
            source = file.chunks
            data = [_Encoded(lambda: _base64_stream(source()), False)]
    lines.append(f"Content-Transfer-Encoding: {encoding}")
    return ["\r\n".join(lines).encode("ascii") + b"\r\n\r\n", *data]


# 57 bytes make one base64 line of 76 characters; a chunk is 16,384 such lines.
_BASE64_CHUNK = 57 * 16384


def _base64_crlf(data: bytes | bytearray | memoryview) -> bytes:
    """``base64.encodebytes`` with CRLF line ends: lines of 76 characters, the last one
    shorter, each ended. Encoded in one call and cut by slicing (encodebytes calls the
    encoder once a line and its result is copied again to replace the line ends)."""
    encoded = binascii.b2a_base64(data, newline=False)
    if not encoded:
        return b""
    return b"\r\n".join([encoded[i : i + 76] for i in range(0, len(encoded), 76)]) + b"\r\n"


def _base64_lines(data: bytes) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(view), _BASE64_CHUNK):
        yield _base64_crlf(view[start : start + _BASE64_CHUNK])
    if not data:
        yield b""


def _base64_stream(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """``_base64_lines`` of bytes that arrive in chunks of any size: the same lines."""
    pending = bytearray()
    empty = True
    for chunk in chunks:
        pending += chunk
        empty = empty and not chunk
        while len(pending) >= _BASE64_CHUNK:
            yield _base64_crlf(pending[:_BASE64_CHUNK])
            del pending[:_BASE64_CHUNK]
    if pending:
        yield _base64_crlf(pending)
    elif empty:
        yield b"\r\n"  # what an empty file's part ends with (see _multipart)


def _parameter(key: str, value: str, *, legacy: bool = False) -> str:
    """``key`` as MIME parameter lines (each starting with a folding space): quoted ASCII
    when it can be, else RFC 2231 (``key*0*=utf-8''…``), or for ``name`` an RFC 2047
    word, which is what Outlook before 2007 reads."""
    if value.isascii() and value.isprintable() and len(value) < 60:
        quoted = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'\r\n\t{key}="{quoted}"'
    if legacy:
        return "\r\n\t" + f'{key}="' + "\r\n\t ".join(_encoded_words(value)) + '"'
    encoded = urllib.parse.quote(value.encode("utf-8"), safe="")
    sections: list[str] = []
    while encoded:
        cut = 60
        # Never split a %XX escape between two sections.
        while cut < len(encoded) and "%" in encoded[cut - 2 : cut]:
            cut -= 1
        sections.append(encoded[:cut])
        encoded = encoded[cut:]
    out = []
    for index, section in enumerate(sections):
        charset = "utf-8''" if index == 0 else ""
        out.append(f"\r\n\t{key}*{index}*={charset}{section};")
    return "".join(out).rstrip(";")


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
