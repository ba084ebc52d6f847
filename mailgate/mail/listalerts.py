"""Mailing-list alerts: "your message awaits moderator approval", "mail loop detected".

Pure; imports only the standard library and ``mailgate.mail``.

A list server that holds, rejects or loops one of our mails writes back to us.
Such an alert is not a person (no ticket, no reopen, no acknowledgement) and not
a delivery failure (the address is fine): ``classify`` gives it the kind
``list_alert``, and ``read_alert`` says which of our mails it is about, so the
core can record it on that ticket. It takes both: list machinery (a list header
or a list-robot sender) and an alert subject.

The alert's one recipient is the list that refused or held our mail: the address
the notice's own text names ("You are not a member of this mailing list <x>"),
else the list's List-Post, else where the returned original was going. A refusal
("not a member", "rejected", a loop) is final for that mail, a hold is a wait; the
list's address is never a bad address, and the core never marks it undeliverable.
"""

from __future__ import annotations

import email.message
import re
from collections.abc import Mapping

from mailgate.mail.bounce_dsn import (
    FailedRecipient,
    Report,
    _addresses_in,
    _first_id,
    _normalise_address,
)
from mailgate.mail.bounce_parts import _attached_headers, _leaf_text
from mailgate.mail.bounce_text import _split_original

# Headers only list servers write.
LIST_HEADERS = (
    "list-id", "x-mailman-version", "x-mlserver", "mailing-list", "x-list-administrivia",
    "x-ml-name", "x-sympa-to", "x-ezmlm-version", "x-google-group-id", "x-listserver",
)  # fmt: skip
# Local parts of list robots (Mailman, Sympa, ezmlm, fml, LISTSERV, Majordomo, Groups).
_LIST_SENDER = re.compile(
    r"(?:^|[._+-])(?:owner|bounces?|request|admin|ctl|mailman|listserv|majordomo|sympa"
    r"|ezmlm|moderators?|noreply-groups?)(?:$|[._+-])|^owner-",
    re.IGNORECASE,
)
# Subjects of hold, moderation, rejection and loop notices, in the list servers' words.
_ALERT_SUBJECT = re.compile(
    r"awaits? moderator approval|awaiting moderat|held for (?:moderat|approval)"
    r"|requires? (?:moderator )?approval|needs? approval|pending (?:moderat|approval)"
    r"|moderation (?:request|notice|required)|has been forwarded to (?:the )?(?:editor|moderator)"
    r"|(?:mail|message|e-?mail) loop|loop detected|looping message"
    r"|not (?:a )?member|are not member|non-?member|not subscribed|posting (?:is )?restricted"
    r"|rejected (?:by|from) (?:the )?(?:list|moderator)|posting to .{1,80} (?:rejected|held)"
    r"|auto-?discard|message (?:was )?discarded"
    r"|wartet auf (?:die )?freigabe|en attente de modération|en espera de moderación",
    re.IGNORECASE,
)
_MAX_PARTS = 50
# What the alert means for our mail, by its phrase: a loop and a refusal are final for
# that mail (RFC 3463 X.4.6 "routing loop detected", X.7.1 "delivery not authorized,
# message refused"); anything else is a hold, a wait (the moderator may still let it
# through). Refusal first: "rejected by the moderator" is not a hold.
_LOOP = re.compile(r"loop", re.IGNORECASE)
_REFUSED = re.compile(r"reject|discard|member|subscribed|restricted", re.IGNORECASE)
# Addresses of the list's robots and people, never the list the mail was posted to.
_NOT_THE_LIST = re.compile(
    r"(?:^|[._+-])(?:owner|bounces?|request|admin|ctl|help|mailman|listserv|majordomo"
    r"|sympa|ezmlm|moderators?|noreply(?:-groups?)?|postmaster|mailer-daemon)(?:$|[._+-])"
    r"|^owner-",
    re.IGNORECASE,
)
_OURS = ("to", "cc", "delivered-to", "x-original-to", "envelope-to", "return-path")
_NOTICE_LIMIT = 20_000


def is_list_machinery(headers: Mapping[str, tuple[str, ...]], sender: str) -> bool:
    if any(name in headers for name in LIST_HEADERS):
        return True
    local = sender.rpartition("@")[0].strip('"<')
    return bool(local) and _LIST_SENDER.search(local[:200]) is not None


def alert_reason(subject: str) -> str:
    """The alert phrase of a subject, or ''."""
    match = _ALERT_SUBJECT.search(subject[:300])
    return match.group(0) if match else ""


def read_alert(
    message: email.message.Message, headers: Mapping[str, tuple[str, ...]], sender: str
) -> Report | None:
    """The list alert ``message`` is (as a report about our mail), or None."""
    subject = (headers.get("subject") or ("",))[0]
    reason = alert_reason(subject)
    if not reason or not is_list_machinery(headers, sender):
        return None
    return Report(
        "list_alert",
        _the_list(message, headers, sender, reason),
        _original_id(message, headers),
        "",
        "",
        f"mailing-list alert: {reason}",
    )


def _original_id(message: email.message.Message, headers: Mapping[str, tuple[str, ...]]) -> str:
    """Our mail the alert is about: the attached original, else In-Reply-To/References."""
    for count, part in enumerate(message.walk()):
        if count > _MAX_PARTS:
            break
        if part.get_content_type() in ("message/rfc822", "text/rfc822-headers"):
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], email.message.Message):
                found = _first_id(str(inner[0].get("Message-ID", "") or ""))
                if found:
                    return found
    in_reply_to = (headers.get("in-reply-to") or ("",))[0]
    references = (headers.get("references") or ("",))[0].split()
    return _first_id(in_reply_to) or (_first_id(references[-1]) if references else "")


def _the_list(
    message: email.message.Message,
    headers: Mapping[str, tuple[str, ...]],
    sender: str,
    reason: str,
) -> tuple[FailedRecipient, ...]:
    """The list that refused or held our mail, as the alert's one recipient (or none)."""
    notice, original = _notice_and_original(message)
    ours = {sender.lower()}
    for name in _OURS:
        for value in headers.get(name, ()):
            ours.update(a.lower() for a in map(_normalise_address, _addresses_in(value)))
    if original is not None:
        for value in original.get_all("From", []) or []:
            ours.update(a.lower() for a in map(_normalise_address, _addresses_in(str(value))))
    candidates = _addresses_in(_split_original(notice)[0])
    candidates += _addresses_in(" ".join(headers.get("list-post", ())))
    if original is not None:
        for name in ("To", "Cc"):
            candidates += _addresses_in(" ".join(str(v) for v in original.get_all(name, []) or []))
    address = next((a for a in map(_normalise_address, candidates) if _is_list(a, ours)), "")
    if not address:
        return ()
    if _LOOP.search(reason):
        action, status = "failed", "5.4.6"
    elif _REFUSED.search(reason):
        action, status = "failed", "5.7.1"
    else:
        action, status = "delayed", "4.0.0"
    diagnostic = f"mailing list: {reason}"
    recipient = FailedRecipient(
        address=address,
        status=status,
        action=action,
        diagnostic=diagnostic,
        permanent=action == "failed",
    )
    return (recipient,)


def _is_list(address: str, ours: set[str]) -> bool:
    local = address.rpartition("@")[0]
    return bool(local) and address.lower() not in ours and not _NOT_THE_LIST.search(local)


def _notice_and_original(
    message: email.message.Message,
) -> tuple[str, email.message.Message | None]:
    """The alert's own text (its first text/plain part, not inside a returned original)
    and the headers of the returned original, if any."""
    notice = ""
    original = None
    stack = [message]
    seen = 0
    while stack and seen < _MAX_PARTS:
        part = stack.pop()
        seen += 1
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global"):
            original = original or _attached_headers(part)
        elif part.is_multipart():
            children = part.get_payload()
            if isinstance(children, list):
                parts = [c for c in children if isinstance(c, email.message.Message)]
                stack.extend(reversed(parts))
        elif ctype == "text/plain" and not notice:
            notice = _leaf_text(part)[:_NOTICE_LIMIT]
    return notice, original
