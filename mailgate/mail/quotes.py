"""The visible new text of a reply: quoted history and signatures removed.

Pure: text in, text out; part of mailgate.mail; imports only the standard library.

The helpdesk stores both the full body and this visible text on every reply, and
relays the visible text of agent replies to customers. Both mistakes are costly:
dropping what the person wrote loses information, keeping quoted history leaks
an earlier conversation to whoever reads the relay. Where the two pull against
each other the rules below prefer keeping text, except for unmistakable history
markers (quote headers, Outlook blocks, forwarded-message markers).

Input is plain text; HTML is converted elsewhere, with blockquotes rendered as
``> `` lines, so only text conventions are recognised here:

* ``>`` quoted lines (any depth). Text between quote blocks is an inline or
  bottom-posted answer and is kept; the quoted lines go.
* Attribution headers introducing a quote ("On <date>, <name> wrote:" and its
  localized and wrapped forms). Followed by a ``>`` block they go with it;
  followed by unquoted text (clients that drop the markers) everything from the
  header on is history.
* Outlook separators ("-----Original Message-----", localized), header blocks
  ("From:/Sent:/To:/Subject:" and localized, at least two lines in a row) and
  forwarded-message markers: everything from there on is history.
* Signatures at the end of the new text: a "-- " / "--" / "__" line followed by
  a short block, mobile footers ("Sent from my iPhone" and localized) and a
  "-Name" sign-off.

Every line is examined a bounded number of times with anchored or length-capped
regular expressions, so the run time is linear in the size of the body.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from mailgate.mail.quote_patterns import (
    _ADDR_END,
    _DASH_SIGNOFF,
    _DATE_START,
    _DATEISH,
    _FOOTER_MAX_CHARS,
    _FORWARD_INTRO,
    _FROM_KEYS,
    _HEADER_WRAP_LINES,
    _KEY_SCAN,
    _MAX_HEADER_CHARS,
    _MOBILE_FOOTER,
    _OPENER,
    _OTHER_KEYS,
    _RFC_SIG_MAX_LINES,
    _RULE_CHARS,
    _SEPARATOR,
    _SIG_MAX_LINES,
    _SIGNOFF_MAX_CHARS,
    _TIME,
    _WROTE_AT_END,
    _WROTE_PAREN,
    _WROTE_TAIL,
    _WROTE_THEN_DATE,
)

__all__ = ["Reply", "reply_text", "split_reply", "visible_text"]


@dataclass(frozen=True)
class Reply:
    """A reply body split into what the person wrote, their signature and the quote."""

    new_text: str
    signature: str
    quoted: str


def split_reply(text: str) -> Reply:
    """Split a reply body into new text, signature and quoted history.

    ``new_text`` is what the person wrote, without the signature; ``signature``
    the signature block(s) split off its end; ``quoted`` the quoted history in
    original order. All three have CRLF normalised to LF and no trailing
    whitespace.
    """
    return _split(text)[0]


def visible_text(text: str, *, keep_signature: bool = False) -> str:
    """The new text of a reply: quoted history removed, and the signature too
    unless keep_signature.
    """
    reply, with_signature = _split(text)
    return with_signature if keep_signature else reply.new_text


def reply_text(text: str) -> str:
    """What the person wrote, as mailgate stores it for a reply.

    Quoted history, its attribution, the ``-- `` signature and mobile footers
    removed; the person's closing formula and name stay. No blank lines at either
    end, every line right-stripped. Pure and linear: ``mailgate explain --json``
    reports it for every mail.
    """
    lines = [line.rstrip() for line in visible_text(text).split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def _split(text: str) -> tuple[Reply, str]:
    """Return the Reply and the new text with its signature still attached."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    removed, cut = _find_quotes(lines)
    kept, segments = _kept_lines(lines, removed, cut)
    sig_start = _signature_start(kept, segments)
    touched = cut < len(lines) or sig_start < len(kept) or any(removed)
    if not touched:
        # Nothing recognised: hand the text back as it came, bar trailing space.
        body = "\n".join(lines).rstrip()
        return Reply(body, "", ""), body
    quoted = _quoted_text(lines, removed, cut)
    reply = Reply(_join(kept[:sig_start]), _join(kept[sig_start:]), quoted)
    return reply, _join(kept)


def _quoted_text(lines: list[str], removed: bytearray, cut: int) -> str:
    """The removed lines in order, a blank line between blocks that were apart."""
    out: list[str] = []
    for i in range(cut):
        if removed[i]:
            if out and not removed[i - 1]:
                out.append("")
            out.append(lines[i])
    if cut < len(lines):
        if out and not removed[cut - 1]:
            out.append("")
        out.extend(lines[cut:])
    return _join(out)


def _join(lines: list[str]) -> str:
    """Lines as text, with blank lines at either end dropped."""
    start, end = 0, len(lines)
    while start < end and _blank(lines[start]):
        start += 1
    while end > start and _blank(lines[end - 1]):
        end -= 1
    return "\n".join(lines[start:end]).rstrip()


def _blank(line: str) -> bool:
    return not line or line.isspace()


def _quoted(line: str) -> bool:
    return _quote_marked(line.lstrip())


def _quote_marked(s: str) -> bool:
    # ">=" opens a comparison ("> = 5 errors" is still a quote, ">= 5" is not).
    return s[:1] == ">" and s[1:2] != "="


def _find_quotes(lines: list[str]) -> tuple[bytearray, int]:
    """Mark quoted material; return the marks and the line where history starts.

    ``removed[i]`` marks a quote block or the header introducing it; every line
    from ``cut`` on is history.
    """
    n = len(lines)
    removed = bytearray(n)
    # Lines above ``floor`` already belong to a removed block; a wrapped header
    # must not reach back into them.
    floor = 0
    # The run of header fields ("From:", "Sent:", …) the scan is inside, kept
    # as it goes so that every line is looked at once, however many "To:"
    # lines a body has.
    run_start = -1
    fields = kinds = continuation = 0
    i = 0
    while i < n:
        s = lines[i].strip()
        if not s:
            run_start = -1
            i += 1
            continue
        if _quote_marked(s):
            last = i
            j = i + 1
            while j < n:
                rest = lines[j].lstrip()
                if _quote_marked(rest):
                    last = j
                elif rest:
                    break
                j += 1
            removed[i : last + 1] = b"\x01" * (last + 1 - i)
            i = floor = last + 1
            run_start = -1
            continue
        if s[0] == "-" and _SEPARATOR.fullmatch(s):
            return removed, _with_rule_above(lines, i, floor)
        kind = _header_key(s)
        if kind:
            if run_start < 0:
                run_start, fields, kinds = i, 0, 0
            fields += 1
            kinds |= kind
            continuation = 0
            # Two fields in a row, one of them the sender: a lone "From: the
            # manager" in a sentence is not enough.
            if fields >= 2 and kinds == 3:
                return removed, _with_rule_above(lines, run_start, floor)
            i += 1
            continue
        if run_start >= 0:
            # Long To:/Cc: lists wrap; allow a little of that between fields.
            continuation += 1
            if continuation > 2:
                run_start = -1
        if s[-1] in ":：" and len(s) <= _MAX_HEADER_CHARS:
            if _FORWARD_INTRO.fullmatch(s):
                return removed, _with_rule_above(lines, i, floor)
            start, strength = _attribution(lines, i, floor)
            if strength:
                j = i + 1
                while j < n and _blank(lines[j]):
                    j += 1
                if j < n and _quoted(lines[j]):
                    # The header belongs to the quote block below it; text after
                    # that block is an inline or bottom-posted answer.
                    removed[start:j] = b"\x01" * (j - start)
                    i = floor = j
                    run_start = -1
                    continue
                if strength == 2:
                    # No quote markers follow (Gmail's plain part, converted
                    # HTML): the rest of the mail is the earlier message.
                    return removed, _with_rule_above(lines, start, floor)
        i += 1
    return removed, n


def _with_rule_above(lines: list[str], cut: int, floor: int) -> int:
    """Move a cut up over the rule line Outlook draws above its header block."""
    j = cut - 1
    while j >= floor and _blank(lines[j]):
        j -= 1
    if j >= floor:
        s = lines[j].strip()
        if len(s) >= 4 and not s.strip(_RULE_CHARS):
            return j
    return cut


def _header_key(s: str) -> int:
    """1 for a From-like field line, 2 for another header field, 0 otherwise."""
    colon = s.find(":", 0, _KEY_SCAN)
    wide = s.find("：", 0, _KEY_SCAN)
    if wide != -1 and (colon == -1 or wide < colon):
        colon = wide
    if colon <= 0:
        return 0
    # Strip the asterisks of "*From:*" (bold rendered as text) and the space
    # French puts before the colon.
    key = s[:colon].strip(" *\t\xa0").casefold()
    if key in _FROM_KEYS:
        return 1
    if key in _OTHER_KEYS:
        return 2
    return 0


def _attribution(lines: list[str], j: int, floor: int) -> tuple[int, int]:
    """Whether line ``j`` ends an attribution header: (first line, strength).

    Strength 2: a dated header, a cut on its own; 1: only when a quote block
    follows; 0: not a header.
    """
    s = lines[j].strip()
    alone = _strength(s)
    if not _OPENER.match(s) and (not alone or _continues(s)):
        # Wrapped headers ("On …, Name\n<addr>\nwrote:"): look for the opener a
        # line or two up, over lines that read like a broken phrase.
        for k in range(j - 1, max(floor, j - _HEADER_WRAP_LINES) - 1, -1):
            t = lines[k].strip()
            if not t or t[0] == ">" or t[-1] in ".!?":
                break
            if _OPENER.match(t):
                joined = " ".join(line.strip() for line in lines[k : j + 1])
                if len(joined) <= _MAX_HEADER_CHARS:
                    strength = _strength(joined)
                    if strength:
                        return k, strength
                break
    return j, alone


def _continues(s: str) -> bool:
    """Whether a line reads as the tail of a wrapped header, not a whole one."""
    if s[0] in "<(" or s[0].islower():
        return True
    # "bob@example.org> написал:": the address was opened on the line above.
    close = s.find(">")
    return close != -1 and not 0 <= s.find("<") < close


def _strength(c: str) -> int:
    if _OPENER.match(c) and _WROTE_TAIL.search(c):
        return 2 if _DATEISH.search(c) else 1
    m = _WROTE_AT_END.search(c) or _WROTE_THEN_DATE.search(c) or _WROTE_PAREN.search(c)
    if m:
        if _DATEISH.search(c):
            return 2
        # Undated, only "Bob Smith wrote:" above a quote counts: a short run of
        # capitalised name words. "Here's what my colleague wrote:" is the
        # person's own sentence introducing the quote.
        words = c[: m.start()].split()
        named = all(not w[0].isalpha() or w[0].isupper() for w in words)
        return 1 if 0 < len(words) <= 4 and named else 0
    if _ADDR_END.search(c) and _TIME.search(c) and _DATE_START.match(c):
        return 2
    return 0


def _kept_lines(lines: list[str], removed: bytearray, cut: int) -> tuple[list[str], list[int]]:
    """The lines not removed, with one blank line where a quote block was.

    Also returns where each stretch of text that follows a removed block starts.
    """
    out: list[str] = []
    segments: list[int] = []
    gap = False
    for i in range(cut):
        if removed[i]:
            gap = True
            continue
        line = lines[i]
        if gap:
            if _blank(line):
                continue
            while out and _blank(out[-1]):
                out.pop()
            if out:
                out.append("")
                segments.append(len(out))
            gap = False
        out.append(line)
    return out, segments


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
