"""Quotes recognised by what they quote: an indented block that reproduces our own mail.

Pure; part of ``mail.quotes`` (imports only the standard library).

mailx, s-nail and their kin quote with a TAB or spaces instead of ``>`` — with
``quote=noheading``, or with ``~m`` in BSD mailx, without any attribution line,
and sometimes with the quoted mail's header block, its mbox ``From `` line or its
undecoded quoted-printable soft breaks inside. Nothing in such a block says
"quote" by itself: indented lines are also code, addresses and lists the person
wrote. What does say it is the content: the caller knows the mail being answered
(our notice is stored), and a block that reproduces it is history.

The comparison is by word trigrams, so a block still counts when the client
re-wrapped the lines (``quote-fold``), kept an encoded soft break, put headers
above the body or quoted only part of the notice. A block is a quote when

* most of it is our text (at least 60 % of its trigrams occur in one known mail), or
* it holds most of one known mail (at least half of that mail's trigrams),

and it has at least ``_MIN_GRAMS`` trigrams (five words or so): a short indented
line is never judged by content. Linear in the size of the text and of the hints.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

__all__ = ["indented", "indented_block_end", "mark_known_quotes"]

_WORD = re.compile(r"\w+")
_MIN_GRAMS = 3
_MOSTLY_OURS = 0.6
_MOST_OF_ONE = 0.5
# Hints are our own mails; a notice quoting a huge customer mail need not be read whole.
_MAX_HINT_CHARS = 200_000
_MAX_BLOCK_CHARS = 400_000


def _grams(words: Sequence[str]) -> set[tuple[str, str, str]]:
    return {(words[i], words[i + 1], words[i + 2]) for i in range(len(words) - 2)}


def _words(text: str) -> list[str]:
    return [w.casefold() for w in _WORD.findall(text)]


def indented(line: str) -> bool:
    """A line indented with a TAB or at least two spaces, with text on it."""
    return line[:1] == "\t" or (line[:2] == "  " and not line.isspace())


def _blank(line: str) -> bool:
    return not line or line.isspace()


def indented_block_end(lines: Sequence[str], start: int) -> int:
    """The end of the indented block at ``start``; blank lines inside it belong to it
    when more indented lines follow."""
    end = i = start
    while i < len(lines):
        if indented(lines[i]):
            end = i = i + 1
        elif _blank(lines[i]):
            i += 1
        else:
            break
    return end


def _reproduces(block: Sequence[str], known: list[set[tuple[str, str, str]]]) -> bool:
    text = "\n".join(block)[:_MAX_BLOCK_CHARS]
    grams = _grams(_words(text))
    if len(grams) < _MIN_GRAMS:
        return False
    for ours in known:
        hits = len(grams & ours)
        if hits >= _MIN_GRAMS and (
            hits >= _MOSTLY_OURS * len(grams) or hits >= _MOST_OF_ONE * len(ours)
        ):
            return True
    return False


def mark_known_quotes(lines: list[str], known: Iterable[str]) -> list[str]:
    """``lines`` with every indented block that reproduces a ``known`` mail turned into a
    ``>`` quote block (the rest of the quote engine then treats it as one: its
    attribution goes with it, the answer below it stays). Unchanged lines are the same
    objects; blank lines stay blank."""
    # Read the known mails only when there is an indented block to compare (most
    # replies quote with ">", or not at all).
    hints: list[set[tuple[str, str, str]]] | None = None
    out = list(lines)
    i, n = 0, len(lines)
    while i < n:
        if not indented(lines[i]):
            i += 1
            continue
        if hints is None:
            hints = [_grams(_words(text[:_MAX_HINT_CHARS])) for text in known if text]
            if not any(hints):
                return lines
        end = indented_block_end(lines, i)
        if _reproduces(lines[i:end], hints):
            for j in range(i, end):
                if not _blank(lines[j]):
                    out[j] = "> " + lines[j].strip()
        i = end
    return out
