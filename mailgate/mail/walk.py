"""The body walk: body text and HTML, and every attachment handed to the sink, in order.

Pure apart from the injected sink; imports only the standard library, tnefparse
and ``mailgate.mail``. Part of ``parse``: it never raises on a part; whatever it
could only read in a degraded way is a *repair* (one line, for the trace).
"""

from __future__ import annotations

import email.message
import functools
import mimetypes
import re
import unicodedata
import urllib.parse
from dataclasses import dataclass
from typing import Any

from mailgate.mail import html, tnef
from mailgate.mail.addresses import one_line
from mailgate.mail.charsets import decode_bytes, decode_header
from mailgate.mail.mime import MARK_HEADER, ExtractedPart, PartSink

# Parameter values longer than this are cut before they are parsed (a stored file
# name is at most 255 bytes; a megabyte of it is an attack). The parse is linear.
MAX_PARAM_CHARS = 1_000_000
TEXT_LIMIT = 2 * 1024 * 1024
# Names Windows takes for devices whatever the extension: a saved file must not be one.
RESERVED_NAMES = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{device}{n}" for device in ("COM", "LPT") for n in "123456789¹²³"}
)


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int
    sha256: str
    content_id: str = ""
    inline: bool = False
    # The name as the sender wrote it (decoded, one line, at most 1,000 characters);
    # ``filename`` is that name cleaned (no directories, no control characters).
    original_filename: str = ""


class Walk:
    """Collects body text/HTML and attachments from a message tree, in document order."""

    def __init__(
        self,
        sink: PartSink,
        extracted: dict[str, ExtractedPart],
        defects: list[str],
        repairs: list[str],
        *,
        max_depth: int,
        max_parts: int,
        hint: str | None,
    ) -> None:
        self.sink = sink
        self.extracted = extracted
        self.defects = defects
        self.repairs = repairs
        self.max_depth = max_depth
        self.max_parts = max_parts
        self.hint = hint
        self.plain: list[str] = []
        self.html: list[str] = []
        self.attachments: list[Attachment] = []
        self._names = 0
        self._parts = 0

    def body(self) -> tuple[str, str]:
        html_body = "\n".join(h for h in self.html if h.strip())
        text = "\n\n".join(p.strip("\n") for p in self.plain if p.strip())
        if not text.strip() and html_body:
            text = html.html_to_text(html_body)
        return normalise_text(text), html_body

    def part(self, part: email.message.Message, *, depth: int = 0) -> None:
        self._parts += 1
        if self._parts == self.max_parts + 1:
            self.repairs.append(f"more than {self.max_parts} MIME parts; the rest was not read")
        if self._parts > self.max_parts:
            return
        if depth > self.max_depth:
            self.repairs.append(f"MIME nesting deeper than {self.max_depth}; the rest was not read")
            self._parts = self.max_parts + 1  # say it once
            return
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global"):
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
                    self.part(child, depth=depth + 1)
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
            self.part(child, depth=depth + 1)
            if self.plain:
                best_plain = self.plain
            if self.html:
                best_html = self.html
            self.plain, self.html = saved_plain, saved_html
        self.plain.extend(best_plain)
        self.html.extend(best_html)

    def _stored(self, part: email.message.Message) -> ExtractedPart | bool | None:
        """The extracted part a marker names; None without a marker, False when forged."""
        marker = part.get(MARK_HEADER)
        if marker is None:
            return None
        stored = self.extracted.get(str(marker).strip())
        if stored is None:
            # A marker we did not write: a sender trying to reference a stored blob.
            self.defects.append("forged extraction marker ignored")
            return False
        return stored

    def leaf(self, part: email.message.Message) -> None:
        ctype = part.get_content_type()
        disposition = _disposition(part)
        filename = filename_of(part, self.hint)
        is_body = (
            ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename
        )
        stored = self._stored(part)
        if stored is False:
            return
        if isinstance(stored, ExtractedPart):
            if is_body:
                self.defects.append(f"{ctype} body over {TEXT_LIMIT} bytes kept as attachment")
                filename = "message.html" if ctype == "text/html" else "message.txt"
            self.add_attachment(part, filename, stored.sha256, stored.size)
            return
        if is_body:
            text = self.decode_text(part)
            (self.html if ctype == "text/html" else self.plain).append(text)
            return
        data = _payload(part)
        sha256, size = self.sink.write_chunks((data,))
        self.add_attachment(part, filename, sha256, size)
        if tnef.is_tnef(ctype, filename, data):
            self.tnef(data)

    def tnef(self, data: bytes) -> None:
        """Outlook's winmail.dat: its files become the customer's attachments too."""
        files, problem = tnef.files(data)
        if problem:
            self.repairs.append(f"winmail.dat: {problem}")
        for name, content in files:
            sha256, size = self.sink.write_chunks((content,))
            ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
            self._append(safe_filename(name), ctype, size, sha256, "", False, one_line(name)[:1000])

    def forwarded(self, part: email.message.Message) -> None:
        stored = self._stored(part)
        if stored is False:
            return
        inner = part.get_payload()
        subject = ""
        if isinstance(inner, list) and inner and isinstance(inner[0], email.message.Message):
            subject = decode_header(raw_header(inner[0], "subject"), self.hint)
        name = filename_of(part, self.hint) or safe_filename(
            f"{one_line(subject) or 'forwarded message'}.eml"
        )
        if isinstance(stored, ExtractedPart):
            self.add_attachment(part, name, stored.sha256, stored.size)
            return
        # Only where the extractor could not find the part's bytes (a structure only
        # the stdlib parser reads): the part as that parser understood it.
        if isinstance(inner, list) and inner and isinstance(inner[0], email.message.Message):
            data = self._serialise(inner[0], "forwarded message")
        else:
            data = _payload(part)
        sha256, size = self.sink.write_chunks((data,))
        self.add_attachment(part, name, sha256, size)

    def _serialise(self, message: email.message.Message, what: str) -> bytes:
        try:
            return message.as_bytes()
        except Exception as exc:  # noqa: BLE001 - a part that cannot be re-serialised is kept
            problem = type(exc).__name__
            self.repairs.append(f"{what} could not be serialised ({problem}); kept as read")
        try:
            return message.as_string().encode("utf-8", "surrogateescape")
        except Exception:  # noqa: BLE001
            payload = message.get_payload()
            return str(payload).encode("utf-8", "replace") if isinstance(payload, str) else b""

    def report_part(self, part: email.message.Message) -> None:
        payload = part.get_payload()
        if isinstance(payload, list):
            data = b"\n".join(
                self._serialise(p, part.get_content_type())
                for p in payload
                if isinstance(p, email.message.Message)
            )
        else:
            data = _payload(part)
        subtype = part.get_content_subtype()
        sha256, size = self.sink.write_chunks((data,))
        self.add_attachment(part, filename_of(part, self.hint) or f"{subtype}.txt", sha256, size)

    def add_attachment(
        self, part: email.message.Message, filename: str, sha256: str, size: int
    ) -> None:
        ctype = part.get_content_type()
        content_id = one_line(raw_header(part, "content-id")).strip().strip("<>").strip()
        inline = bool(content_id) and _disposition(part) != "attachment"
        original = original_filename_of(part, self.hint)
        self._append(filename, ctype, size, sha256, content_id, inline, original)

    def _append(
        self,
        filename: str,
        ctype: str,
        size: int,
        sha256: str,
        content_id: str,
        inline: bool,
        original: str = "",
    ) -> None:
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
                content_id=content_id[:900],
                inline=inline,
                original_filename=original or filename,
            )
        )

    def decode_text(self, part: email.message.Message) -> str:
        data = _payload(part)
        text, note = decode_bytes(data, _param(part, "content-type", "charset"))
        if note:
            self.defects.append(note)
            self.repairs.append(f"text part: {note}")
        return text


def _payload(part: email.message.Message) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001 - a broken transfer encoding: the bytes as they are
        raw = part.get_payload()
        return raw.encode("ascii", "surrogateescape") if isinstance(raw, str) else b""
    return payload if isinstance(payload, bytes) else b""


def raw_header(part: email.message.Message, name: str) -> str:
    """A header's value as received (surrogate-escaped raw bytes), not a compat32 Header
    object whose str() has replaced every 8-bit byte."""
    for key, value in part.raw_items():
        if key.lower() == name:
            return str(value)
    return ""


def _disposition(part: email.message.Message) -> str:
    value = raw_header(part, "content-disposition")
    return value.split(";", 1)[0].strip().lower() if value else ""


# --- parameters and file names -------------------------------------------------------------

# One parameter: name, optional RFC 2231 section and "*", then a quoted or bare value.
_PARAM = re.compile(
    r';\s*([^\s=;*]{1,80})(?:\*(\d{1,3}))?(\*)?\s*=\s*("(?:[^"\\]|\\.)*"?|[^;]*)', re.DOTALL
)


@functools.lru_cache(maxsize=256)
def _params(value: str) -> dict[str, str]:
    """The parameters of a Content-Type/-Disposition value, RFC 2231 joined; linear.

    Cached: a part's fields are asked several times (charset, file name, type); the
    result is shared, so callers only read it."""
    sections: dict[str, dict[int, tuple[bool, str]]] = {}
    for match in _PARAM.finditer(value[:MAX_PARAM_CHARS]):
        key, number, star, raw = match.groups()
        raw = raw.strip()
        if raw.startswith('"'):
            closed = raw.endswith('"') and len(raw) > 1
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1] if closed else raw[1:])
        sections.setdefault(key.lower(), {}).setdefault(int(number or 0), (bool(star), raw))
    result: dict[str, str] = {}
    for key, parts in sections.items():
        ordered = [parts[i] for i in sorted(parts)]
        if not any(encoded for encoded, _ in ordered):
            result[key] = "".join(text for _, text in ordered)
            continue
        charset = ""
        data = bytearray()
        for index, (encoded, text) in enumerate(ordered):
            if encoded and index == 0 and text.count("'") >= 2:
                charset, _lang, text = text.split("'", 2)
            if encoded:
                data += urllib.parse.unquote_to_bytes(text.encode("utf-8", "surrogateescape"))
            else:
                data += text.encode("utf-8", "surrogateescape")
        result[key] = "\x00rfc2231" + decode_bytes(bytes(data), charset or "utf-8")[0]
    return result


def _param(part: email.message.Message, header: str, name: str) -> str:
    value = _params(";" + raw_header(part, header).split(";", 1)[-1]).get(name, "")
    return value.removeprefix("\x00rfc2231")


def content_charset(part: email.message.Message) -> str:
    """The charset parameter of the part's Content-Type ('' when none); never raises."""
    return _param(part, "content-type", "charset").strip()


def filename_of(part: email.message.Message, hint: str | None = None) -> str:
    """The part's file name, decoded as the sender meant it, made safe; '' when none.

    Raw 8-bit names are read in the part's charset, else ``hint`` (the charset of
    the mail's text), else UTF-8, else the legacy charset the bytes suggest.
    """
    return safe_filename(_decoded_name(part, hint))


def original_filename_of(part: email.message.Message, hint: str | None = None) -> str:
    """The part's file name as the sender wrote it, decoded; one line, ≤ 1,000 characters."""
    name = one_line(_decoded_name(part, hint)[:1000])
    # Lone surrogates (raw bytes nothing could decode) cannot be stored as text.
    return name.encode("utf-8", "replace").decode("utf-8")


def _decoded_name(part: email.message.Message, hint: str | None) -> str:
    disposition = _params(";" + raw_header(part, "content-disposition").split(";", 1)[-1])
    ctype = _params(";" + raw_header(part, "content-type").split(";", 1)[-1])
    name = disposition.get("filename") or ctype.get("name") or ""
    if not name:
        return ""
    if name.startswith("\x00rfc2231"):
        return name.removeprefix("\x00rfc2231")
    return decode_header(name, ctype.get("charset") or hint)


def safe_filename(name: str) -> str:
    """A file name that is only a name: no directories, no control characters, no device
    name of Windows (``CON``, ``NUL``, ``COM1``… get a ``_``), ≤ 255 bytes.

    Linear in the length of ``name``: the cut is made on the encoded bytes once.
    """
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(
        " " if c in "\t\r\n" else c
        for c in name
        if c in "\t\r\n" or unicodedata.category(c)[0] != "C"
    )
    name = name.strip(" .")
    if not name:
        return ""
    stem, dot, extension = name.rpartition(".")
    if not dot or len(extension) > 16 or not stem:
        stem, extension = name, ""
    if stem.split(".", 1)[0].rstrip(" ").upper() in RESERVED_NAMES:
        stem = f"_{stem}"  # Windows opens a device for "CON.txt", "nul", "COM1.pdf"
    suffix = f".{extension}" if extension else ""
    room = 255 - len(suffix.encode("utf-8"))
    encoded = stem.encode("utf-8", "surrogateescape")
    if len(encoded) > room:
        stem = encoded[:room].decode("utf-8", "ignore").rstrip(" .")
    return f"{stem}{suffix}"


def normalise_text(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return text.strip("\n")
