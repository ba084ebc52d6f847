"""Signatures at the end of a reply's new text: "-- " blocks, mobile footers, "-Name".

Pure; part of ``mail.quotes`` (imports only the standard library and ``mailgate.mail``).
"""

from __future__ import annotations

from bisect import bisect_right

from mailgate.mail.quote_patterns import (
    _DASH_SIGNOFF,
    _FOOTER_MAX_CHARS,
    _MOBILE_FOOTER,
    _RFC_SIG_MAX_LINES,
    _SIG_MAX_LINES,
    _SIGNOFF_MAX_CHARS,
)


def _blank(line: str) -> bool:
    return not line or line.isspace()


def _signature_start(lines: list[str], segments: list[int]) -> int:
    """Index where the trailing signature block(s) begin; len(lines) if none."""
    start = len(lines)
    # Signatures stack ("-- \nBob\n\nSent from my iPhone", a sign-off above a
    # list footer); peel a few layers, each one short.
    for _ in range(4):
        end = start
        while end > 0 and _blank(lines[end - 1]):
            end -= 1
        if end == 0:
            break
        last = lines[end - 1].strip()
        if len(last) <= _FOOTER_MAX_CHARS and _MOBILE_FOOTER.fullmatch(last):
            start = end - 1
            continue
        if _is_signoff(lines, end - 1):
            start = end - 1
            continue
        # A delimiter above a removed quote would take the answers written
        # below that quote for signature: search the last stretch only.
        below = bisect_right(segments, end - 1)
        floor = segments[below - 1] if below else 0
        found = _delimiter_above(lines, floor, end)
        if found < 0:
            break
        start = found
    return start


def _is_signoff(lines: list[str], i: int) -> bool:
    s = lines[i].strip()
    if len(s) > _SIGNOFF_MAX_CHARS:
        return False
    m = _DASH_SIGNOFF.fullmatch(s)
    if not m or not m.group(1)[0].isupper():
        return False
    # A sign-off closes the text: it stands apart or follows "Thanks,". A line
    # right under another line is more likely a list item.
    return i == 0 or _blank(lines[i - 1]) or lines[i - 1].rstrip().endswith(",")


def _delimiter_above(lines: list[str], floor: int, end: int) -> int:
    """Earliest delimiter in ``floor:end`` whose block down to ``end`` is short, or -1."""
    found = -1
    count = 0  # non-blank lines below the line being looked at
    for i in range(end - 1, floor - 1, -1):
        line = lines[i]
        s = line.strip()
        if s == "--":
            limit = _RFC_SIG_MAX_LINES if line.startswith("-- ") else _SIG_MAX_LINES
        elif s in ("—", "–") or (len(s) >= 2 and not s.strip("_")):
            limit = _SIG_MAX_LINES
        else:
            limit = -1
        if count <= limit:
            found = i
        if s:
            count += 1
            if count > _RFC_SIG_MAX_LINES:
                break
    return found
