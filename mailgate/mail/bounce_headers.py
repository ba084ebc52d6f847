"""Delivery reports, the cheap header test: might this mail be a report at all?

Pure; imports only the standard library and ``mailgate.mail``. Runs on every mail,
so it is substring tests first and anchored expressions after; ``bounces.read_report``
decides for real.
"""

from __future__ import annotations

from collections.abc import Mapping

from mailgate.mail.bounce_dsn import _first_address
from mailgate.mail.bounce_patterns import (
    _BOUNCE_SUBJECT,
    _DAEMON_HINTS,
    _DAEMON_LOCAL,
    _DAEMON_NAME,
    _LEADING_TAGS,
    _MACHINE_LOCAL,
    _SUBJECT_HINTS,
)


def _contains_any(text: str, needles: tuple[str, ...]) -> bool:
    # A plain loop: any() with a generator costs twice as much on this hot path.
    for needle in needles:  # noqa: SIM110
        if needle in text:
            return True
    return False


def is_bounce_subject(subject: str) -> bool:
    """Whether a subject reads like a delivery report's (daemon-written subjects only)."""
    subject = subject[:300].lower()
    if not _contains_any(subject, _SUBJECT_HINTS):
        return False
    return _BOUNCE_SUBJECT.search(subject) is not None


def is_daemon_sender(value: str) -> bool:
    """Whether a From value (address with optional display name) is a delivery system."""
    if not value or not _contains_any(value[:300].lower(), _DAEMON_HINTS):
        return False
    address = _first_address(value)
    local = address.rpartition("@")[0] if "@" in address else address
    if local and _DAEMON_LOCAL.match(local.strip('"')):
        return True
    return _DAEMON_NAME.search(value[:300]) is not None


def looks_like_bounce(headers: Mapping[str, tuple[str, ...]]) -> bool:
    """Cheap header test: might this mail be a delivery or abuse report?

    False positives cost one ``read_report`` call, which decides for real;
    a false negative loses the report, so this errs on the side of yes.
    """
    if "x-failed-recipients" in headers or "x-amz-sns-message-id" in headers:
        return True
    content_type = _first(headers, "content-type").lower()
    if "multipart/report" in content_type:
        return True
    if is_daemon_sender(_first(headers, "from")):
        return True
    subject = _first(headers, "subject")
    if "return-path" in headers and _first(headers, "return-path").replace(" ", "") in ("<>", ""):
        # A null envelope sender: reports and auto-replies. Only when the subject agrees.
        if is_bounce_subject(subject):
            return True
        # A machine sender (no-reply@, system@) under the null sender: read_report
        # decides (it needs a returned message or report words).
        local = _first_address(_first(headers, "from")).rpartition("@")[0]
        if local and _MACHINE_LOCAL.search(local):
            return True
    return _starts_like_report(subject)


def _starts_like_report(subject: str) -> bool:
    """A subject that opens with a report phrase ("Undeliverable: x", "[Postmaster] Email
    Delivery Failure"), unlike a person's "Re: ..." or "my order could not be delivered"."""
    subject = subject[:300].lower()
    if not _contains_any(subject, _SUBJECT_HINTS):
        return False
    subject = _LEADING_TAGS.sub("", subject)
    return bool(subject) and _BOUNCE_SUBJECT.match(subject) is not None


def _first(headers: Mapping[str, tuple[str, ...]], name: str) -> str:
    values = headers.get(name)
    return values[0] if values else ""
