"""What a mail says, as one hash: the same mail re-encoded in transit is the same mail.

MTAs and forwarders re-encode mail (8bit → quoted-printable when the next hop lacks
8BITMIME, CRLF ↔ LF, a re-folded header) and add trace headers; the raw bytes then
differ while the mail is the same. Equal From, Subject, Date and decoded body text
(line endings and trailing spaces normalised), and equal decoded attachments, mean the
same mail. A mail without a Date gets no fingerprint: nothing would tell two
"ping" mails of a monitoring script apart. Pure: imports only ``mailgate.mail``.
"""

from __future__ import annotations

import hashlib
import re

from mailgate.mail.parse import ParsedMail

_TRAILING = re.compile(r"[ \t]+$", re.MULTILINE)
_SPACES = re.compile(r"\s+")


def normalised_text(text: str) -> str:
    """``text`` with CRLF/CR as LF, no trailing spaces on lines, no trailing blank lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _TRAILING.sub("", text).strip("\n")


def content_fingerprint(mail: ParsedMail) -> str:
    """The sha256 of what ``mail`` says; '' when it has no Date."""
    if mail.date is None:
        return ""
    digest = hashlib.sha256()
    sender = mail.sender.email.lower() if mail.sender is not None else mail.from_raw
    for piece in (
        sender,
        _SPACES.sub(" ", mail.subject).strip(),
        mail.date.isoformat(),
        normalised_text(mail.text),
        "" if mail.text.strip() else normalised_text(mail.html),
        *sorted(a.sha256 for a in mail.attachments),
    ):
        digest.update(piece.encode("utf-8", "replace"))
        digest.update(b"\x00")
    return digest.hexdigest()
