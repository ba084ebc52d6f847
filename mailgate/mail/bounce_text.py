"""Delivery reports, free text: MTAs that never learnt RFC 3464 (Exim, qmail, Domino...).

The failed addresses are the ones the report text puts in a recipient position,
and their SMTP reply codes the ones that follow them. Pure; imports only the
standard library and ``mailgate.mail``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailgate.mail.bounce_dsn import (
    _ADDRESS,
    _CODE,
    _DIAGNOSTIC_LIMIT,
    _MAX_LINES,
    _MAX_MATCHES,
    _MAX_MENTIONS,
    _MAX_RECIPIENTS,
    _TEXT_LIMIT,
    _WINDOW,
    GAVE_UP_STATUS,
    FailedRecipient,
    _bad_address,
    _diagnose,
    _normalise_address,
    _one_line,
    _status_from_text,
)
from mailgate.mail.bounce_patterns import (
    _CONTACT,
    _HEADER_BLOCK_START,
    _HEADERISH_LINE,
    _NOT_RECIPIENT_LINE,
    _ORIGINAL_MARKER,
    _RECIPIENT_CUE,
    _SENDER_BEFORE,
)


def _split_original(text: str) -> tuple[str, str]:
    """(report part, returned original) of a text report."""
    position = 0
    for line in text.splitlines(keepends=True):
        head = line[:200]
        if _ORIGINAL_MARKER.match(head) or _HEADER_BLOCK_START.match(head):
            return text[:position], text[position:]
        position += len(line)
    return text, ""


_MESSAGE_ID_LINE = re.compile(
    r"^[ \t>]*Message-ID[ \t]*:[ \t]*(?:\r?\n[ \t]+)?(<[^<>\s]{1,900}>)",
    re.IGNORECASE | re.MULTILINE,
)


def _quoted_message_id(text: str) -> str:
    match = _MESSAGE_ID_LINE.search(text[:_TEXT_LIMIT])
    return match.group(1) if match else ""


def _quoted_header(text: str, name: str) -> str:
    pattern = re.compile(rf"^[ \t>]*{re.escape(name)}[ \t]*:[ \t]*(.{{1,900}})$", re.I | re.M)
    match = pattern.search(text[:_TEXT_LIMIT])
    return match.group(1) if match else ""


_LETTERS = re.compile(r"[^\W\d_]+")


def _text_recipients(lines: list[str], reporter: set[str], own: set[str]) -> dict[str, int]:
    """Failed addresses in a report text, in order, with the line each first appears on.

    An address is a recipient when its line is about delivery (a code, a recipient
    word) or holds little else; addresses after "from"/"sender", in contact prose
    or in header-like lines count only when nothing better is found.
    """
    strong: dict[str, int] = {}
    own_strong: dict[str, int] = {}
    weak: dict[str, int] = {}
    own = own | _senders_named(lines)
    budget = _MAX_MATCHES
    for number, line in enumerate(lines):
        if "@" not in line or _NOT_RECIPIENT_LINE.match(line):
            continue
        matches = list(_ADDRESS.finditer(line))
        if not matches:
            continue
        budget -= len(matches)
        if budget < 0:
            break
        headerish = bool(_HEADERISH_LINE.match(line))
        contact = bool(_CONTACT.search(line))
        rest = _ADDRESS.sub(" ", line).replace("mailto:", " ")
        address_only = sum(len(w) for w in _LETTERS.findall(rest)) <= 20
        cue = bool(_RECIPIENT_CUE.search(rest)) or bool(_CODE.search(rest))
        for match in matches:
            address = _normalise_address(match.group(0))
            if not address or address in reporter or address in strong:
                continue
            if _SENDER_BEFORE.search(line[max(0, match.start() - 40) : match.start()]):
                continue
            if contact and not cue:
                continue
            if headerish or not (address_only or cue):
                weak.setdefault(address, number)
            elif contact and _CONTACT.search(line[max(0, match.start() - 60) : match.start()]):
                continue
            elif address in own:
                own_strong.setdefault(address, number)
            else:
                strong[address] = number
                weak.pop(address, None)
            if len(strong) >= _MAX_RECIPIENTS:
                return strong
    return strong or own_strong or {a: n for a, n in weak.items() if a not in own}


def _senders_named(lines: list[str]) -> set[str]:
    """Addresses the text names as the envelope sender ("MAIL FROM:<x>", "from x")."""
    senders: set[str] = set()
    for line in lines[:_MAX_LINES]:
        if "@" not in line:
            continue
        for match in _ADDRESS.finditer(line):
            before = line[max(0, match.start() - 40) : match.start()]
            if _SENDER_BEFORE.search(before) or "sender address" in line.lower():
                senders.add(_normalise_address(match.group(0)))
        if len(senders) > _MAX_RECIPIENTS:
            break
    return senders


def _text_recipient(
    address: str,
    line_no: int,
    lines: list[str],
    lowered: list[str],
    others: frozenset[str],
    cues: _Cues,
) -> FailedRecipient:
    block = _block(lines, line_no, address, others) if line_no >= 0 else []
    diagnostic, code, status = _diagnose(block, address, others)
    if not code and not status:
        # The address's own later lines (Sendmail transcripts), else, for a single
        # recipient, the report's first SMTP answer anywhere (MailMarshal puts it first).
        needle = address.lower()
        mentioning = [lines[i] for i, line in enumerate(lowered) if needle in line]
        mentioning = mentioning[:_MAX_MENTIONS]
        found = _diagnose(mentioning, address)
        if not found[0] and not others:
            found = _diagnose(lines, address)
        if found[0]:
            diagnostic, code, status = found
    if not diagnostic and block:
        diagnostic = _explanation(block)
    # Words for a status: the SMTP answer itself when there is one, else the whole block.
    words = diagnostic if (code or status) else (" ".join(block) if block else diagnostic)
    if not status and code:
        status = f"{code[0]}.0.0"
    if not status or status.endswith(".0.0"):
        status_class = status[:1] or (
            "5" if cues.permanent or not (cues.gave_up or cues.delay) else "4"
        )
        refined = _status_from_text(words, status_class)
        if not refined and not others:
            # One recipient: the report's explanation may precede the address (EZweb).
            refined = _status_from_text("\n".join(lines[:200]), status_class)
        if refined:
            status = refined
    if not status:
        if cues.gave_up:
            status = GAVE_UP_STATUS
        elif cues.delay and not cues.permanent:
            status = "4.0.0"
        elif cues.failure or cues.permanent:
            # A final failure notice that gives no reason: RFC 3464 "failed" is permanent.
            status = "5.0.0"
    delayed = cues.delay and not cues.permanent and not cues.gave_up and status[:1] != "5"
    action = "delayed" if delayed else "failed"
    permanent = action == "failed" and status.startswith("5")
    return FailedRecipient(
        address=address,
        status=status,
        action=action,
        diagnostic=_one_line(diagnostic)[:_DIAGNOSTIC_LIMIT],
        permanent=permanent,
        reply_code=code,
        bad_address=permanent and _bad_address(status, diagnostic or words),
    )


@dataclass(frozen=True)
class _Cues:
    """What the report text says as a whole."""

    failure: bool  # failure words ("could not be delivered")
    permanent: bool  # "This is a permanent error"
    gave_up: bool  # retried until it expired: final, but not the address's fault
    delay: bool  # a warning: still being retried


def _block(lines: list[str], line_no: int, address: str, others: frozenset[str]) -> list[str]:
    """The lines about one recipient: from its line until another recipient's, at most _WINDOW."""
    needle = address.lower()
    block = [lines[line_no]]
    for line in lines[line_no + 1 : line_no + _WINDOW]:
        lowered = line.lower()
        if "@" in line and needle not in lowered and any(o in lowered for o in others):
            break
        block.append(line)
    return block


def _explanation(block: list[str]) -> str:
    """The words explaining a failure without an SMTP code: the rest of the address line or
    the next non-empty line (Exim "Unrouteable address", Domino "because: ...")."""
    rest = _ADDRESS.sub(" ", block[0]).strip(" \t<>:()[]\"'-")
    if len(_LETTERS.findall(rest)) >= 2:
        return rest
    for line in block[1:6]:
        stripped = line.strip()
        if not stripped or stripped.lower().startswith(("because", "for the following reason")):
            continue
        return stripped
    return ""
