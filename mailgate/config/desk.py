"""The config of issue 13's desk: the spam queue, categories and the priority matrix, answers.

Part of the schema (``sections.py`` holds ``Config``, which has these as fields);
imports only the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# The same values as sections.Priority (kept here so this module stands alone).
Priority = Literal["low", "normal", "high", "emergency"]


@dataclass(frozen=True)
class Spam:
    """Mail a trusted MTA marked as spam, or from a blocked sender: the suspended queue."""

    # A spam score (X-Spam-Score, X-Spam-Status score=, rspamd's X-Spamd-Result) above
    # this suspends a new mail; a participant's reply only above hard_threshold.
    threshold: float = 5.0
    hard_threshold: float = 15.0
    # Read spam headers on mail that came through the MTA (pipe, LMTP, IMAP).
    trust_headers: bool = True
    # Addresses or domains ("spammer@example.net", "example.net") whose mail is suspended.
    block: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.threshold <= 0:
            raise ValueError(f"threshold must be above 0, not {self.threshold}")
        if self.hard_threshold < self.threshold:
            raise ValueError(
                f"hard_threshold ({self.hard_threshold}) must not be below threshold"
                f" ({self.threshold})"
            )


LEVELS: tuple[str, ...] = ("low", "medium", "high")  # urgency and impact


@dataclass(frozen=True)
class Tickets:
    # The categories agents (#category) and routing rules may set; anything else is refused.
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImpactRow:
    """One urgency's row of the priority matrix: the priority for each impact."""

    high: Priority = "normal"
    medium: Priority = "normal"
    low: Priority = "normal"


@dataclass(frozen=True)
class PriorityMatrix:
    """Urgency × impact → priority (ITIL's matrix by default); ``#urgency``/``#impact`` use it."""

    high: ImpactRow = field(default_factory=lambda: ImpactRow("emergency", "high", "normal"))
    medium: ImpactRow = field(default_factory=lambda: ImpactRow("high", "normal", "low"))
    low: ImpactRow = field(default_factory=lambda: ImpactRow("normal", "low", "low"))

    def priority(self, urgency: str, impact: str) -> str:
        """The priority of an urgency and an impact ('' counts as medium)."""
        row: ImpactRow = getattr(self, urgency or "medium")
        return str(getattr(row, impact or "medium"))


@dataclass(frozen=True)
class Answers:
    # Canned answers: NAME.md or NAME.txt (Jinja, the notices' variables); `#answer NAME`
    # in an agent's reply inserts one. Empty: none.
    dir: str = ""
