"""Stream large MIME leaf parts out of a raw mail before it is parsed.

Python's email parser (which mail-parser uses) reads a MIME tree line by line
and keeps every payload as text: a 25 MiB attachment costs several times its
size in memory and a third of a second. This module finds large leaf parts at
the byte level, decodes them in bounded chunks straight into a sink (the blob
store, or only a hash for a dry run), and returns a *skeleton* of the mail in
which each such body is empty and carries a marker header. The parser then
sees only the small skeleton.

Whatever it does not understand it leaves as it is: in the worst case the
skeleton is the raw mail unchanged and the ordinary parser does all the work.
The marker carries a nonce chosen per parse, so a sender cannot forge one.

Pure apart from the injected sink; imports only the standard library.
"""

from __future__ import annotations

import binascii
import email.message
import email.parser
import email.policy
import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

MARK_HEADER = "X-Mailgate-Extracted"
_CHUNK = 1 << 20
_MAX_DEPTH = 30
_BODY_TYPES = {"text/plain", "text/html"}
_HEADER_PARSER = email.parser.BytesHeaderParser(policy=email.policy.compat32)
# A blank line, found from its first LF: a pattern that begins with one literal byte is
# searched for that byte at C speed, where the alternation ``\n\n|\r\n\r\n`` is tried
# at every position (about 20 µs for a delivered mail's header block, four times a mail).
_BLANK_LINE = re.compile(rb"\n(?:\n|(?<=\r\n)\r\n)")
# A header line as the stdlib's feed parser reads one: a field name, then the colon.
_FIELD_NAME = re.compile(r"[\041-\071\073-\176]+:")


def parse_headers(block: bytes) -> email.message.Message:
    """A header block (ending with its newline) as the stdlib's header parser reads it.

    The feed parser takes every line through several layers of Python (about 0.3 ms
    for a delivered mail's header block); a regular block — ``Name: value`` lines and
    their continuations, one kind of newline — is read here into exactly the message
    it would build (same fields, values, order and no defects). Anything else (a
    Unix ``From`` line, a bare CR, a line that is no header) goes to the stdlib parser.
    """
    text = block.decode("ascii", "surrogateescape")
    newline = "\r\n" if "\r" in text else "\n"
    if newline == "\r\n" and text.count("\r") != text.count("\r\n"):
        return _HEADER_PARSER.parsebytes(block)
    lines = text.split(newline)
    if lines.pop() != "" or (lines and lines[0].startswith("From ")):
        return _HEADER_PARSER.parsebytes(block)
    message = email.message.Message()
    name = ""
    value: list[str] = []
    for line in lines:
        if line[:1] in (" ", "\t"):
            if not name:
                return _HEADER_PARSER.parsebytes(block)
            value.append(line + newline)
            continue
        match = _FIELD_NAME.match(line)
        if match is None or line.startswith("From "):
            return _HEADER_PARSER.parsebytes(block)
        if name:
            message.set_raw(name, "".join(value).rstrip("\r\n"))
        colon = match.end() - 1
        name, value = line[:colon], [line[colon + 1 :].lstrip(" \t"), newline]
    if name:
        message.set_raw(name, "".join(value).rstrip("\r\n"))
    message.set_payload("")
    return message


def blank_line(raw: bytes, start: int = 0, end: int | None = None) -> tuple[int, int] | None:
    """(start, end) of the first blank line in raw[start:end], LF LF or CR LF CR LF,
    whichever starts first (as the alternation finds it), or None."""
    stop = len(raw) if end is None else end
    pos = start
    while True:
        found = _BLANK_LINE.search(raw, pos, stop)
        if found is None:
            return None
        at = found.start()
        if found.end() - at == 2:
            return at, at + 2
        if at > start:  # the CR before the first LF is inside the range
            return at - 1, at + 3
        pos = at + 1


class PartSink(Protocol):
    """Where decoded part bodies go; returns (sha256 hex, size)."""

    def write_chunks(self, chunks: Iterable[bytes]) -> tuple[str, int]: ...


@dataclass(frozen=True)
class ExtractedPart:
    sha256: str
    size: int


def extract_large_parts(
    raw: bytes,
    sink: PartSink,
    *,
    threshold: int,
    text_threshold: int,
    nonce: str,
    messages: bool = True,
) -> tuple[bytes, dict[str, ExtractedPart]]:
    """Skeleton of ``raw`` and the parts streamed to ``sink``, keyed by marker value.

    Leaf parts whose encoded body exceeds ``threshold`` are extracted; body text
    parts (text/plain, text/html) only above ``text_threshold``. With ``messages``
    every ``message/rfc822`` part is extracted whatever its size, as the exact
    bytes of its body (CRLF kept): a forwarded mail is stored as it was sent, not
    as a parser would write it again. The skeleton keeps its header block, so
    readers of the forwarded headers (bounce reports) still see them.
    """
    walker = _Walker(raw, sink, threshold, text_threshold, nonce, messages)
    walker.entity(0, len(raw), 0)
    if not walker.found:
        return raw, {}
    return b"".join(walker.out), walker.found


_FORWARDED_TYPES = frozenset({"message/rfc822", "message/global"})
# A forwarded header block larger than this is not kept in the skeleton.
_MAX_INNER_HEADER = 256 * 1024


class _Walker:
    def __init__(
        self,
        raw: bytes,
        sink: PartSink,
        threshold: int,
        text_threshold: int,
        nonce: str,
        messages: bool,
    ) -> None:
        self.raw = raw
        self.view = memoryview(raw)
        self.sink = sink
        self.threshold = threshold
        self.text_threshold = text_threshold
        self.nonce = nonce
        self.messages = messages
        self.out: list[bytes | memoryview] = []
        self.found: dict[str, ExtractedPart] = {}

    def entity(self, start: int, end: int, depth: int) -> None:
        body_start, header_end, newline = _header_block(self.raw, start, end)
        small = end - body_start < self.threshold
        if depth > _MAX_DEPTH or (small and not self.messages):
            self.out.append(self.view[start:end])
            return
        headers = parse_headers(bytes(self.view[start:header_end]))
        ctype = headers.get_content_type()
        encoding = str(headers.get("Content-Transfer-Encoding", "")).strip().lower()
        if ctype in _FORWARDED_TYPES and encoding in ("", "7bit", "8bit", "binary"):
            self.forwarded(start, header_end, body_start, end, newline)
            return
        boundary = headers.get_boundary() if ctype.startswith("multipart/") else None
        if boundary:
            self.multipart(start, body_start, end, boundary.encode("ascii", "replace"), depth)
            return
        is_body = (
            ctype in _BODY_TYPES
            and headers.get_content_disposition() != "attachment"
            and not headers.get_param("name")
            and not headers.get_filename()
        )
        limit = self.text_threshold if is_body else self.threshold
        if ctype.startswith("multipart/") or end - body_start < limit:
            self.out.append(self.view[start:end])
            return
        if encoding not in ("", "7bit", "8bit", "binary", "base64", "quoted-printable"):
            self.out.append(self.view[start:end])
            return
        chunks = _decoded_chunks(self.raw, body_start, end, encoding)
        self.out.append(self.view[start:header_end])
        self.out.append(self._store(chunks) + newline + newline)

    def _store(self, chunks: Iterable[bytes]) -> bytes:
        sha256, size = self.sink.write_chunks(chunks)
        key = f"{self.nonce}-{len(self.found)}"
        self.found[key] = ExtractedPart(sha256, size)
        return f"{MARK_HEADER}: {key}".encode("ascii")

    def forwarded(
        self, start: int, header_end: int, body_start: int, end: int, newline: bytes
    ) -> None:
        marker = self._store(_decoded_chunks(self.raw, body_start, end, "7bit"))
        self.out.append(self.view[start:header_end])
        self.out.append(marker + newline + newline)
        _inner_body, inner_end, inner_newline = _header_block(self.raw, body_start, end)
        if inner_end - body_start <= _MAX_INNER_HEADER:
            self.out.append(self.view[body_start:inner_end])
            if inner_end == end and end > body_start and self.raw[end - 1 : end] != b"\n":
                self.out.append(inner_newline)
        self.out.append(inner_newline)

    def multipart(self, start: int, body_start: int, end: int, boundary: bytes, depth: int) -> None:
        delimiters = list(_delimiters(self.raw, body_start, end, boundary))
        if not delimiters:
            self.out.append(self.view[start:end])
            return
        # Headers, preamble and the first delimiter line are kept as they are.
        self.out.append(self.view[start : delimiters[0][1]])
        for (_, part_start, closing), (next_line, next_end, _) in itertools.pairwise(delimiters):
            if closing:
                break
            self.entity(part_start, next_line, depth + 1)
            self.out.append(self.view[next_line:next_end])
        _, last_end, closing = delimiters[-1]
        if closing:
            self.out.append(self.view[last_end:end])
        else:
            # No closing delimiter: the last part runs to the end of the mail.
            self.entity(last_end, end, depth + 1)


def _header_block(raw: bytes, start: int, end: int) -> tuple[int, int, bytes]:
    """(body start, header end, newline) of the entity in raw[start:end]."""
    if raw.startswith(b"\r\n", start):
        return start + 2, start, b"\r\n"
    if raw.startswith(b"\n", start):
        return start + 1, start, b"\n"
    # The first blank line of either kind, in one scan (a CRLF blank line can never
    # start right after an LF one: the earlier of the two is the one).
    found = blank_line(raw, start, end)
    if found is None:
        return end, end, b"\n"
    at = found[0]
    if raw[at] == 13:  # \r
        return at + 4, at + 2, b"\r\n"
    return at + 2, at + 1, b"\n"


def _delimiters(
    raw: bytes, start: int, end: int, boundary: bytes
) -> Iterator[tuple[int, int, bool]]:
    """Each delimiter line as (line start incl. preceding newline, line end, is closing)."""
    marker = b"--" + boundary
    pos = start
    while True:
        found = raw.find(marker, pos, end)
        if found == -1:
            return
        at_line_start = found == start or raw[found - 1 : found] == b"\n"
        after = found + len(marker)
        if not at_line_start:
            pos = after
            continue
        closing = raw.startswith(b"--", after)
        line_end = raw.find(b"\n", after, end)
        line_end = end if line_end == -1 else line_end + 1
        line_start = found
        if found > start and raw[found - 1 : found] == b"\n":
            line_start = found - 2 if raw[found - 2 : found] == b"\r\n" else found - 1
        yield line_start, line_end, closing
        if closing:
            return
        pos = line_end


def _decoded_chunks(raw: bytes, start: int, end: int, encoding: str) -> Iterator[bytes]:
    """The decoded body raw[start:end], at most about one chunk in memory at a time."""
    if encoding == "base64":
        yield from _base64_chunks(raw, start, end)
    elif encoding == "quoted-printable":
        for chunk in _line_chunks(raw, start, end):
            yield binascii.a2b_qp(chunk)
    else:
        for offset in range(start, end, _CHUNK):
            yield raw[offset : min(offset + _CHUNK, end)]


def _line_chunks(raw: bytes, start: int, end: int) -> Iterator[bytes]:
    # Quoted-printable may only be cut after a newline (a soft break "=\n" must stay whole).
    pos = start
    while pos < end:
        cut = min(pos + _CHUNK, end)
        if cut < end:
            newline = raw.rfind(b"\n", pos, cut)
            cut = newline + 1 if newline > pos else cut
        yield raw[pos:cut]
        pos = cut


def _base64_chunks(raw: bytes, start: int, end: int) -> Iterator[bytes]:
    carry = b""
    for offset in range(start, end, _CHUNK):
        piece = carry + raw[offset : min(offset + _CHUNK, end)].translate(None, b" \t\r\n")
        usable = len(piece) - len(piece) % 4
        carry = piece[usable:]
        if usable:
            yield _a2b(piece[:usable])
    if carry:
        yield _a2b(carry + b"=" * (-len(carry) % 4))


def _a2b(data: bytes) -> bytes:
    try:
        return binascii.a2b_base64(data)
    except binascii.Error:
        # Garbage inside the base64 (a stray '=' mid-stream): decode what can be decoded.
        cleaned = data.replace(b"=", b"")
        cleaned = cleaned[: len(cleaned) - len(cleaned) % 4]
        return binascii.a2b_base64(cleaned) if cleaned else b""


# --- building the message tree without the line-by-line parser ---------------------------


class Irregular(Exception):
    """The structure is unusual: leave it to the stdlib parser, which has a rule for everything."""


_MESSAGE_SUBTYPES_PARSED = {"message/rfc822", "message/global"}


def build_tree(raw: bytes) -> email.message.Message:
    """The compat32 message tree of ``raw``, as ``email.message_from_bytes`` would build it.

    The stdlib's feed parser reads every line through Python code and compiles a
    regular expression for every MIME boundary it meets (about 0.4 ms, never
    cached, since boundaries are unique); this finds boundaries with
    ``bytes.find`` and parses only header blocks. It raises ``Irregular`` for
    anything it does not handle exactly like the stdlib (a missing closing
    boundary, delivery reports, deep nesting, headers without a blank line).
    """
    return _entity(raw, 0, len(raw), 0)


def _entity(raw: bytes, start: int, end: int, depth: int) -> email.message.Message:
    if depth > _MAX_DEPTH:
        raise Irregular("deep nesting")
    body_start, header_end, _ = _header_block(raw, start, end)
    if body_start == end and header_end == end and start != end:
        raise Irregular("no blank line after the headers")
    message = parse_headers(raw[start:header_end])
    if message.defects:
        raise Irregular("header defects")
    ctype = message.get_content_type()
    if ctype.startswith("multipart/"):
        boundary = message.get_boundary()
        if not boundary or not boundary.isascii():
            raise Irregular("multipart without a usable boundary")
        delimiters = list(_delimiters(raw, body_start, end, boundary.encode("ascii")))
        if not delimiters or not delimiters[-1][2] or len(delimiters) < 2:
            raise Irregular("no closing boundary")
        for line_start, line_end, _closing in delimiters:
            # The stdlib accepts only whitespace after the boundary on its line.
            tail = raw[line_start:line_end].rstrip(b"\r\n").split(b"--" + boundary.encode(), 1)[1]
            if tail.strip(b" \t") not in (b"", b"--"):
                raise Irregular("text after a boundary")
        children: list[email.message.Message | str] = []
        for (_, part_start, _), (next_line, _, _) in itertools.pairwise(delimiters):
            children.append(_entity(raw, part_start, next_line, depth + 1))
        message.set_payload(children)
        first = delimiters[0][0]
        at_once = first == body_start and raw.startswith(b"--", first)
        message.preamble = None if at_once else _text(raw[body_start:first])
        epilogue = raw[delimiters[-1][1] : end]
        message.epilogue = _text(epilogue) if epilogue else ""
        return message
    if ctype in _MESSAGE_SUBTYPES_PARSED:
        inner = _entity(raw, body_start, end, depth + 1)
        message.set_payload([inner])
        return message
    if ctype.startswith("message/"):
        raise Irregular("a report part: the stdlib has its own rules for it")
    message.set_payload(_text(raw[body_start:end]))
    return message


def _text(data: bytes) -> str:
    # What the stdlib stores as payload: the bytes, surrogate-escaped where not ASCII.
    return data.decode("ascii", "surrogateescape")
