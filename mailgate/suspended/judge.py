"""Is a mail for the suspended queue? A trusted filter's spam verdict, or a blocked sender.

Spam headers count only on mail that came through the MTA (pipe, LMTP, IMAP) and only
with ``spam.trust_headers``: a sender who writes such a header can at worst get their
own mail suspended. ``spam.block`` (addresses or domains) suspends whatever the score.
A participant's reply on an existing ticket is never suspended by a score alone below
``spam.hard_threshold`` — customers' real replies get false positives: it is appended
and flagged (the plan decides that; this says how bad it is). Only reads.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailgate.config import Config
from mailgate.envelope import Envelope
from mailgate.mail.parse import Address, ParsedMail
from mailgate.mail.spam import read_spam_headers


@dataclass(frozen=True)
class Suspicion:
    """Why a mail looks unwanted: the reason for the queue, its score, how sure we are."""

    reason: str
    score: float | None
    hard: bool  # blocked, or above spam.hard_threshold: even a participant's reply waits


def judge(
    config: Config, mail: ParsedMail, envelope: Envelope, sender: Address | None
) -> Suspicion | None:
    """The suspicion against ``mail``, or None when it is welcome."""
    spam = config.spam
    if sender is not None and _blocked(sender.email, spam.block):
        return Suspicion(f"blocked sender {sender.email} (spam.block)", None, True)
    if not spam.trust_headers or not envelope.via_mta:
        return None
    reading = read_spam_headers(mail.headers)
    if reading is None or not reading.is_spam(spam.threshold):
        return None
    hard = reading.score is not None and reading.score >= spam.hard_threshold
    return Suspicion(f"spam: {reading.describe()}", reading.score, hard)


def _blocked(address: str, block: tuple[str, ...]) -> bool:
    address = address.lower()
    domain = address.rsplit("@", 1)[-1]
    for entry in (e.lower().lstrip("@") for e in block):
        if entry == address:
            return True
        if "@" not in entry and (domain == entry or domain.endswith("." + entry)):
            return True
    return False
