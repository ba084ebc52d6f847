"""Subjects: reply/forward prefixes in many languages, our ticket tag, other systems' tags.

Pure: imports only the standard library.

Our tag is ``[PREFIX#NUMBER]``; the prefix is configurable so two helpdesks
that mail each other never take each other's tags for their own. Tags of other
systems (a vendor's ``[Ticket#2026112210000012]``, RT's ``[example.com #123]``)
are recognised only to keep them in our subjects, so the vendor's helpdesk
threads too.
"""

from __future__ import annotations

import re

# Reply and forward prefixes, as mail clients write them in many languages. Each may
# carry a counter ("Re[2]:", "Re^3:") and a normal or full-width colon.
_PREFIX_WORDS = (
    "re",
    "aw",
    "sv",
    "vs",
    "antw",
    "antwort",
    "rif",
    "r",
    "odp",
    "ynt",
    "vá",
    "atb",
    "res",
    "resp",
    "rv",
    "enc",
    "fw",
    "fwd",
    "wg",
    "tr",
    "doorst",
    "vl",
    "pd",
    "továbbítás",
    "továbbítva",
    "přeposlat",
    "trs",
    "πρθ",
    "απ",
    "σχετ",
    "ответ",
    "отв",
    "пересл",
    "回复",
    "回覆",
    "答复",
    "答覆",
    "转发",
    "轉寄",
    "转寄",
    "轉發",
    "返信",
    "転送",
    "회신",
    "전달",
    "ilt",
)
_PREFIX = re.compile(
    r"^\s*(?:(?:"
    + "|".join(sorted({re.escape(w) for w in _PREFIX_WORDS}, key=len, reverse=True))
    + r")\s*(?:\[\d{1,4}\]|\^\d{1,4}|\(\d{1,4}\))?\s*[:：]\s*)+",
    re.IGNORECASE,
)
# Mailing-list style or foreign tags in brackets that carry a number: [Ticket#123], [RT #9].
_FOREIGN_TAG = re.compile(r"\[[^\[\]\r\n]{1,60}?#\s?\d{1,24}\]")


def tag_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(r"\[\s*" + re.escape(prefix) + r"\s*#\s*(\d{1,18})\s*\]", re.IGNORECASE)


def format_tag(prefix: str, number: int) -> str:
    return f"[{prefix}#{number}]"


def find_tag(subject: str, prefix: str) -> int | None:
    """The ticket number of our tag anywhere in the subject, or None."""
    match = tag_pattern(prefix).search(subject)
    return int(match.group(1)) if match else None


def strip_prefixes(subject: str) -> str:
    """``"AW: Fwd: RE[2]: Problem"`` → ``"Problem"``; also behind our or a list tag."""
    return _PREFIX.sub("", " ".join(subject.split()), count=1).strip()


def clean_subject(subject: str, prefix: str) -> str:
    """The subject of a ticket: prefixes, our tag and other systems' tags removed.

    Other systems' tags are kept on the ticket separately (``foreign_tags``) and
    put back into our outbound subjects.
    """
    without_tags = _FOREIGN_TAG.sub(" ", tag_pattern(prefix).sub(" ", subject))
    # A prefix can stand before or after a tag: "Re: [MG#1] Re: x".
    return strip_prefixes(without_tags) or "(no subject)"


def foreign_tags(subject: str, prefix: str) -> list[str]:
    """Tags of other ticket systems in the subject, in order, our own excluded."""
    ours = tag_pattern(prefix)
    return [t for t in _FOREIGN_TAG.findall(subject) if not ours.fullmatch(t)]
