"""What was wrong with a mail that parsing read anyway: one line per repair, for the trace.

The parser reads hostile and broken mail without raising (a NUL inside a charset or
boundary parameter, raw UTF-8 inside an encoded word, an encoded word whose charset
is no charset); the agent looking at such a ticket should still see *that* something
was mended, and what. These scans run over the raw bytes, each bounded per match, so
they stay linear in the size of the mail. Pure: imports only the standard library.
"""

from __future__ import annotations

import re

# How many repair lines one mail may add: a crafted mail must not flood the trace.
MAX_REPAIRS = 20

_PARAMETER_FIELD = re.compile(
    rb"^(content-(?:type|disposition))[ \t]*:[^\n]{0,4000}", re.IGNORECASE | re.MULTILINE
)
# An encoded word, bounded: =?charset?Q|B?payload?= with at most 1,000 payload bytes.
_ENCODED_WORD = re.compile(rb"=\?[^?\s]{1,80}\?[QqBb]\?[^?\r\n]{0,1000}\?=")
_EIGHT_BIT = re.compile(rb"[\x80-\xff]")


def scan(raw: bytes) -> list[str]:
    """Repairs visible in the raw bytes alone (what the parser silently tolerated)."""
    found: list[str] = []
    # The scans look only for NUL and 8-bit bytes: most mails have neither, and a
    # byte search is cheaper than walking every line with the patterns.
    if b"\x00" in raw:
        for match in _PARAMETER_FIELD.finditer(raw):
            if b"\x00" in match.group():
                name = match.group(1).decode("ascii").title()
                found.append(f"NUL byte in a {name} parameter ignored")
        head = raw[: _head_end(raw)]
        if b"\x00" in head and not found:
            found.append("NUL byte in the header block ignored")
    if raw.isascii() or b"=?" not in raw:
        return found
    for match in _ENCODED_WORD.finditer(raw):
        if _EIGHT_BIT.search(match.group()):
            found.append("raw 8-bit bytes inside an encoded word read as UTF-8")
            break
    return found


def merge(*groups: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The repairs of every step, each once, in order, at most ``MAX_REPAIRS``."""
    seen: dict[str, None] = {}
    for group in groups:
        for line in group:
            seen.setdefault(line, None)
    return tuple(seen)[:MAX_REPAIRS]


def _head_end(raw: bytes) -> int:
    ends = [i for i in (raw.find(b"\n\n"), raw.find(b"\r\n\r\n")) if i >= 0]
    return min(ends) if ends else len(raw)
