"""Delivery reports, the MIME parts: field blocks, returned originals, text.

Pure; imports only the standard library and ``mailgate.mail``. compat32 parses
report parts in its own ways; these read back what the report said.
"""

from __future__ import annotations

import base64
import binascii
import email.message
import email.parser
import email.policy
import html as html_lib
import quopri

from mailgate.mail.bounce_dsn import (
    _MAX_PARTS,
    _TEXT_LIMIT,
)
from mailgate.mail.charsets import decode_bytes, decode_header

_HEADER_PARSER = email.parser.HeaderParser(policy=email.policy.compat32)


def _field_text(part: email.message.Message) -> str:
    """The text of a delivery-status or feedback-report part, whatever compat32 made of it.

    compat32 parses each blank-line separated block into a header-only sub-message;
    a block with a malformed line keeps the rest as that sub-message's payload; a
    base64 or quoted-printable part ends up as garbage "headers" that must be decoded.
    """
    payload = part.get_payload()
    if isinstance(payload, list):
        blocks = []
        for block in payload[:_MAX_PARTS]:
            if not isinstance(block, email.message.Message):
                continue
            lines = [f"{k}: {v}" for k, v in block.raw_items()]
            rest = block.get_payload()
            if isinstance(rest, str) and rest:
                lines.append(rest)
            blocks.append("\n".join(lines))
        text = "\n\n".join(blocks)
    else:
        text = str(payload or "")
    text = text[:_TEXT_LIMIT]
    encoding = str(part.get("Content-Transfer-Encoding", "") or "").strip().lower()
    if encoding in ("base64", "quoted-printable"):
        raw = text.encode("ascii", "ignore")
        try:
            data = base64.b64decode(raw) if encoding == "base64" else quopri.decodestring(raw)
        except (ValueError, binascii.Error):
            return text
        text = decode_bytes(data, part.get_content_charset())[0]
    if "=?" not in text:
        return text
    # Encoded words in fields (SMTPUTF8 addresses): decoded line by line, keeping the lines.
    return "\n".join(decode_header(line) if "=?" in line else line for line in text.split("\n"))


def _leaf_text(part: email.message.Message) -> str:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return decode_bytes(payload[:_TEXT_LIMIT], part.get_content_charset())[0]
    raw = part.get_payload()
    return raw[:_TEXT_LIMIT] if isinstance(raw, str) else ""


def _attached_headers(part: email.message.Message) -> email.message.Message | None:
    """The header block of a returned original (message/rfc822)."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], email.message.Message):
        inner = payload[0]
        encoding = str(part.get("Content-Transfer-Encoding", "") or "").lower().strip()
        if len(inner.keys()) > 0 and encoding not in ("base64", "quoted-printable"):
            return inner
        # Encoded message/rfc822 (against RFC 2046, but seen): decode, then read its headers.
        raw = inner.as_string()[:_TEXT_LIMIT] if not inner.keys() else ""
        if not raw and isinstance(inner.get_payload(), str):
            raw = str(inner.get_payload())[:_TEXT_LIMIT]
        return _parse_headers(_decode_transfer(raw, encoding))
    if isinstance(payload, str):
        return _parse_headers(payload[:_TEXT_LIMIT])
    return None


def _decode_transfer(raw: str, encoding: str) -> str:
    data = raw.encode("ascii", "ignore")
    try:
        if encoding == "base64":
            data = base64.b64decode(data)
        elif encoding == "quoted-printable":
            data = quopri.decodestring(data)
    except (ValueError, binascii.Error):
        return raw
    return decode_bytes(data, None)[0]


def _parse_headers(text: str) -> email.message.Message | None:
    if not text.strip():
        return None
    message = _HEADER_PARSER.parsestr(text[:64_000].lstrip("\r\n"))
    return message if len(message.keys()) else None


def _html_to_text(markup: str) -> str:
    """Crude, linear HTML to text: tags dropped, block ends as line breaks, entities decoded."""
    if not markup:
        return ""
    pieces = markup[:_TEXT_LIMIT].split("<")
    out = [pieces[0]]
    for piece in pieces[1:]:
        end = piece.find(">")
        if end < 0:
            out.append(" " + piece)
            continue
        tag = piece[:end].lstrip("/").split(None, 1)[0].lower() if piece[:end].strip("/") else ""
        out.append(
            "\n"
            if tag in ("br", "p", "div", "tr", "li", "table", "h1", "h2", "h3", "pre", "blockquote")
            else " "
        )
        out.append(piece[end + 1 :])
    return html_lib.unescape("".join(out))
