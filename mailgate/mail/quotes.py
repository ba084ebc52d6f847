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
* Indented quotes (mailx/s-nail indent with a TAB or spaces instead of ``>``)
  after an attribution, an indented header block, or — given the mail being
  answered (``known``) — any indented block reproducing it (``mail.quote_hints``):
  the indented block goes, the answer below it stays.
* Attributions without their colon and dashed ("---- On … wrote ----").
* A quoted line the client hard-wrapped, losing the ``>`` of the continuation.
* A mobile footer, or a closing formula with its name block ("Best regards" /
  "Jane Doe"), followed by more text: that text is a quote that lost its
  header. The closing and the name are the person's words and stay.
* Signatures at the end of the new text (``mail.quote_signatures``): a "-- " /
  "--" / "__" line followed by a short block, mobile footers ("Sent from my
  iPhone" and localized) and a "-Name" sign-off.

Every line is examined a bounded number of times with anchored or length-capped
regular expressions, so the run time is linear in the size of the body.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailgate.mail.quote_hints import indented, indented_block_end, mark_known_quotes
from mailgate.mail.quote_patterns import (
    _ADDR_END,
    _CLOSING,
    _CLOSING_FIRST_WORDS,
    _DATE_START,
    _DATEISH,
    _DEVICE_WORDS,
    _FOOTER_MAX_CHARS,
    _FORWARD_INTRO,
    _FROM_KEYS,
    _HEADER_WRAP_LINES,
    _KEY_SCAN,
    _MAX_HEADER_CHARS,
    _MOBILE_FOOTER,
    _NAME_MAX_CHARS,
    _NAME_MAX_LINES,
    _OPENER,
    _OTHER_KEYS,
    _POSTMARK,
    _POSTSCRIPT,
    _RULE_CHARS,
    _SEPARATOR,
    _SIGNOFF_MAX_CHARS,
    _TIME,
    _WRAP_MIN_CHARS,
    _WROTE_AT_END,
    _WROTE_BARE,
    _WROTE_PAREN,
    _WROTE_TAIL,
    _WROTE_THEN_DATE,
)
from mailgate.mail.quote_signatures import _signature_start

__all__ = ["Reply", "reply_text", "split_reply", "visible_text"]


@dataclass(frozen=True)
class Reply:
    """A reply body split into what the person wrote, their signature and the quote."""

    new_text: str
    signature: str
    quoted: str


def split_reply(text: str, *, known: Sequence[str] = ()) -> Reply:
    """Split a reply body into new text, signature and quoted history.

    ``new_text`` is what the person wrote, without the signature; ``signature``
    the signature block(s) split off its end; ``quoted`` the quoted history in
    original order. All three have CRLF normalised to LF and no trailing
    whitespace. ``known``: the texts of mails the reply may quote (our notice it
    answers): an indented block reproducing one of them is a quote
    (``mail.quote_hints``).
    """
    return _split(text, known)[0]


def visible_text(text: str, *, keep_signature: bool = False, known: Sequence[str] = ()) -> str:
    """The new text of a reply: quoted history removed, and the signature too
    unless keep_signature. ``known`` as for ``split_reply``.
    """
    reply, with_signature = _split(text, known)
    return with_signature if keep_signature else reply.new_text


def reply_text(text: str, *, known: Sequence[str] = ()) -> str:
    """What the person wrote, as mailgate stores it for a reply.

    Quoted history, its attribution, the ``-- `` signature and mobile footers
    removed; the person's closing formula and name stay. No blank lines at either
    end, every line right-stripped. Pure and linear: ``mailgate explain --json``
    reports it for every mail. ``known`` as for ``split_reply``.
    """
    lines = [line.rstrip() for line in visible_text(text, known=known).split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def _split(text: str, known: Sequence[str] = ()) -> tuple[Reply, str]:
    """Return the Reply and the new text with its signature still attached."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    # Indented blocks that reproduce a known mail are read as ">" quotes; what is
    # kept or reported as quoted is always taken from the lines as they came.
    removed, cut = _find_quotes(mark_known_quotes(lines, known) if known else lines)
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
    # The last line of the person's own text seen so far (-1: none yet).
    text_seen = -1
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
                elif rest and _lost_marker(lines, j):
                    last = j  # a hard-wrapped quoted line whose ">" the client lost
                elif rest:
                    break
                j += 1
            removed[i : last + 1] = b"\x01" * (last + 1 - i)
            i = floor = last + 1
            run_start = -1
            continue
        if s[0] == "-" and _SEPARATOR.fullmatch(s):
            return removed, _with_rule_above(lines, i, floor)
        if s[0].isalpha() and len(s) <= _FOOTER_MAX_CHARS and text_seen >= floor and _may_close(s):
            # A mobile footer or a closing formula with its name block ends what the
            # person wrote: text after it is a quote that lost its header.
            below = _history_after_closing(lines, i, s)
            if below >= 0:
                return removed, below
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
                if indented(lines[run_start]):
                    # mailx/s-nail reproduce the notice indented, headers and all
                    # (BSD mailx's ~m with the mbox "From " line above them): the
                    # indented block is the quote, the text below it the answer.
                    if run_start > floor and _POSTMARK.match(lines[run_start - 1]):
                        run_start -= 1
                    end = indented_block_end(lines, run_start)
                    removed[run_start:end] = b"\x01" * (end - run_start)
                    i = floor = end
                    run_start = -1
                    continue
                return removed, _with_rule_above(lines, run_start, floor)
            i += 1
            continue
        if run_start >= 0:
            # Long To:/Cc: lists wrap; allow a little of that between fields.
            continuation += 1
            if continuation > 2:
                run_start = -1
        colon = s[-1] in ":："
        if (colon or (len(s) > 16 and _bare_attribution(s))) and len(s) <= _MAX_HEADER_CHARS:
            if colon and _FORWARD_INTRO.fullmatch(s):
                return removed, _with_rule_above(lines, i, floor)
            start, strength = _attribution(lines, i, floor) if colon else (i, 2)
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
                if j < n and indented(lines[j]):
                    # mailx/s-nail indent the quote with a TAB or spaces instead of ">".
                    end = indented_block_end(lines, j)
                    removed[start:end] = b"\x01" * (end - start)
                    i = floor = end
                    run_start = -1
                    continue
                if strength == 2:
                    # No quote markers follow (Gmail's plain part, converted
                    # HTML): the rest of the mail is the earlier message.
                    return removed, _with_rule_above(lines, start, floor)
        text_seen = i
        i += 1
    return removed, n


def _lost_marker(lines: list[str], j: int) -> bool:
    """Line ``j`` continues a long quoted line above and the quote goes on below it:
    the client wrapped the quote and dropped the ">" of the continuation."""
    above = lines[j - 1].lstrip()
    return (
        j + 1 < len(lines)
        and len(above) >= _WRAP_MIN_CHARS
        and _quote_marked(above)
        and _quote_marked(lines[j + 1].lstrip())
        and len(lines[j].strip()) < _WRAP_MIN_CHARS
    )


def _bare_attribution(s: str) -> bool:
    """A dated attribution without its colon ("On …, Bob <b@x> wrote", "---- On … wrote ----")."""
    core = s.strip("-—– ").strip() if s[0] in "-—–" or s[-1] in "-—–" else s
    if not core or not _OPENER.match(core) or not _DATEISH.search(core):
        return False
    return _WROTE_BARE.search(core[-40:]) is not None


def _may_close(s: str) -> bool:
    """Cheap test: may ``s`` be a closing formula or a mobile footer?"""
    first = s[:24].split(None, 1)[0].lower().rstrip(",.!:")
    return not first.isascii() or first in _CLOSING_FIRST_WORDS or first in _DEVICE_WORDS


def _history_after_closing(lines: list[str], i: int, s: str) -> int:
    """Where a header-less quote starts below a mobile footer or a closing formula with
    its name block (-1 when nothing follows or it reads like the person's own P.S.)."""
    n = len(lines)
    if _MOBILE_FOOTER.fullmatch(s):
        k = i + 1
    elif len(s) <= _SIGNOFF_MAX_CHARS and _CLOSING.fullmatch(s):
        k = i + 1
        if k + 1 < n and _blank(lines[k]) and not _blank(lines[k + 1]):
            k += 1  # "Kind regards" / blank / "Jane"
        names = 0
        while k < n and not _blank(lines[k]):
            if len(lines[k].strip()) > _NAME_MAX_CHARS or names == _NAME_MAX_LINES:
                return -1
            names += 1
            k += 1
        if not names:
            return -1
    else:
        return -1
    if k >= n or not _blank(lines[k]):
        return -1
    while k < n and _blank(lines[k]):
        k += 1
    if k >= n:
        return -1
    first = lines[k].strip()
    if _POSTSCRIPT.match(first) or first in ("--", "-- ", "__") or _MOBILE_FOOTER.fullmatch(first):
        return -1
    return k


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
            # s-nail's quote-fold ends a folded line with "\\": "Bob <b@x> \\" / "wrote:".
            folded = t[-1] == "\\"
            if _OPENER.match(t) or folded:
                joined = " ".join(line.strip().rstrip("\\") for line in lines[k : j + 1])
                if len(joined) <= _MAX_HEADER_CHARS:
                    strength = _strength(joined)
                    if strength:
                        # Without an opener, only above a quote block.
                        return k, strength if _OPENER.match(t) else 1
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
