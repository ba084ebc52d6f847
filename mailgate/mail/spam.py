"""What a spam filter said about a mail, read from the headers it added.

=====================  ===================================================  ==============
header                 example                                              read as
=====================  ===================================================  ==============
X-Spam-Flag            ``YES``                                              spam
X-Spam-Status          ``Yes, score=7.3 required=5.0 tests=…``              spam; score
X-Spam-Score           ``7.3``                                              score
X-Spamd-Result         ``default: True [12.30 / 15.00]; …`` (rspamd)        spam; score
X-Spam                 ``Yes`` (rspamd's milter_headers)                    spam
X-Rspamd-Score         ``12.3``                                             score
=====================  ===================================================  ==============

Which headers count (only those our MTA added) is the caller's decision. Pure:
the standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_NUMBER = r"(-?\d+(?:\.\d+)?)"
_STATUS_SCORE = re.compile(rf"\bscore\s*=\s*{_NUMBER}", re.I)
_SPAMD_RESULT = re.compile(rf"^\s*\w+\s*:\s*(true|false)\s*\[\s*{_NUMBER}\s*/", re.I)


@dataclass(frozen=True)
class SpamReading:
    """A filter's verdict: whether it called the mail spam, its score, and which header said so."""

    flagged: bool
    score: float | None
    header: str

    def is_spam(self, threshold: float) -> bool:
        return self.flagged or (self.score is not None and self.score > threshold)

    def describe(self) -> str:
        score = f", score {self.score:g}" if self.score is not None else ""
        return f"{self.header}{' says spam' if self.flagged else ''}{score}"


def read_spam_headers(headers: Mapping[str, tuple[str, ...]]) -> SpamReading | None:
    """The spam verdict in ``headers`` (lowercased names), or None when no filter spoke."""
    flagged, score, said = False, None, []

    def first(name: str) -> str:
        values = headers.get(name, ())
        return values[0].strip() if values else ""

    if (flag := first("x-spam-flag")) and flag.upper().startswith("YES"):
        flagged = True
        said.append("X-Spam-Flag")
    if status := first("x-spam-status"):
        said.append("X-Spam-Status")
        flagged = flagged or status.lower().startswith("yes")
        if match := _STATUS_SCORE.search(status):
            score = float(match.group(1))
    if result := first("x-spamd-result"):
        said.append("X-Spamd-Result")
        if match := _SPAMD_RESULT.match(result):
            flagged = flagged or match.group(1).lower() == "true"
            score = float(match.group(2))
    if (rspamd := first("x-spam")) and rspamd.lower().startswith("yes"):
        flagged = True
        said.append("X-Spam")
    for name, label in (("x-spam-score", "X-Spam-Score"), ("x-rspamd-score", "X-Rspamd-Score")):
        value = first(name)
        if score is None and value and re.fullmatch(_NUMBER, value):
            score = float(value)
            said.append(label)
    if not said:
        return None
    return SpamReading(flagged, score, "/".join(dict.fromkeys(said)))
