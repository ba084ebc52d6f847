"""Delivery reports, the fields: RFC 3464 delivery-status blocks, and permanence.

Pure; imports only the standard library and ``mailgate.mail``. Also the values
(``Report``, ``FailedRecipient``) and the small helpers every reader shares.
"""

from __future__ import annotations

import email.message
import email.parser
import email.policy
import re
from dataclasses import dataclass
from typing import Literal

from mailgate.mail.bounce_patterns import (
    _BAD_ADDRESS_STATUS,
    _BAD_ADDRESS_WORDS,
    _NOT_RECIPIENT_LINE,
    _SENDER_STATUS,
    _STATUS_WORDS,
)
from mailgate.mail.charsets import decode_header

# "list_alert": a mailing list held, rejected or looped our mail (``mail.listalerts``).
ReportKind = Literal["bounce", "delay", "delivered", "feedback", "auto_reply", "list_alert"]


# The status of a final report that the sending MTA gave up after retrying for days,
# when the report gives none of its own: RFC 3463 4.4.7 "delivery time expired". Class 4
# by the RFC's own definition ("persistence of some temporary condition has caused
# abandonment ... of attempts"): the mail came back, but nothing says the address is
# bad, so it is never permanent and never marks the address undeliverable.
GAVE_UP_STATUS = "4.4.7"

# Only the first 200 KB of report text are read: real reports are a few KB, the rest
# of a huge "bounce" is the returned original or an attack.
_TEXT_LIMIT = 200_000
_MAX_PARTS = 200
_MAX_DEPTH = 20
_MAX_LINE = 1000
_MAX_RECIPIENTS = 100
_DIAGNOSTIC_LIMIT = 500
# A recipient's explanation follows it within a few lines (Exim, qmail, Domino).
_WINDOW = 12


# Lines of report prose analysed; a report's own text is a few dozen lines, so this only
# bounds the per-recipient scans (recipients x lines) of hostile input.
_MAX_LINES = 5000
# Whole-text phrase searches only look at the start of the report prose.
_PROSE_LIMIT = 30_000
# Lines mentioning one address that are searched for its SMTP answer.
_MAX_MENTIONS = 20
# Address matches looked at in a report text.
_MAX_MATCHES = 2000


@dataclass(frozen=True)
class FailedRecipient:
    """One recipient a report speaks about (failed, delayed, or, rarely, delivered)."""

    address: str  # as in the report, domain lowercased
    status: str = ""  # RFC 3463 status "5.1.1"; derived from the reply code or text when absent
    action: str = ""  # failed | delayed | delivered | relayed | expanded | ""
    diagnostic: str = ""  # the remote server's answer, one line, at most 500 characters
    permanent: bool = False  # a 5.x.x failure: retrying the same mail will not help
    reply_code: str = ""  # SMTP reply code "550" when known
    remote_mta: str = ""  # the host that refused, when the report names it
    # The address itself is bad (no such user or domain, moved, accepts no mail), as
    # opposed to a policy, content or capacity failure that says nothing about it.
    bad_address: bool = False


@dataclass(frozen=True)
class Report:
    """What a delivery report or abuse report says about one of our mails."""

    kind: ReportKind
    recipients: tuple[FailedRecipient, ...] = ()
    original_message_id: str = ""  # "<id@host>" of our message that the report is about
    reporting_mta: str = ""
    feedback_type: str = ""  # ARF Feedback-Type ("abuse", "fraud", ...) for kind "feedback"
    source: str = ""  # what the report was read from, for decision traces
    # Forwarded (or quoted) by a person: information for the agent, never a bounce.
    forwarded: bool = False

    @property
    def permanent(self) -> bool:
        """True when at least one recipient failed permanently."""
        return any(r.permanent for r in self.recipients)


_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9-]{0,60})[ \t]*:[ \t]?(.*)$")


_FIELD_START = re.compile(
    r"(?:reporting-mta|final-recipient|original-recipient|received-from-mta|arrival-date"
    r"|original-envelope-id|action|status)\s*:",
    re.IGNORECASE,
)


_FIELD_IN_TEXT = re.compile(r"(?im)^[ \t]*(?:final|original)-recipient[ \t]*:")


_RECIPIENT_KEYS = ("final-recipient", "original-recipient", "x-actual-recipient")


_PER_MESSAGE = frozenset(
    {
        "reporting-mta",
        "received-from-mta",
        "arrival-date",
        "original-envelope-id",
        "x-postfix-queue-id",
        "x-postfix-sender",
        "dsn-gateway",
        "x-original-message-id",
        "original-message-id",
    }
)


def _fields(text: str) -> list[tuple[str, str]]:
    """(lowercased name, value) pairs of an RFC 822-style field block, folded lines joined."""
    result: list[tuple[str, str]] = []
    for line in text[:_TEXT_LIMIT].splitlines():
        line = line[:_MAX_LINE]
        if line[:1] in (" ", "\t") and result:
            name, value = result[-1]
            result[-1] = (name, f"{value} {line.strip()}")
            continue
        match = _FIELD.match(line)
        if match:
            result.append((match.group(1).lower(), match.group(2).strip()))
        elif not line.strip():
            result.append(("", ""))  # block boundary
    return result


def _dsn_records(text: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Per-message fields and per-recipient records of a delivery-status text.

    A record starts at a Final-/Original-Recipient field: blank lines between
    recipients are often missing (Exchange, Amazon), and some MTAs put every
    field in one block.
    """
    per_message: dict[str, str] = {}
    records: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for name, value in _fields(text):
        if not name:
            if current:
                records.append(current)
            current = None
            continue
        if name in _PER_MESSAGE and current is None:
            per_message.setdefault(name, value)
            continue
        if name in _RECIPIENT_KEYS:
            if current is not None and name in current:
                records.append(current)
                current = None
            if current is None:
                current = {}
        if current is None:
            if name not in ("action", "status", "diagnostic-code", "remote-mta"):
                continue
            current = {}
        current.setdefault(name, value)
        if len(records) > _MAX_RECIPIENTS:
            break
    if current:
        records.append(current)
    return per_message, [r for r in records if any(k in r for k in _RECIPIENT_KEYS)]


def _dsn_recipient(
    record: dict[str, str], lines: list[str], lowered: list[str]
) -> FailedRecipient | None:
    # Final-Recipient may be a source route or a local name ("@relay:user@server"):
    # the first field holding a usable address wins.
    candidates = [_after_type(record[k]) for k in _RECIPIENT_KEYS if record.get(k)]
    address = next((a for a in map(_normalise_address, candidates) if "@" in a), "")
    if not address:
        address = next((a for a in map(_normalise_address, candidates) if a), "")
    if not address:
        return None
    action = _normalise_action(record.get("action", ""))
    diagnostic = _one_line(_after_type(record.get("diagnostic-code", "")))
    status = _status_in(record.get("status", ""))
    detailed = _status_in(diagnostic)
    if detailed and (not status or (status.endswith(".0.0") and detailed[0] == status[0])):
        # "Status: 5.0.0" with "550 5.1.1 user unknown": the remote server knew better.
        status = detailed
    reply_code = _reply_code_in(diagnostic)
    if not diagnostic or not reply_code:
        # Some reports leave the SMTP answer to the human-readable part.
        window = _text_window_for(address, lines, lowered)
        if not diagnostic:
            diagnostic = window
        if not reply_code:
            reply_code = _reply_code_in(window)
        if not status:
            status = _status_in(window)
    if not status and reply_code:
        status = f"{reply_code[0]}.0.0"
    if not status and action == "failed":
        status = _status_from_text(diagnostic, "5")
    if not status and record.get("action", "").strip().lower().startswith("expired"):
        status = GAVE_UP_STATUS
    if status.endswith(".0.0"):
        refined = _status_from_text(diagnostic, status[0])
        if refined:
            status = refined
    final = action not in ("delayed", "delivered", "relayed", "expanded")
    permanent = final and status.startswith("5")
    return FailedRecipient(
        address=address,
        status=status,
        action=action,
        diagnostic=diagnostic[:_DIAGNOSTIC_LIMIT],
        permanent=permanent,
        reply_code=reply_code,
        remote_mta=_after_type(record.get("remote-mta", ""))[:255],
        bad_address=permanent and _bad_address(status, diagnostic),
    )


def _normalise_action(value: str) -> str:
    word = (value.split() or [""])[0].strip(";,.()").lower()
    return {
        "failure": "failed",
        "fail": "failed",
        "delay": "delayed",
        "deliver": "delivered",
        "relay": "relayed",
        "expand": "expanded",
        # Not an RFC 3464 action, but written by some MTAs for "retried until it expired".
        "expired": "failed",
    }.get(word, word)


def _kind(recipients: list[FailedRecipient], delay_cues: bool) -> ReportKind:
    actions = {r.action for r in recipients}
    if actions and actions <= {"delivered", "relayed", "expanded"}:
        return "delivered"
    if any(r.action == "failed" or (not r.action and r.status.startswith("5")) for r in recipients):
        return "bounce"
    if "delayed" in actions:
        return "delay"
    # No Action field: a 4.x.x status is a delay only when the report says so.
    if any(r.status.startswith("4") for r in recipients) and delay_cues:
        return "delay"
    return "bounce"


def _after_type(value: str) -> str:
    """Drop a type prefix: 'rfc822; a@b' -> 'a@b', 'dns; mx.example.org' -> 'mx.example.org'."""
    value = value.strip()
    head, sep, tail = value.partition(";")
    if sep and "@" not in head and " " not in head.strip() and len(head) <= 20:
        return tail.strip()
    return value


def _lines(text: str) -> list[str]:
    return [line[:_MAX_LINE] for line in text[:_TEXT_LIMIT].splitlines()[:_MAX_LINES]]


# A quoted local part ("john doe"@example.com) is one address and stays quoted.
_ADDRESS = re.compile(
    r"(?:\"[^\"\r\n\\]{1,64}\"|[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64})"
    r"@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8}",
    re.ASCII,
)
_QUOTED_ADDRESS = re.compile(r"\"[^\"\r\n\\]{1,64}\"@[^\s<>()\[\],;:\"'@]{1,255}")


_CODE = re.compile(r"(?<![\w.#/=-])(?<!\d:)([245][0-5][0-9])(?=[\s\-:,;)\]]|$)")


# In a failure text only a failure reply is the answer ("250 ok" lines are transcript).
_FAILURE_CODE = re.compile(r"(?<![\w.#/=-])(?<!\d:)([45][0-5][0-9])(?=[\s\-:,;)\]]|$)")


_STATUS = re.compile(r"(?<![\w.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d]|\.\d)")


_FAILURE_STATUS = re.compile(r"(?<![\w.])([45])\.(\d{1,3})\.(\d{1,3})(?![\d]|\.\d)")


def _diagnose(
    lines: list[str], address: str, others: frozenset[str] = frozenset()
) -> tuple[str, str, str]:
    """(diagnostic line, reply code, status) from the first line that carries a failure answer.

    Stops where the block of another recipient (one of ``others``) starts.
    """
    needle = address.lower()
    for index, line in enumerate(lines):
        if index and others and "@" in line:
            lowered = line.lower()
            if needle not in lowered and any(other in lowered for other in others):
                break
        if index and _NOT_RECIPIENT_LINE.match(line):
            continue
        rest = _ADDRESS.sub(" ", line)
        status_match = _FAILURE_STATUS.search(rest)
        status = ".".join(status_match.groups()) if status_match else ""
        codes = _FAILURE_CODE.findall(rest)
        if not codes and not status:
            continue
        # "220-mx 421 4.2.1 ...": the reply code is the one that agrees with the status.
        code = next((c for c in codes if not status or c[0] == status[0]), "")
        # Multi-line answers ("550-5.7.26 ...") continue on the next lines.
        text = line.strip()
        for follow in lines[index + 1 : index + 4]:
            stripped = follow.strip()
            if not stripped or not code or not stripped.startswith(code):
                break
            text += " " + stripped[4:].strip()
        return text, code, status
    return "", "", ""


def _reply_code_in(text: str) -> str:
    match = _CODE.search(_ADDRESS.sub(" ", text[: _MAX_LINE * 2]))
    return match.group(1) if match else ""


def _status_in(text: str) -> str:
    match = _STATUS.search(text[: _MAX_LINE * 2])
    return ".".join(match.groups()) if match else ""


def _text_window_for(address: str, lines: list[str], lowered: list[str]) -> str:
    """The SMTP answer a report's human-readable part gives for ``address``, if any."""
    needle = address.lower()
    tried = 0
    for number, line in enumerate(lowered):
        if needle in line:
            diagnostic, _code, _status = _diagnose(lines[number : number + _WINDOW], address)
            tried += 1
            if diagnostic or tried >= _MAX_MENTIONS:
                return diagnostic
    return ""


def _status_from_text(text: str, status_class: str) -> str:
    """A status derived from the words of a diagnostic ('' when they say nothing known)."""
    if not text:
        return ""
    text = text[:4000]
    for pattern, detail in _STATUS_WORDS:
        if pattern.search(text):
            if detail == "4.7":
                # Expiry words next to a 5xx answer describe the retries, not the failure.
                if status_class == "5":
                    continue
                return "4.4.7"
            return f"{status_class}.{detail}"
    return ""


def _bad_address(status: str, diagnostic: str) -> bool:
    if not status.startswith("5") or _SENDER_STATUS.match(status):
        return False
    if _BAD_ADDRESS_STATUS.match(status):
        return True
    return bool(_BAD_ADDRESS_WORDS.search(diagnostic[:2000]))


_ANGLE_ID = re.compile(r"<([^<>\s]{1,900})>")


def _first_id(value: str) -> str:
    match = _ANGLE_ID.search(value[:4000])
    if match:
        return f"<{match.group(1)}>"
    bare = value.strip()
    if bare and "@" in bare and " " not in bare and len(bare) < 900:
        return f"<{bare.strip('<>')}>"
    return ""


# Internationalised (SMTPUTF8) addresses, for fields that are known to hold one address.
_ANY_ADDRESS = re.compile(r"[^\s<>()\[\],;:\"'@]{1,64}@[^\s<>()\[\],;:\"'@]{1,255}")


def _first_address(value: str) -> str:
    match = _ADDRESS.search(value[:2000])
    return match.group(0) if match else ""


def _addresses_in(value: str) -> list[str]:
    return [m.group(0) for m in _ADDRESS.finditer(value[:20_000])]


def _normalise_address(value: str) -> str:
    """'<Bob@Example.ORG>' -> 'Bob@example.org'; '' when there is no address."""
    quoted = _QUOTED_ADDRESS.search(value[:1000])
    if quoted:
        local, _, domain = quoted.group(0).rpartition("@")
        domain = domain.strip(".->").lower()
        return f"{local}@{domain}" if "." in domain else ""
    value = value.strip().strip("<>\"' \t").strip()
    value = value[:1000]
    # An internationalised local part ("müller@") must not lose its non-ASCII head.
    match = (None if value.isascii() else _ANY_ADDRESS.search(value)) or _ADDRESS.search(value)
    if not match:
        return value.lower()[:320] if value and "@" not in value and " " not in value else ""
    local, _, domain = match.group(0).rpartition("@")
    local = local.lstrip(".'\"`")
    domain = domain.strip(".-").lower()
    if not local or "." not in domain or not any(c.isalpha() for c in domain.rsplit(".", 1)[-1]):
        return ""
    return f"{local}@{domain}"


def _headers(message: email.message.Message, name: str) -> list[str]:
    """Decoded values of a header. compat32 hands out Header objects for raw 8-bit values,
    whose str() is replacement characters: read the raw value and decode it ourselves."""
    name = name.lower()
    return [decode_header(str(value)) for key, value in message.raw_items() if key.lower() == name][
        :50
    ]


def _header(message: email.message.Message | None, name: str) -> str:
    if message is None:
        return ""
    values = _headers(message, name)
    return values[0].strip() if values else ""


def _one_line(text: str) -> str:
    return " ".join(text.split())
