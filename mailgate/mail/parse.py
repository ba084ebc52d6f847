"""Raw bytes → ``ParsedMail``: what a mail says, decoded, as one frozen value.

Pure: no database, no network, no config. Attachment bodies go to an injected
sink (the blob store, or only a hash for ``mailgate explain``), so a 25 MiB
attachment is never held in memory more than a chunk at a time.

Who does what, and why (each choice measured; see bench/ingest.py):

* ``mail.mime`` streams large leaf parts, and every forwarded message, out of the
  raw bytes, so no parser ever holds a big attachment and a forwarded mail is
  stored byte for byte; then it builds the message tree itself, finding MIME
  boundaries with ``bytes.find``. Anything irregular goes to the stdlib parser
  instead, which has a rule for every malformation.
* ``mail.addresses`` reads the address headers with mail-parser's address parser
  and the stdlib's, each where it is better (the reasons are in that module).
* ``mail.walk`` picks the body (text and HTML alternatives), decodes every
  charset with ``mail.charsets`` and hands attachments to the sink.
* Whatever could be read only after a repair (a broken header block, a charset
  that is no charset, a part that cannot be serialised) is listed in
  ``ParsedMail.repairs``. Only what nothing can read raises ``Unparseable``.
* Everything is linear in the size of the mail; the structural limits (MIME
  depth, part count, header count) are ``ParseLimits``.

Imports only the standard library, mail-parser, tnefparse and ``mailgate.mail``.
"""

from __future__ import annotations

import datetime as dt
import email
import email.message
import email.utils
import hashlib
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mailgate.mail.addresses import Address, from_name_and_raw, one_line, read_addresses
from mailgate.mail.charsets import decode_header, invalid_word_charsets
from mailgate.mail.mime import (
    ExtractedPart,
    Irregular,
    PartSink,
    blank_line,
    build_tree,
    extract_large_parts,
)
from mailgate.mail.repairs import merge as merge_repairs
from mailgate.mail.repairs import scan as scan_repairs
from mailgate.mail.walk import TEXT_LIMIT, Attachment, Walk, content_charset

if TYPE_CHECKING:
    from mailgate.mail import bounces

__all__ = [
    "Address",
    "Attachment",
    "HashSink",
    "ParseLimits",
    "ParsedMail",
    "Unparseable",
    "first_message_id",
    "parse",
    "synthesized_message_id",
]

# Mails above this size go through the streaming extractor first (and every mail
# that forwards a message, so that the forwarded bytes are stored as they came).
STREAM_ABOVE = 16 * 1024
# Leaf parts above this size are streamed out; body text only above TEXT_LIMIT.
PART_LIMIT = 8 * 1024
_MAX_REFERENCES = 200
# Searched in the lowercased mail: a case-insensitive search has no fast scan.
_FORWARDS = re.compile(rb"message/(?:rfc822|global)(?![\w-])")


class Unparseable(Exception):
    """Neither mail-parser nor the stdlib can make sense of these bytes."""


@dataclass(frozen=True)
class ParseLimits:
    """How much structure one mail may have; beyond it the rest is not read (a repair).

    Suggested config keys: ``gateway.max_mime_depth``, ``gateway.max_mime_parts``,
    ``gateway.max_header_count``.
    """

    max_depth: int = 30
    max_parts: int = 1000
    max_headers: int = 1000


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
    # What had to be repaired to read the mail, one line each ("repaired: <what>").
    repairs: tuple[str, ...] = ()
    # The From header as written (decoded, one line) and its display name: kept when
    # From has no usable address ("From: Support Team", "From: <>").
    from_raw: str = ""
    from_name: str = ""
    # The Sender: header's address (who sent the mail on behalf of From), if any.
    sender_header: Address | None = None
    # The address of the Return-Path header ('' when absent or the null sender <>).
    return_path: str = ""

    def header(self, name: str) -> str:
        """The first value of a header (decoded), or ''."""
        values = self.headers.get(name.lower())
        return values[0] if values else ""

    @property
    def recipients(self) -> tuple[Address, ...]:
        return self.to + self.cc

    @property
    def requester_candidates(self) -> tuple[tuple[str, Address], ...]:
        """Who a new ticket may belong to, best first: From, Reply-To, Sender, Return-Path.

        The core takes the first (and falls back to the envelope sender after these).
        """
        found: list[tuple[str, Address]] = []
        if self.sender is not None:
            found.append(("From", self.sender))
        if self.reply_to:
            found.append(("Reply-To", self.reply_to[0]))
        if self.sender_header is not None:
            found.append(("Sender", self.sender_header))
        if self.return_path:
            found.append(("Return-Path", Address(self.return_path)))
        return tuple(found)


class HashSink:
    """A sink that only hashes: for dry runs that must write nothing."""

    def write_chunks(self, chunks: Iterable[bytes]) -> tuple[str, int]:
        digest = hashlib.sha256()
        size = 0
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
        return digest.hexdigest(), size


def parse(
    raw: bytes,
    sink: PartSink,
    *,
    sha256: str | None = None,
    limits: ParseLimits = ParseLimits(),
) -> ParsedMail:
    """Parse one mail. Raises ``Unparseable`` only when there is nothing to work with."""
    sha256 = sha256 or hashlib.sha256(raw).hexdigest()
    size = len(raw)
    defects: list[str] = []
    repairs: list[str] = []
    noticed = scan_repairs(raw)
    raw = tame_parameters(repair_head(raw, repairs), repairs)
    extracted: dict[str, ExtractedPart] = {}
    skeleton = raw
    if len(raw) > STREAM_ABOVE or _FORWARDS.search(raw.lower()):
        try:
            skeleton, extracted = extract_large_parts(
                raw,
                sink,
                threshold=PART_LIMIT if len(raw) > STREAM_ABOVE else len(raw) + 1,
                text_threshold=TEXT_LIMIT,
                nonce=secrets.token_hex(8),
            )
        except Exception as exc:  # noqa: BLE001 - never lose a mail to the fast path
            defects.append(f"streaming extraction failed ({exc!r}); parsed whole")
            skeleton, extracted = raw, {}
    message = _tree(skeleton, repairs)
    if not _has_headers(message):
        raise Unparseable("no mail headers found")
    for defect in message.defects[:20]:
        defects.append(f"{type(defect).__name__}: {defect}")
    hint = _text_charset(message, limits.max_parts)
    headers, address_values, header_names = _header_map(message, limits.max_headers, hint, repairs)
    walk = Walk(
        sink,
        extracted,
        defects,
        repairs,
        max_depth=limits.max_depth,
        max_parts=limits.max_parts,
        hint=hint,
    )
    walk.part(message)
    message_id = first_message_id(headers.get("message-id", ("",))[0])
    synthesized = not message_id
    if synthesized:
        message_id = synthesized_message_id(sha256)
    text, html_body = walk.body()
    addresses = {
        k: read_addresses(v, defects, k) for k, v in address_values.items() if v and k != "subject"
    }
    from_name, from_raw = from_name_and_raw(address_values["from"])
    _note_bad_charsets(address_values["from"], "From", repairs)
    _note_bad_charsets(address_values["subject"], "Subject", repairs)
    from mailgate.mail import bounces, listalerts  # their tables: built on the first mail read

    sender = next(iter(addresses.get("from", ())), None)
    maybe = message.get_content_type() == "multipart/report" or bounces.looks_like_bounce(headers)
    report = bounces.read_report(message) if maybe else None
    if report is None or report.kind == "auto_reply":
        alert = listalerts.read_alert(message, headers, sender.email if sender else "")
        report = alert or report
    if report is None and sender is not None and not bounces.is_daemon_sender(sender.email):
        # A person forwarding a bounce: the report is read for the agent, never acted on.
        report = bounces.read_forwarded_report(message, raw if extracted else b"")
    return ParsedMail(
        message_id=message_id,
        message_id_synthesized=synthesized,
        sha256=sha256,
        size=size,
        sender=sender,
        reply_to=tuple(addresses.get("reply-to", ())),
        to=tuple(addresses.get("to", ())),
        cc=tuple(addresses.get("cc", ())),
        subject=one_line(headers.get("subject", ("",))[0]),
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
        header_names=header_names,
        repairs=merge_repairs(noticed, repairs),
        from_raw=from_raw,
        from_name=from_name or (sender.name if sender is not None else ""),
        sender_header=next(iter(addresses.get("sender", ())), None),
        return_path=_return_path(headers),
    )


# --- the header block ---------------------------------------------------------------------

_HEADER_LINE = re.compile(rb"[!-9;-~]{1,76}[ \t]*:")
_SPACED_NAME = re.compile(rb"^([!-9;-~]{1,76})[ \t]+:", re.MULTILINE)
_MAX_JUNK_LINES = 10


def repair_head(raw: bytes, repairs: list[str]) -> bytes:
    """The mail with what precedes its header block skipped and header names mended.

    Up to ten lines before the first ``Name: value`` line (an mbox ``From `` line, a
    blank line, a byte-order mark, a client's banner) are junk; ``From  : x@y``
    (spaces before the colon) is read as ``From: x@y``. The stored raw mail is
    untouched: this only changes what the parser is given.
    """
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
        repairs.append("byte-order mark before the headers skipped")
    if not _HEADER_LINE.match(raw):
        pos = 0
        for _ in range(_MAX_JUNK_LINES):
            end = raw.find(b"\n", pos)
            if end < 0:
                break
            pos = end + 1
            if _HEADER_LINE.match(raw, pos) and not raw.startswith(b"From ", pos):
                first = raw[: min(40, raw.find(b"\n"))].strip().decode("ascii", "replace")
                lines = raw.count(b"\n", 0, pos)
                repairs.append(f"{lines} line(s) before the headers skipped ({first!r})")
                raw = raw[pos:]
                break
    end = _head_end(raw)
    head = raw[:end]
    if (b" :" in head or b"\t:" in head) and _SPACED_NAME.search(head):
        names = sorted({m.decode("ascii", "replace") for m in _SPACED_NAME.findall(head)})[:5]
        repairs.append(f"space before the colon of header {', '.join(names)}")
        raw = _SPACED_NAME.sub(rb"\1:", head) + raw[end:]
    return raw


# The stdlib's parameter parser (behind get_param, get_filename, get_boundary and its
# own feed parser) costs (number of ";") x (length of the field): a Content-Type with a
# hundred thousand ";" inside a quoted name would keep the worker busy for minutes.
MAX_PARAMETERS = 100
_PARAMETER_FIELD = re.compile(
    rb"^content-(?:type|disposition)[ \t]*:[^\n]*(?:\n[ \t][^\n]*)*", re.IGNORECASE | re.MULTILINE
)


def tame_parameters(raw: bytes, repairs: list[str]) -> bytes:
    """``raw`` with the ";" beyond the first ``MAX_PARAMETERS`` of any Content-Type or
    Content-Disposition field turned into ","; linear, and a no-op for real mail."""
    if raw.count(b";") <= MAX_PARAMETERS:
        return raw
    pieces: list[bytes] = []
    pos = 0
    for match in _PARAMETER_FIELD.finditer(raw):
        value = match.group()
        if value.count(b";") <= MAX_PARAMETERS:
            continue
        head, *rest = value.split(b";", MAX_PARAMETERS)
        tail = rest.pop().replace(b";", b",")
        pieces += (raw[pos : match.start()], b";".join([head, *rest, tail]))
        pos = match.end()
    if not pieces:
        return raw
    repairs.append(f"a MIME field with more than {MAX_PARAMETERS} parameters was cut short")
    return b"".join([*pieces, raw[pos:]])


def _head_end(raw: bytes) -> int:
    # The first blank line, LF or CRLF: one scan that stops there (two finds would each
    # scan the whole mail for the newline it does not use).
    found = blank_line(raw)
    return found[0] if found else len(raw)


def _tree(raw: bytes, repairs: list[str]) -> email.message.Message:
    """The message tree: our fast builder, the stdlib parser for anything irregular, and
    for what even that cannot read, the header block with the body as one text."""
    try:
        return build_tree(raw)
    except (Irregular, RecursionError):
        pass
    except Exception:  # noqa: BLE001, S110 - a parameter the stdlib cannot parse: its own parser
        pass
    try:
        return email.message_from_bytes(raw)
    except Exception as exc:  # noqa: BLE001 - RecursionError and whatever else: read it flat
        repairs.append(f"MIME structure unreadable ({type(exc).__name__}); body read as one text")
    end = _head_end(raw)
    message = email.message_from_bytes(raw[:end] + b"\n\n")
    del message["Content-Type"]
    del message["Content-Transfer-Encoding"]
    message.set_payload(raw[end:].lstrip(b"\r\n").decode("ascii", "surrogateescape"))
    return message


def _raw_items(message: email.message.Message) -> Iterator[tuple[str, str]]:
    for name, value in message.raw_items():
        yield name.lower(), str(value)


def _has_headers(message: email.message.Message) -> bool:
    keys = {k.lower() for k in message}
    return bool(keys & {"from", "sender", "to", "subject", "message-id", "date", "return-path"})


def _text_charset(message: email.message.Message, max_parts: int) -> str | None:
    """The charset of the mail's first text part: how its raw 8-bit headers are meant."""
    for count, part in enumerate(message.walk()):
        if count > max_parts:
            break
        if part.get_content_maintype() == "text":
            charset = content_charset(part)
            if charset.isascii() and charset.isprintable():
                return charset or None
    return None


def _note_bad_charsets(values: list[str], name: str, repairs: list[str]) -> None:
    for value in values[:1]:
        for charset in invalid_word_charsets(value):
            repairs.append(f"{name}: encoded word with charset {charset} read as UTF-8")


class Headers(Mapping[str, tuple[str, ...]]):
    """Header values by lowercased name, decoded on first access.

    A delivered mail carries dozens of headers (Received chains, signatures) that
    nothing reads; decoding only what is asked for keeps them free.
    """

    def __init__(self, raw: dict[str, list[str]], hint: str | None = None) -> None:
        self._raw = raw
        self._hint = hint
        self._decoded: dict[str, tuple[str, ...]] = {}

    def __getitem__(self, name: str) -> tuple[str, ...]:
        decoded = self._decoded.get(name)
        if decoded is None:
            values = self._raw[name]
            decoded = tuple(decode_header(v, self._hint) for v in values)
            self._decoded[name] = decoded
        return decoded

    def __contains__(self, name: object) -> bool:
        return name in self._raw

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


# Read whole, whatever the header count limit: who wrote and to whom.
_ADDRESS_FIELDS = ("from", "to", "cc", "reply-to", "sender", "subject")


def _header_map(
    message: email.message.Message, limit: int, hint: str | None, repairs: list[str]
) -> tuple[Headers, dict[str, list[str]], tuple[str, ...]]:
    """In one pass over the header block: the first ``limit`` fields by lowercased name,
    the raw values of the address fields (and Subject), and every field's name."""
    raw: dict[str, list[str]] = {}
    wanted: dict[str, list[str]] = {name: [] for name in _ADDRESS_FIELDS}
    names: list[str] = []
    for count, (name, value) in enumerate(_raw_items(message)):
        names.append(name)
        if name in wanted:
            wanted[name].append(value)
        if count < limit:
            raw.setdefault(name, []).append(value)
        elif count == limit:
            repairs.append(f"more than {limit} header fields; the rest was not read")
    return Headers(raw, hint), wanted, tuple(names)


def _return_path(headers: Mapping[str, tuple[str, ...]]) -> str:
    values = headers.get("return-path")
    if not values:
        return ""
    found = email.utils.parseaddr(values[0])[1]
    return found if "@" in found else ""


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


def _date(value: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
        except (OverflowError, ValueError):
            return None
    return parsed
