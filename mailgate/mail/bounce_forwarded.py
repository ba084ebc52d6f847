"""Delivery reports a person forwarded: "Fwd: Returned mail", inline or attached.

Pure; imports only the standard library and ``mailgate.mail``.

A customer who forwards a bounce is asking for help, so the mail stays a person's
mail (``classify`` never makes it a bounce and nothing is suppressed: anybody can
write such a mail). But the report it carries is worth reading, so that an agent
(and ``mailgate explain``) sees which address failed and why. This module finds
the forwarded mail; ``bounces.read_forwarded_report`` reads it with the same rules
as any report, so a forwarded block counts only when it would count on its own
(a daemon sender or a report subject, report words, a recipient).

The forwarded mail is either an attached ``message/rfc822`` or the block after a
forward marker in the person's text (Apple Mail's "Begin forwarded message:",
Gmail's and Thunderbird's "---------- Forwarded message ---------", Outlook's
"-----Original Message-----", in the languages ``quote_patterns`` knows), unquoted
one level when the client quoted it with ``>``, its header names translated back
("Von:" -> From).
"""

from __future__ import annotations

import email.message
import email.parser
import email.policy
import re

from mailgate.mail.bounce_parts import _leaf_text
from mailgate.mail.quote_patterns import _FORWARD_INTRO, _FROM_KEYS, _SEPARATOR

_MAX_PARTS = 50
_TEXT_LIMIT = 200_000
_MAX_LINES = 5000
# A forwarded block's header lines sit right below the marker.
_HEADER_LINES = 15
_SUBJECT_KEYS = frozenset(
    {
        "subject", "betreff", "objet", "asunto", "oggetto", "onderwerp", "ämne", "emne",
        "temat", "тема", "主题", "主旨", "件名", "aihe", "tárgy", "konu", "předmět", "assunto",
    }
)  # fmt: skip
_FIELD = re.compile(r"^([^\s:：][^:：]{0,24}?)\s*[:：][ \t]*(.*)$")
_QUOTE = re.compile(r"^> ?")


def forwarded_mail(message: email.message.Message) -> email.message.Message | None:
    """The mail a person's ``message`` forwards (attached, else inline), or None."""
    text = ""
    stack = [message]
    seen = 0
    while stack and seen < _MAX_PARTS:
        part = stack.pop()
        seen += 1
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global"):
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], email.message.Message):
                return inner[0]
        elif part.is_multipart():
            children = part.get_payload()
            if isinstance(children, list):
                parts = [c for c in children if isinstance(c, email.message.Message)]
                stack.extend(reversed(parts))
        elif ctype == "text/plain" and not text and part.get_content_disposition() != "attachment":
            text = _leaf_text(part)[:_TEXT_LIMIT]
    return _inline(text) if text else None


def _inline(text: str) -> email.message.Message | None:
    lines = text.splitlines()[:_MAX_LINES]
    for number, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith(">"):  # one level of quoting, as _QUOTE takes it off
            stripped = stripped[1:].strip()
        if not stripped or len(stripped) > 200 or not (
            stripped[0] == "-" or stripped[-1] in ":："
        ):
            continue  # a marker is a dashed line or ends with a colon: skip the rest cheaply
        if _FORWARD_INTRO.fullmatch(stripped) or _SEPARATOR.fullmatch(stripped):
            return _as_mail(lines[number + 1 :])
    return None


def _as_mail(lines: list[str]) -> email.message.Message | None:
    """The block after a forward marker as a mail: unquoted one level, header names in English."""
    body = [line for line in lines if line.strip()]
    if body and sum(line.startswith(">") for line in body[:40]) * 2 > len(body[:40]):
        lines = [_QUOTE.sub("", line) for line in lines]
    while lines and not lines[0].strip():
        lines = lines[1:]
    head: list[str] = []
    for index, line in enumerate(lines[:_HEADER_LINES]):
        if not line.strip():
            lines = lines[index:]
            break
        match = _FIELD.match(line)
        if match is None:
            if line[:1] in (" ", "\t") and head:
                head.append(line)
                continue
            return None  # not a header block: a marker in prose
        name = _english(match.group(1))
        if " " not in name:  # "Sent at:" and the like: no field a report reader needs
            head.append(f"{name}: {match.group(2)}")
    else:
        lines = lines[_HEADER_LINES:]
    if not any(line.lower().startswith(("from:", "subject:")) for line in head):
        return None
    raw = "\n".join([*head, "", *lines])
    return email.parser.Parser(policy=email.policy.compat32).parsestr(raw)


def _english(name: str) -> str:
    key = name.strip().casefold()
    if key in _FROM_KEYS:
        return "From"
    if key in _SUBJECT_KEYS:
        return "Subject"
    return name.strip()
