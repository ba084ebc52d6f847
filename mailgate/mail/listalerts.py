"""Mailing-list alerts: "your message awaits moderator approval", "mail loop detected".

Pure; imports only the standard library and ``mailgate.mail``.

A list server that holds, rejects or loops one of our mails writes back to us.
Such an alert is not a person (no ticket, no reopen, no acknowledgement) and not
a delivery failure (the address is fine): ``classify`` gives it the kind
``list_alert``, and ``read_alert`` says which of our mails it is about, so the
core can record it on that ticket. It takes both: list machinery (a list header
or a list-robot sender) and an alert subject.
"""

from __future__ import annotations

import email.message
import re
from collections.abc import Mapping

from mailgate.mail.bounce_dsn import Report, _first_id

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
        (),
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
