"""The ``--text`` language: words, "quoted phrases" and prefixes (``termin*``).

Parsed here once, into terms both databases understand the same way (the store
renders them as an FTS5 MATCH expression or a ``tsquery``): every term must
match (AND). A query that is only a ticket number (``482913``, ``#482913``,
``[Ticket#482913]``) or a Message-ID (``<abc@host>``) is recognised too — an
admin pastes one from a log. Pure: imports nothing of ours but errors.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from mailgate.errors import UsageError

_WORD = re.compile(r"[^\W_]+")  # as both tokenizers split: "_" separates
_NUMBER = re.compile(r"^\s*\[?[^\s#\[\]]*?#?(\d{1,18})\]?\s*$")  # lazy: a bare number is all digits
_MESSAGE_ID = re.compile(r"^\s*<?([^\s<>@]+@[^\s<>]+?)>?\s*$")


@dataclass(frozen=True, slots=True)
class Term:
    """One thing that must match: ``words`` in this order; ``prefix``: the last one may go on."""

    words: tuple[str, ...]
    prefix: bool = False

    @property
    def cjk(self) -> bool:
        """Written in a script without spaces (Chinese, Japanese): matched as a substring."""
        return any(_is_cjk(c) for w in self.words for c in w)


@dataclass(frozen=True, slots=True)
class TextQuery:
    text: str
    terms: tuple[Term, ...]
    number: int | None = None  # the query could be a ticket number
    message_id: str | None = None  # …or a Message-ID (with its angle brackets)


def _is_cjk(char: str) -> bool:
    return unicodedata.east_asian_width(char) in ("W", "F") and char.isalpha()


def parse(text: str) -> TextQuery:
    """``text`` as terms; a query that cannot be understood is one line saying why."""
    number = message_id = None
    if found := _NUMBER.match(text):
        number = int(found.group(1))
    if found := _MESSAGE_ID.match(text):
        message_id = f"<{found.group(1)}>"
    terms: list[Term] = []
    rest = text
    while rest := rest.strip():
        if rest.startswith('"'):
            end = rest.find('"', 1)
            if end < 0:
                raise UsageError(f'--text: a phrase is not closed (missing "): {text!r}')
            chunk, rest = rest[1:end], rest[end + 1 :]
            prefix = rest.startswith("*")
            rest = rest[1:] if prefix else rest
        else:
            chunk, _, rest = rest.partition(" ")
            prefix = chunk.endswith("*")
            chunk = chunk[:-1] if prefix else chunk
            if "*" in chunk or '"' in chunk:
                raise UsageError(
                    f"--text: '*' and '\"' go at the end of a word or around a phrase: {chunk!r}"
                    ' (e.g. termin* or "card terminal")'
                )
        words = tuple(w.lower() for w in _WORD.findall(chunk))
        if words:
            terms.append(Term(words, prefix))
    if not terms and number is None and message_id is None:
        raise UsageError(f"--text: nothing to search for in {text!r}; give words or a phrase")
    return TextQuery(text=text, terms=tuple(terms), number=number, message_id=message_id)
