"""Raw bytes → ``ParsedMail``: what a mail says, decoded, as one frozen value.

Pure: no database, no network, no config. Attachment bodies go to an injected
sink (the blob store, or only a hash for ``mailgate explain``), so a 25 MiB
attachment is never held in memory more than a chunk at a time.

Who does what, and why (each choice measured; see bench/ingest.py):

* ``mail.mime`` streams large leaf parts out of the raw bytes, so no parser
  ever holds a big attachment; then it builds the message tree itself, finding
  MIME boundaries with ``bytes.find`` (the stdlib feed parser reads every line
  in Python and compiles a regex per boundary). Anything irregular goes to the
  stdlib parser instead, which has a rule for every malformation.
* mail-parser parses the address headers (From, To, Cc, Reply-To): its
  hardened RFC 5322 address parser recovers display names and addresses from
  the broken forms real mail has; the stdlib parser is its fallback. Its other
  layers are not used: the body walk decodes charsets without the mislabel
  table of ``mail.charsets`` and re-encodes every attachment as base64 text,
  and its Received-header analysis costs more than the rest of ingest.
* Our own walk over the tree picks the body (text and HTML alternatives),
  decodes every charset with ``mail.charsets`` and hands attachments to the sink.
* Only what nothing can read raises ``Unparseable``; the caller quarantines it.

Imports only the standard library, mail-parser and ``mailgate.mail``.
"""

from __future__ import annotations

import datetime as dt
import email
import email.message
import email.utils
import hashlib
import mimetypes
import re
import secrets
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from mailparser.utils import get_addresses

from mailgate.mail import bounces, html
from mailgate.mail.charsets import decode_bytes, decode_header
from mailgate.mail.mime import (
    MARK_HEADER,
    ExtractedPart,
    Irregular,
    PartSink,
    build_tree,
    extract_large_parts,
)

# Mails above this size go through the streaming extractor first.
STREAM_ABOVE = 16 * 1024
# Leaf parts above this size are streamed out; body text only above TEXT_LIMIT.
PART_LIMIT = 8 * 1024
TEXT_LIMIT = 2 * 1024 * 1024
_MAX_REFERENCES = 200


class Unparseable(Exception):
    """Neither mail-parser nor the stdlib can make sense of these bytes."""


@dataclass(frozen=True)
class Address:
    email: str
    name: str = ""

    def __str__(self) -> str:
        """``Name <addr>`` in Unicode, for display and storage (not for the wire)."""
        if not self.name:
            return self.email
        name = self.name.replace("\\", "").replace('"', "")
        if any(c in name for c in "()<>@,;:.[]"):
            name = f'"{name}"'
        return f"{name} <{self.email}>"


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int
    sha256: str
    content_id: str = ""
    inline: bool = False


@dataclass(frozen=True)
class ParsedMail:
    message_id: str
    message_id_synthesized: bool
    sha256: str
    size: int
    sender: Address | None
    reply_to: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    subject: str
    date: dt.datetime | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    text: str
    html: str
    attachments: tuple[Attachment, ...]
    headers: Mapping[str, tuple[str, ...]] = field(repr=False)
    content_type: str = "text/plain"
    report: bounces.Report | None = None
    defects: tuple[str, ...] = ()
    # Lowercased names of the top-level headers, in order (which came above which).
    header_names: tuple[str, ...] = ()

    def header(self, name: str) -> str:
        """The first value of a header (decoded), or ''."""
        values = self.headers.get(name.lower())
        return values[0] if values else ""

    @property
    def recipients(self) -> tuple[Address, ...]:
        return self.to + self.cc


class HashSink:
    """A sink that only hashes: for dry runs that must write nothing."""

    def write_chunks(self, chunks: Iterable[bytes]) -> tuple[str, int]:
        digest = hashlib.sha256()
        size = 0
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
        return digest.hexdigest(), size


def parse(raw: bytes, sink: PartSink, *, sha256: str | None = None) -> ParsedMail:
    """Parse one mail. Raises ``Unparseable`` only when there is nothing to work with."""
    sha256 = sha256 or hashlib.sha256(raw).hexdigest()
    defects: list[str] = []
    extracted: dict[str, ExtractedPart] = {}
    skeleton = raw
    if len(raw) > STREAM_ABOVE:
        try:
            skeleton, extracted = extract_large_parts(
                raw,
                sink,
                threshold=PART_LIMIT,
                text_threshold=TEXT_LIMIT,
                nonce=secrets.token_hex(8),
            )
        except Exception as exc:  # noqa: BLE001 - never lose a mail to the fast path
            defects.append(f"streaming extraction failed ({exc!r}); parsed whole")
            skeleton, extracted = raw, {}
    message, addresses = _read(skeleton, defects)
    if not _has_headers(message):
        raise Unparseable("no mail headers found")
    walk = _Walk(sink, extracted, defects)
    walk.part(message, in_attachment=False)
    headers = _header_map(message)
    message_id = first_message_id(headers.get("message-id", ("",))[0])
    synthesized = not message_id
    if synthesized:
        message_id = synthesized_message_id(sha256)
    text, html_body = walk.body()
    report = bounces.read_report(message) if _maybe_report(message, headers) else None
    return ParsedMail(
        message_id=message_id,
        message_id_synthesized=synthesized,
        sha256=sha256,
        size=len(raw),
        sender=(addresses.get("from") or (None,))[0],
        reply_to=tuple(addresses.get("reply-to", ())),
        to=tuple(addresses.get("to", ())),
        cc=tuple(addresses.get("cc", ())),
        subject=_one_line(headers.get("subject", ("",))[0]),
        date=_date(headers.get("date", ("",))[0]),
        in_reply_to=tuple(_ids(headers.get("in-reply-to", ("",))[0]))[:1],
        references=_bounded(_ids(" ".join(headers.get("references", ())))),
        text=text,
        html=html_body,
        attachments=tuple(walk.attachments),
        headers=headers,
        content_type=message.get_content_type(),
        report=report,
        defects=tuple(defects),
        header_names=tuple(name.lower() for name in message),
    )


# --- reading the tree ---------------------------------------------------------------------


_ADDRESS_HEADERS = ("from", "to", "cc", "reply-to")


def _tree(raw: bytes) -> email.message.Message:
    """The message tree: our fast builder, or the stdlib parser for anything irregular."""
    try:
        return build_tree(raw)
    except Irregular:
        pass
    except RecursionError as exc:
        raise Unparseable("MIME nesting too deep to parse") from exc
    try:
        return email.message_from_bytes(raw)
    except Exception as exc:
        raise Unparseable(f"unreadable MIME structure: {type(exc).__name__}: {exc}") from exc


def _read(raw: bytes, defects: list[str]) -> tuple[email.message.Message, dict[str, list[Address]]]:
    message = _tree(raw)
    addresses = {name: _addresses(message, name, defects) for name in _ADDRESS_HEADERS}
    for defect in message.defects[:20]:
        defects.append(f"{type(defect).__name__}: {defect}")
    return message, addresses


def _addresses(message: email.message.Message, name: str, defects: list[str]) -> list[Address]:
    """Address headers through mail-parser's address parser, the stdlib's as the fallback."""
    values = message.get_all(name, [])
    if not values:
        return []
    result: list[Address] = []
    try:
        for value in values:
            for display, addr in get_addresses(value, defects=[], decode_names=True):
                clean = _clean_address(addr)
                if clean:
                    result.append(Address(clean, _display_name(display, clean)))
    except Exception as exc:  # noqa: BLE001 - mail-parser failing is what we fall back for
        defects.append(f"mail-parser could not read {name}: {type(exc).__name__}: {exc}")
        result = []
    return result or _stdlib_addresses(message, name)


def _stdlib_addresses(message: email.message.Message, name: str) -> list[Address]:
    values = [str(v) for v in message.get_all(name, [])]
    result = []
    for display, addr in email.utils.getaddresses(values):
        addr = _clean_address(decode_header(addr))
        if addr:
            result.append(Address(addr, _display_name(decode_header(display), addr)))
    return result


def _display_name(name: str, addr: str) -> str:
    name = decode_header(name) if ("=?" in name or _has_surrogates(name)) else name
    name = _one_line(name).strip().strip('"').strip()
    return "" if name.lower() == addr.lower() else name


def _clean_address(addr: str) -> str:
    addr = _one_line(addr).strip().strip("<>").strip()
    if "@" not in addr or " " in addr:
        return ""
    local, _, domain = addr.rpartition("@")
    return f"{local}@{domain.lower()}"


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _has_headers(message: email.message.Message) -> bool:
    keys = {k.lower() for k in message}
    return bool(keys & {"from", "sender", "to", "subject", "message-id", "date", "return-path"})


class Headers(Mapping[str, tuple[str, ...]]):
    """Header values by lowercased name, decoded on first access.

    A delivered mail carries dozens of headers (Received chains, signatures) that
    nothing reads; decoding only what is asked for keeps them free.
    """

    def __init__(self, raw: dict[str, list[str]]) -> None:
        self._raw = raw
        self._decoded: dict[str, tuple[str, ...]] = {}

    def __getitem__(self, name: str) -> tuple[str, ...]:
        decoded = self._decoded.get(name)
        if decoded is None:
            decoded = self._decoded[name] = tuple(decode_header(v) for v in self._raw[name])
        return decoded

    def __contains__(self, name: object) -> bool:
        return name in self._raw

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


def _header_map(message: email.message.Message) -> Headers:
    raw: dict[str, list[str]] = {}
    for name, value in message.raw_items():
        raw.setdefault(name.lower(), []).append(str(value))
    return Headers(raw)


def _defect_lines(defects: Any) -> list[str]:
    lines: list[str] = []
    for entry in defects or []:
        if isinstance(entry, dict):
            for where, items in entry.items():
                lines.extend(f"{where}: {item}" for item in items)
        else:
            lines.append(str(entry))
    return lines[:50]


_ID = re.compile(r"<([^<>\s]{1,900})>")


def _ids(value: str) -> list[str]:
    found = [f"<{m}>" for m in _ID.findall(value)]
    if not found and value.strip() and "@" in value and " " not in value.strip():
        found = [f"<{value.strip().strip('<>')}>"]
    return found


def first_message_id(value: str) -> str:
    """The first ``<id>`` in a header value, or ''."""
    ids = _ids(value)
    return ids[0] if ids else ""


def synthesized_message_id(sha256: str) -> str:
    """A deterministic Message-ID for a mail without one: the same bytes give the same ID."""
    return f"<{sha256[:40]}@sha256.mailgate.invalid>"


def _bounded(ids: list[str]) -> tuple[str, ...]:
    # A pathological References header must not turn one mail into thousands of lookups.
    unique = list(dict.fromkeys(ids))
    if len(unique) > _MAX_REFERENCES:
        unique = unique[:10] + unique[-(_MAX_REFERENCES - 10) :]
    return tuple(unique)


def _one_line(text: str) -> str:
    """Header text with no line breaks or control characters: it can never inject a header."""
    if text.isprintable():
        return text.strip()
    cleaned = "".join(" " if unicodedata.category(c)[0] == "C" else c for c in text)
    return " ".join(cleaned.split())


def _date(value: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):  # e.g. a zone of 20 digits
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


def _maybe_report(message: email.message.Message, headers: Mapping[str, tuple[str, ...]]) -> bool:
    return message.get_content_type() == "multipart/report" or bounces.looks_like_bounce(headers)


# --- the body walk ------------------------------------------------------------------------


class _Walk:
    """Collects body text/HTML and attachments from a message tree, in document order."""

    def __init__(
        self, sink: PartSink, extracted: dict[str, ExtractedPart], defects: list[str]
    ) -> None:
        self.sink = sink
        self.extracted = extracted
        self.defects = defects
        self.plain: list[str] = []
        self.html: list[str] = []
        self.attachments: list[Attachment] = []
        self._names = 0

    def body(self) -> tuple[str, str]:
        html_body = "\n".join(h for h in self.html if h.strip())
        text = "\n\n".join(p.strip("\n") for p in self.plain if p.strip())
        if not text.strip() and html_body:
            text = html.html_to_text(html_body)
        return _normalise_text(text), html_body

    def part(self, part: email.message.Message, *, in_attachment: bool, depth: int = 0) -> None:
        ctype = part.get_content_type()
        if depth > 40:
            self.defects.append("MIME nesting deeper than 40 levels; the rest was ignored")
            return
        if ctype == "message/rfc822" or ctype == "message/global":
            self.forwarded(part)
            return
        if ctype.startswith("message/"):
            # Delivery-status, feedback and disposition reports: kept as an attachment,
            # never read as body text (the stdlib parses their blocks like messages).
            self.report_part(part)
            return
        if part.is_multipart():
            children = part.get_payload()
            if not isinstance(children, list):
                return
            if ctype == "multipart/alternative":
                self.alternative(children, depth)
                return
            for child in children:
                if isinstance(child, email.message.Message):
                    self.part(child, in_attachment=in_attachment, depth=depth + 1)
            return
        self.leaf(part)

    def alternative(self, children: list[Any], depth: int) -> None:
        # Clients order alternatives from plainest to richest: take the last plain
        # and the last HTML rendering; inline images of a multipart/related still count.
        best_plain: list[str] = []
        best_html: list[str] = []
        for child in children:
            if not isinstance(child, email.message.Message):
                continue
            self.plain, saved_plain = [], self.plain
            self.html, saved_html = [], self.html
            self.part(child, in_attachment=False, depth=depth + 1)
            if self.plain:
                best_plain = self.plain
            if self.html:
                best_html = self.html
            self.plain, self.html = saved_plain, saved_html
        self.plain.extend(best_plain)
        self.html.extend(best_html)

    def leaf(self, part: email.message.Message) -> None:
        ctype = part.get_content_type()
        disposition = part.get_content_disposition()
        filename = _filename(part)
        marker = part.get(MARK_HEADER)
        is_body = (
            ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename
        )
        if marker is not None:
            stored = self.extracted.get(str(marker).strip())
            if stored is None:
                # A marker we did not write: a sender trying to reference a stored blob.
                self.defects.append("forged extraction marker ignored")
                return
            if is_body:
                self.defects.append(f"{ctype} body over {TEXT_LIMIT} bytes kept as attachment")
                filename = "message.html" if ctype == "text/html" else "message.txt"
            self.add_attachment(part, filename, stored.sha256, stored.size)
            return
        if is_body:
            text = self.decode_text(part)
            (self.html if ctype == "text/html" else self.plain).append(text)
            return
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        sha256, size = self.sink.write_chunks((data,))
        self.add_attachment(part, filename, sha256, size)

    def forwarded(self, part: email.message.Message) -> None:
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], email.message.Message):
            data = inner[0].as_bytes()
            subject = decode_header(str(inner[0].get("Subject", "")))
        else:
            raw_payload = part.get_payload(decode=True)
            data = raw_payload if isinstance(raw_payload, bytes) else b""
            subject = ""
        name = _filename(part) or _safe_filename(f"{subject or 'forwarded message'}.eml")
        sha256, size = self.sink.write_chunks((data,))
        self.add_attachment(part, name, sha256, size)

    def report_part(self, part: email.message.Message) -> None:
        payload = part.get_payload()
        if isinstance(payload, list):
            data = b"\n".join(p.as_bytes() for p in payload if isinstance(p, email.message.Message))
        else:
            decoded = part.get_payload(decode=True)
            data = decoded if isinstance(decoded, bytes) else b""
        subtype = part.get_content_subtype()
        sha256, size = self.sink.write_chunks((data,))
        self.add_attachment(part, _filename(part) or f"{subtype}.txt", sha256, size)

    def add_attachment(
        self, part: email.message.Message, filename: str, sha256: str, size: int
    ) -> None:
        ctype = part.get_content_type()
        content_id = str(part.get("Content-ID", "") or "").strip().strip("<>").strip()
        inline = bool(content_id) and part.get_content_disposition() != "attachment"
        if not filename:
            self._names += 1
            stem = "inline" if inline else "attachment"
            extension = mimetypes.guess_extension(ctype) or ".bin"
            filename = f"{stem}-{self._names}{extension}"
        self.attachments.append(
            Attachment(
                filename=filename,
                content_type=ctype,
                size=size,
                sha256=sha256,
                content_id=_one_line(content_id)[:900],
                inline=inline,
            )
        )

    def decode_text(self, part: email.message.Message) -> str:
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        text, note = decode_bytes(data, part.get_content_charset())
        if note:
            self.defects.append(note)
        return text


def _filename(part: email.message.Message) -> str:
    name: Any = None
    try:
        name = part.get_filename() or part.get_param("name")
    except Exception:  # noqa: BLE001 - a malformed parameter must not lose the part
        name = None
    if isinstance(name, tuple):
        name = email.utils.collapse_rfc2231_value(name)
    if not name:
        return ""
    return _safe_filename(decode_header(str(name)))


def _safe_filename(name: str) -> str:
    """A file name that is only a name: no directories, no control characters, ≤ 255 bytes."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")
    name = " ".join(name.split()).strip(" .")
    if not name:
        return ""
    stem, dot, extension = name.rpartition(".")
    if not dot or len(extension) > 16:
        stem, extension = name, ""
    while len(name.encode("utf-8")) > 255:
        stem = stem[:-1]
        name = f"{stem}.{extension}" if extension else stem
    return name


def _normalise_text(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return text.strip("\n")
