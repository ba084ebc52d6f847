"""A forwarded mail inside an agent's mail: who wrote it, when, what — and the agent's own words.

An agent forwards a customer's mail to a mailbox address to open a ticket *for* that
customer. Clients forward in two ways: the original attached as ``message/rfc822``
(read by the parser like any mail: ``from_attached``), or inline under a header block
(``read_inline``):

=================  =========================================================
client             marker line, then the header block
=================  =========================================================
Gmail              ``---------- Forwarded message ---------`` From/Date/Subject/To
Outlook            ``-----Original Message-----`` (or a line of underscores)
                   From/Sent/To/Subject; ``From: Name [mailto:addr]``
Apple Mail         ``Begin forwarded message:`` From/Subject/Date/To
Thunderbird        ``-------- Forwarded Message --------`` Subject/Date/From/To
=================  =========================================================

Header names in a few languages count too (``Von:``, ``De:``, ``Gesendet:``).
``#requester <address>`` on the first line of the agent's words names the requester
explicitly (``requester_line``). Pure: imports only the standard library and our own
``mail`` values.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from dataclasses import dataclass

from mailgate.mail.parse import Address, ParsedMail

_MARKERS = (
    (re.compile(r"^\s*-{3,}\s*forwarded message\s*-{3,}\s*$", re.I), "forwarded message block"),
    (re.compile(r"^\s*-{3,}\s*original message\s*-{3,}\s*$", re.I), "Outlook original message"),
    (re.compile(r"^\s*begin forwarded message:\s*$", re.I), "Apple Mail forwarded message"),
    (re.compile(r"^\s*-{3,}\s*(?:weitergeleitete nachricht|message transf[ée]r[ée]|"
                r"messaggio inoltrato|mensaje reenviado|urspr[üu]ngliche nachricht|"
                r"message d'origine)\s*-{3,}\s*$", re.I), "forwarded message block"),
    (re.compile(r"^\s*_{20,}\s*$"), "Outlook header block"),
)  # fmt: skip
_FIELDS = {
    "from": "from", "von": "from", "de": "from", "da": "from", "van": "from",
    "date": "date", "sent": "date", "datum": "date", "gesendet": "date", "envoyé": "date",
    "data": "date", "enviado": "date", "fecha": "date",
    "subject": "subject", "betreff": "subject", "objet": "subject", "oggetto": "subject",
    "asunto": "subject", "onderwerp": "subject",
}  # fmt: skip
_HEADER = re.compile(r"^\s*\*?([A-Za-zé]+)\s*:\*?\s*(.*?)\s*$")
_BRACKETED = re.compile(r"^(.*?)<([^<>\s]+@[^<>\s]+)>\s*$")
_MAILTO = re.compile(r"\[mailto:([^\]]+)\]", re.I)
_REQUESTER = re.compile(r"^\s*#requester\s+<?([^\s<>@]+@[^\s<>@]+\.[^\s<>@]+)>?\s*$", re.I)
_DATE_FORMATS = (
    "%a, %b %d, %Y at %I:%M %p",  # Gmail: Mon, Nov 23, 2026 at 9:12 AM
    "%A, %B %d, %Y %I:%M %p",  # Outlook: Monday, November 23, 2026 9:12 AM
    "%d %B %Y at %H:%M:%S",  # Apple Mail: 23 November 2026 at 09:12:00 (zone dropped)
    "%d %B %Y at %H:%M",
    "%B %d, %Y at %I:%M:%S %p",
    "%Y-%m-%d %H:%M",
)


@dataclass(frozen=True)
class Forward:
    """The forwarded mail: its sender, date, subject and text, and the forwarder's words."""

    sender: Address
    date: dt.datetime | None
    subject: str
    text: str
    preface: str  # what the forwarder wrote above the forwarded mail
    how: str  # where it was found, for the decision trace


def requester_line(text: str) -> tuple[str, str]:
    """``#requester <address>`` on the first line: (the address, the text without it)."""
    lines = text.lstrip("\n").splitlines()
    if lines and (match := _REQUESTER.match(lines[0])):
        return match.group(1).lower(), "\n".join(lines[1:]).strip("\n")
    return "", text


def from_attached(inner: ParsedMail, preface: str) -> Forward | None:
    """The forward of a ``message/rfc822`` attachment, as the parser read it."""
    if inner.sender is None:
        return None
    return Forward(
        inner.sender, inner.date, inner.subject, inner.text.strip(), preface.strip(),
        "attached message/rfc822",
    )  # fmt: skip


def read_inline(text: str) -> Forward | None:
    """The first forwarded header block in ``text`` with a usable From, or None."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        how = next((name for pattern, name in _MARKERS if pattern.match(line)), None)
        if how is None:
            continue
        found = _block(lines, index + 1)
        if found is None:
            continue
        fields, body_start = found
        sender = _address(fields.get("from", ""))
        if sender is None:
            continue
        return Forward(
            sender=sender,
            date=_date(fields.get("date", "")),
            subject=fields.get("subject", ""),
            text="\n".join(_unquoted(lines[body_start:])).strip("\n"),
            preface="\n".join(lines[:index]).strip(),
            how=f"inline {how}",
        )
    return None


def _block(lines: list[str], start: int) -> tuple[dict[str, str], int] | None:
    """The header fields after a marker (blank lines skipped) and where the body starts."""
    at = start
    while at < len(lines) and not _strip_quote(lines[at]).strip():
        at += 1
    fields: dict[str, str] = {}
    while at < len(lines):
        line = _strip_quote(lines[at])
        if not line.strip():
            break
        match = _HEADER.match(line)
        if match is None:
            if not fields:
                return None
            break
        name = _FIELDS.get(match.group(1).lower())
        if name is not None and name not in fields:
            fields[name] = match.group(2)
        at += 1
    return (fields, at) if "from" in fields else None


def _address(value: str) -> Address | None:
    value = _MAILTO.sub(lambda m: f"<{m.group(1)}>", value)
    bracketed = _BRACKETED.match(value)  # "Rossi, Carla <addr>": the comma is no list
    if bracketed:
        name, addr = bracketed.group(1).strip(), bracketed.group(2).strip()
    else:
        name, addr = email.utils.parseaddr(value)
    if "@" not in addr:
        return None
    return Address(addr.lower(), name.strip().strip('"'))


def _date(value: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        parsed = None
    value = value.replace("\u202f", " ").strip()  # newer Gmail: a narrow space before AM
    # As written, then without a trailing zone name ("CET"; its offset is unknown).
    for text in (value, re.sub(r"\s+(?!AM$|PM$)[A-Z]{2,5}$", "", value)):
        for fmt in _DATE_FORMATS:
            if parsed is not None:
                break
            try:
                parsed = dt.datetime.strptime(text, fmt)
            except ValueError:
                continue
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def _strip_quote(line: str) -> str:
    return line[1:].lstrip(" ") if line.startswith(">") else line


def _unquoted(lines: list[str]) -> list[str]:
    """The forwarded body; ``> `` taken off when a client quoted all of it."""
    content = [line for line in lines if line.strip()]
    if content and all(line.startswith(">") for line in content):
        return [_strip_quote(line) for line in lines]
    return lines
