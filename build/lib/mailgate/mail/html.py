"""HTML mail bodies: readable plain text, and an inert sanitised copy.

Pure: HTML text in, text out; part of mailgate.mail; imports only the standard library.

Customers often send HTML-only mail. ``html_to_text`` renders such a body as
plain text in which quoted history keeps the conventions of plain-text mail,
because the reply splitter (``mailgate.mail.quotes``) only understands those:

* blockquotes (Gmail, Apple Mail, Thunderbird, Yahoo, ...) become ``> `` lines,
  their attribution line ("On ... wrote:") stays one line of its own;
* Outlook's reply header ("From:/Sent:/To:/Subject:") renders one field per line,
  below a rule of dashes where Outlook draws one.

``sanitize_html`` keeps an allow-list of formatting tags and attributes and
re-serialises what it kept, so the result is well-formed and inert whatever the
input was: no script, no event handler, no style, no URL outside http(s),
mailto and (for images) cid.

Both run on the stdlib ``HTMLParser`` with a small tree model of their own:
an open-element stack, implied end tags for the common cases (p, li, td, tr, a)
and browser-like recovery, all in time linear in the input. Neither raises.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

__all__ = ["html_to_text", "sanitize_html"]

# --- shared tree model --------------------------------------------------------------------

_VOID = frozenset(
    {
        "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "image",
        "img", "input", "keygen", "link", "meta", "param", "source", "track", "wbr",
    }
)  # fmt: skip
# What may appear inside <head> without ending it (browsers end the head at the
# first other tag, which also rescues bodies whose </head> is missing).
_HEAD_TAGS = frozenset(
    {
        "html", "head", "title", "meta", "link", "style", "script", "base", "noscript",
        "template", "basefont", "bgsound", "xml", "object", "param",
    }
)  # fmt: skip
# Start tags that close an open <p>, as the HTML parsing algorithm does.
_P_CLOSERS = frozenset(
    {
        "address", "article", "aside", "blockquote", "center", "details", "dialog", "dir",
        "div", "dl", "dd", "dt", "fieldset", "figcaption", "figure", "footer", "form",
        "h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup", "li", "main", "menu",
        "nav", "ol", "p", "pre", "section", "summary", "table", "ul",
    }
)  # fmt: skip
_P_ONLY = frozenset({"p"})
_HEAD_ONLY = frozenset({"head"})
_P_SCOPE = frozenset(
    {"applet", "button", "caption", "html", "marquee", "object", "table", "td", "template", "th"}
)
# Implied end tags: a start tag closes the nearest open element of `targets`,
# unless one of `boundaries` lies between.
_IMPLIED: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "li": (frozenset({"li"}), frozenset({"ul", "ol", "menu", "dir", "table", "td", "th"})),
    "dt": (frozenset({"dt", "dd"}), frozenset({"dl", "table", "td", "th"})),
    "dd": (frozenset({"dt", "dd"}), frozenset({"dl", "table", "td", "th"})),
    "td": (frozenset({"td", "th"}), frozenset({"tr", "table"})),
    "th": (frozenset({"td", "th"}), frozenset({"tr", "table"})),
    "tr": (frozenset({"tr"}), frozenset({"table", "thead", "tbody", "tfoot"})),
    "thead": (frozenset({"thead", "tbody", "tfoot"}), frozenset({"table"})),
    "tbody": (frozenset({"thead", "tbody", "tfoot"}), frozenset({"table"})),
    "tfoot": (frozenset({"thead", "tbody", "tfoot"}), frozenset({"table"})),
    "a": (frozenset({"a"}), frozenset({"table", "td", "th"})),
    "option": (frozenset({"option"}), frozenset({"select", "datalist", "optgroup"})),
}
# Implied end tags look this far down the stack at most: deeper matches are rare
# in real mail, and an unbounded search would make deep nesting quadratic.
_SCOPE_LIMIT = 48
# "<" not followed by something that can start markup is text; escaping it up
# front spares HTMLParser one Python-level step per such character.
_LONE_LT = re.compile(r"<(?![A-Za-z/!?])")
# Characters no mail means to show: C0/C1 controls (NUL included), lone
# surrogates and non-characters, none of which XML or a database column likes
# either. Form feed and Unicode line separators become spaces so that
# str.splitlines() agrees with our line breaks.
_CONTROLS: dict[int, str | None] = {
    c: None
    for c in [
        *range(0x00, 0x09), 0x0B, *range(0x0E, 0x20), *range(0x7F, 0xA0),
        *range(0xD800, 0xE000), 0xFFFE, 0xFFFF,
    ]
}  # fmt: skip
_CONTROLS.update({0x0C: " ", 0x85: " ", 0x2028: " ", 0x2029: " "})
_HTML_SPACE = re.compile(r"[ \t\n\r\f]+")


class _Frame:
    """One open element and what closing it has to undo."""

    __slots__ = ("flags", "href", "mark", "serial", "tag")

    def __init__(self, tag: str, flags: int = 0) -> None:
        self.tag = tag
        self.flags = flags
        self.href = ""
        self.serial = 0
        self.mark = -1


def _attr_map(attrs: list[tuple[str, str | None]]) -> dict[str, str]:
    # Browsers use the first of duplicated attributes; so must we, or a harmless
    # first value could hide a dangerous second one (or the other way round).
    found: dict[str, str] = {}
    for name, value in attrs:
        if name not in found:
            found[name] = value or ""
    return found


class _TreeParser(HTMLParser):
    """HTMLParser plus an open-element stack with browser-like recovery."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._stack: list[_Frame] = []
        self._open: dict[str, int] = {}
        self._in_head = False
        self._body_started = False

    # -- hooks for the subclasses

    def _enter(self, tag: str, attrs: list[tuple[str, str | None]]) -> _Frame:
        return _Frame(tag)

    def _leave(self, frame: _Frame) -> None:
        pass

    def _void(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        pass

    def _text(self, data: str) -> None:
        pass

    def _stray_end(self, tag: str) -> None:
        pass

    # -- driving

    def run(self, markup: str) -> None:
        self.feed(_LONE_LT.sub("&lt;", markup))
        if self.rawdata.startswith("<") and self.cdata_elem is None:
            # HTMLParser stopped at markup that never ends ("<a href='...", "<!--"
            # without "-->"): browsers read the rest of the input as part of it and
            # show none of it. HTMLParser's close() would instead re-scan the rest
            # once per "<" in it, which is quadratic.
            self.rawdata = ""
        self.close()
        self._pop_to(0)

    def updatepos(self, i: int, j: int) -> int:
        # Line and column bookkeeping costs a tenth of the parse and nobody reads it.
        return j

    def parse_marked_section(self, i: int, report: bool = True) -> int:
        # Outside SVG/MathML browsers read "<![CDATA[" and Word's "<![if !supportLists]>"
        # as a bogus comment that ends at the first ">"; the inherited version
        # raises AssertionError on keywords it does not know.
        end = self.rawdata.find(">", i + 3)
        return -1 if end < 0 else end + 1

    # -- HTMLParser callbacks

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "head":
            if self._body_started or self._in_head:
                return  # a late or second <head> is ignored, as browsers do
            self._in_head = True
        elif self._in_head:
            if tag not in _HEAD_TAGS:
                self._end_head()
        elif tag != "html":
            self._body_started = True
        if tag in _VOID:
            self._void(tag, attrs)
            return
        self._imply_end_tags(tag)
        frame = self._enter(tag, attrs)
        self._stack.append(frame)
        self._open[tag] = self._open.get(tag, 0) + 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag in ("script", "style"):
            # Browsers ignore the "/" of "<script/>": what follows is still script.
            self.set_cdata_mode(tag)
        elif tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "br":
            self.handle_starttag("br", [])  # browsers read </br> as <br>
            return
        if tag in _VOID:
            return
        if not self._open.get(tag):
            self._stray_end(tag)
            return
        while self._stack:
            if self._pop().tag == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._in_head:
            return
        if not self._body_started and data.strip(" \t\n\r\f"):
            self._body_started = True
        self._text(data)

    # -- stack helpers

    def _pop(self) -> _Frame:
        frame = self._stack.pop()
        self._open[frame.tag] -= 1
        if frame.tag == "head":
            self._in_head = False
        self._leave(frame)
        return frame

    def _pop_to(self, index: int) -> None:
        while len(self._stack) > index:
            self._pop()

    def _find(self, targets: frozenset[str], boundaries: frozenset[str]) -> int:
        for target in targets:
            if self._open.get(target):
                break
        else:
            return -1
        stack = self._stack
        for i in range(len(stack) - 1, max(-1, len(stack) - 1 - _SCOPE_LIMIT), -1):
            tag = stack[i].tag
            if tag in targets:
                return i
            if tag in boundaries:
                return -1
        return -1

    def _imply_end_tags(self, tag: str) -> None:
        rule = _IMPLIED.get(tag)
        if rule is not None:
            i = self._find(*rule)
            if i >= 0:
                self._pop_to(i)
        if tag in _P_CLOSERS and self._open.get("p"):
            i = self._find(_P_ONLY, _P_SCOPE)
            if i >= 0:
                self._pop_to(i)

    def _end_head(self) -> None:
        i = self._find(_HEAD_ONLY, frozenset())
        if i >= 0:
            self._pop_to(i)
        self._in_head = False
        self._body_started = True


# --- html_to_text ---------------------------------------------------------------------------

# Frame flags of the text renderer.
_BLOCK = 1  # line break before and after
_PARA = 2  # blank line before and after
_QUOTE = 4
_PRE = 8
_SKIP = 16
_LIST = 32
_ITEM = 64
_LINK = 128
_MARK = 256  # bold text that may turn out to be a reply-header label

_SKIPPED = frozenset(
    {
        "script", "style", "title", "template", "xml", "iframe", "object", "applet",
        "frameset", "noembed", "noframes", "select", "datalist", "svg",
    }
)  # fmt: skip
# How the text renderer treats each element; anything else is inline.
_K_INLINE, _K_BLOCK, _K_QUOTE, _K_P, _K_PARA, _K_PRE, _K_LIST, _K_ITEM = range(8)
_K_CELL, _K_LINK, _K_BOLD = range(8, 11)
_KINDS: dict[str, int] = {
    **dict.fromkeys(
        (
            "address", "article", "aside", "body", "caption", "center", "dd", "details",
            "dialog", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form",
            "header", "hgroup", "html", "legend", "main", "nav", "option", "section",
            "summary", "table", "tr",
        ),
        _K_BLOCK,
    ),
    "div": _K_QUOTE,  # a block, or Yahoo's quote
    "blockquote": _K_QUOTE,
    "p": _K_P,
    **dict.fromkeys(("h1", "h2", "h3", "h4", "h5", "h6"), _K_PARA),
    "pre": _K_PRE,
    **dict.fromkeys(("ul", "ol", "menu", "dir"), _K_LIST),
    "li": _K_ITEM,
    "td": _K_CELL,
    "th": _K_CELL,
    "a": _K_LINK,
    "b": _K_BOLD,
    "strong": _K_BOLD,
}  # fmt: skip
_NO_ATTRS: dict[str, str] = {}
_HR_LINE = "-" * 40
# Quote prefixes and list indents grow with nesting; capping them keeps the
# output linear in the input for pathological nesting.
_MAX_QUOTE_DEPTH = 32
_MAX_LIST_INDENT = 8

_BORDER_TOP = re.compile(r"border-top", re.IGNORECASE)
_DISPLAY_NONE = re.compile(r"display\s*:\s*none", re.IGNORECASE)
# Gmail's and Apple Mail's "indent" button makes a border-less blockquote: an
# indent, not a quotation.
_BORDERLESS = re.compile(r"(?:^|[;\s])border(?:-left)?\s*:\s*(?:none|0)\b", re.IGNORECASE)
_TIGHT_MARGIN = re.compile(
    r"(?:^|[;\s])margin(?:-bottom)?\s*:\s*0(?:[a-z]*)\s*(?:;|$)", re.IGNORECASE
)
_QUOTE_CLASSES = ("gmail_quote", "yahoo_quoted", "moz-cite", "quote")
# Containers after which Outlook (desktop, web, Mac, mobile), Thunderbird, Gmail
# and Yahoo put a header block or quoted history: from the first of them on, a
# bold "From:" starts a line. Outlook's header containers (their ids gain an
# "x_" prefix when OWA forwards them) also get a blank line above; attribution
# containers must not, so that the attribution stays right above its quote.
_HEADER_IDS = (
    "divRplyFwdMsg", "appendonsend", "OLK_SRC_BODY_SECTION", "mail-editor-reference-message",
    "reference-message-container",
)  # fmt: skip
_HEADER_CLASSES = ("OutlookMessageHeader", "ms-outlook-mobile-reference-message")
_ATTRIBUTION_CLASSES = (
    "gmail_quote", "gmail_attr", "moz-cite-prefix", "moz-forward-container", "yahoo_quoted",
)  # fmt: skip
# Reply-header labels as Outlook and webmails write them in bold.
_LABEL = re.compile(
    r"(?:from|sent|date|to|cc|bcc|subject|reply-to|importance|on behalf of"
    r"|von|gesendet|datum|an|betreff|de|envoyé|à|objet|date d'envoi|enviado|fecha|para"
    r"|asunto|da|inviato|data|a|oggetto|van|verzonden|aan|onderwerp|från|skickat|till|ämne"
    r"|fra|sendt|til|emne|od|wysłano|do|temat|от|отправлено|дата|кому|тема|копия"
    r"|发件人|发送时间|收件人|抄送|主题|差出人|送信日時|宛先|件名)\s*[:：]",
    re.IGNORECASE,
)
_LINK_SCHEMES = frozenset({"http", "https", "ftp"})
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_URL_BREAKS = re.compile(r"[\t\n\r]")
# Stripped from line ends: whitespace and invisible fillers newsletters pad with.
_LINE_END_JUNK = (
    " \t\n\r\f\v\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u202f\u205f\u3000\u200b\u200c\u200d\u2060\ufeff\u034f\xad"
)


def _is_header_container(a: dict[str, str], cls: str, style: str) -> bool:
    ident = a.get("id", "")
    if ident and any(key in ident for key in _HEADER_IDS):
        return True
    if cls and any(key in cls for key in _HEADER_CLASSES):
        return True
    # Outlook desktop draws its separator as the top border of the header's div.
    return bool(style) and _BORDER_TOP.search(style) is not None


def _url_core(url: str) -> str:
    """A URL or link text reduced to what a reader compares: no scheme, www, or final /."""
    core = url.strip().lower()
    for prefix in ("mailto:", "https://", "http://", "ftp://", "www."):
        if core.startswith(prefix):
            core = core[len(prefix) :]
    return core.rstrip("/")


class _TextRenderer(_TreeParser):
    def __init__(self) -> None:
        super().__init__()
        # Finished lines as (quote depth, text); prefixes are added at the end.
        self._out: list[tuple[int, str]] = []
        # The line being built.
        self._frags: list[str] = []
        self._has = False  # it has content (a line of &nbsp; counts: Outlook's blank lines)
        self._vis = False  # it has visible content
        self._space = False  # collapsible whitespace is pending
        self._cellsep = False  # a table cell started on it
        self._serial = 0  # bumped with every finished line
        self._depth = 0
        self._skip = 0
        self._pre = 0
        self._pre_fresh = False
        self._lists: list[tuple[bool, int]] = []
        self._indents: list[str] = []
        self._marker: str | None = None
        self._link_text: list[str] | None = None
        self._history = False

    # -- lines

    def _commit(self, force: bool = False) -> None:
        if self._has or force:
            self._out.append((self._depth, "".join(self._frags)))
        self._frags = []
        self._has = self._vis = self._space = self._cellsep = False
        self._serial += 1

    def _block(self, level: int) -> None:
        self._commit()
        if level & _PARA and self._out and self._out[-1][1] not in ("", _HR_LINE):
            self._out.append((self._depth, ""))

    def _start_line(self) -> None:
        if self._marker is not None:
            self._frags.append(self._marker)
            self._marker = None
        elif self._indents:
            self._frags.append(self._indents[-1])

    def _emit(self, chunk: str) -> None:
        """Add text that has no collapsible whitespace at either end."""
        chunk = chunk.replace("\xa0", " ")
        if not self._has:
            self._start_line()
        elif self._cellsep:
            last = self._frags[-1].rstrip() if self._frags else ""
            # "Subject:" | "Test" in a header table must stay "Subject: Test".
            joint = " | " if self._vis and last and not last.endswith(":") else " "
            self._frags.append(joint)
        elif self._space:
            self._frags.append(" ")
        self._space = self._cellsep = False
        self._frags.append(chunk)
        self._has = True
        if not self._vis and chunk.strip():
            self._vis = True
        if self._link_text is not None:
            self._link_text.append(chunk)

    # -- callbacks

    def _text(self, data: str) -> None:
        if self._skip:
            return
        data = data.translate(_CONTROLS)
        if self._pre:
            self._pre_text(data)
            return
        collapsed = _HTML_SPACE.sub(" ", data)
        if not collapsed:
            return
        if collapsed[0] == " ":
            self._space = True
        words = collapsed.strip(" ")
        if words:
            self._emit(words)
            if collapsed[-1] == " ":
                self._space = True

    def _pre_text(self, data: str) -> None:
        data = data.replace("\r\n", "\n").replace("\r", "\n")
        if self._pre_fresh and data:
            # The newline right after <pre> is not content (HTML parsing rules).
            if data[0] == "\n":
                data = data[1:]
            self._pre_fresh = False
        for n, segment in enumerate(data.split("\n")):
            if n:
                self._commit(force=True)
            if segment:
                segment = segment.replace("\xa0", " ")
                if not self._has:
                    self._start_line()
                self._frags.append(segment)
                self._has = True
                if not self._vis and segment.strip():
                    self._vis = True
                if self._link_text is not None:
                    self._link_text.append(segment)

    def _void(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip:
            return
        self._pre_fresh = False
        if tag == "br":
            self._commit(force=True)
            return
        if tag not in ("hr", "img"):
            return
        a = _attr_map(attrs)
        if "hidden" in a or _DISPLAY_NONE.search(a.get("style", "")):
            return
        if tag == "hr":
            self._commit()
            self._out.append((self._depth, _HR_LINE))
            self._history = True
            return
        alt = _HTML_SPACE.sub(" ", a.get("alt", "").translate(_CONTROLS)).strip(" ")
        if alt:
            self._emit(f"[{alt}]")

    def _enter(self, tag: str, attrs: list[tuple[str, str | None]]) -> _Frame:
        frame = _Frame(tag)
        if self._skip:
            return frame
        self._pre_fresh = False
        a = _attr_map(attrs) if attrs else _NO_ATTRS
        style = a.get("style", "")
        if tag in _SKIPPED or "hidden" in a or (style and _DISPLAY_NONE.search(style)):
            frame.flags = _SKIP
            self._skip += 1
            return frame
        cls = a.get("class", "")
        header = False
        if cls or style or "id" in a:
            header = _is_header_container(a, cls, style)
            if header or any(k in cls for k in _ATTRIBUTION_CLASSES):
                self._history = True
        kind = _KINDS.get(tag, _K_INLINE)
        if kind == _K_INLINE:
            return frame
        if kind == _K_QUOTE and (tag == "blockquote" or "yahoo_quoted" in cls):
            self._history = True
            if tag == "div" or self._is_quote(a, cls, style):
                frame.flags = _QUOTE | _BLOCK
                self._block(_BLOCK)
                self._depth += 1
                return frame
            kind = _K_BLOCK
        if kind in (_K_BLOCK, _K_QUOTE):
            # Outlook's reply-header containers get a blank line above them.
            frame.flags = _PARA if header and tag == "div" else _BLOCK
            self._block(frame.flags)
        elif kind == _K_P:
            tight = cls.startswith("Mso") or " Mso" in cls or _TIGHT_MARGIN.search(style)
            frame.flags = _BLOCK if tight else _PARA
            self._block(frame.flags)
        elif kind == _K_PARA:
            frame.flags = _PARA
            self._block(_PARA)
        elif kind == _K_CELL:
            if self._has:
                self._cellsep = True
        elif kind == _K_LINK:
            href = _URL_BREAKS.sub("", a.get("href", "")).strip()
            scheme = _SCHEME.match(href)
            if scheme and scheme.group(1).lower() in _LINK_SCHEMES:
                frame.flags = _LINK
                frame.href = href
                self._link_text = []
        elif kind == _K_BOLD:
            if self._history:
                frame.flags = _MARK
                frame.serial = self._serial
                frame.mark = len(self._frags) if self._vis else -1
        elif kind == _K_PRE:
            frame.flags = _PRE | _PARA
            self._block(_PARA)
            self._pre += 1
            self._pre_fresh = True
        elif kind == _K_LIST:
            self._enter_list(frame, tag, a)
        elif kind == _K_ITEM:
            self._enter_item(frame)
        return frame

    def _enter_list(self, frame: _Frame, tag: str, a: dict[str, str]) -> None:
        frame.flags = _LIST | (_BLOCK if self._lists else _PARA)
        self._block(frame.flags)
        start = 1
        if tag == "ol":
            digits = a.get("start", "").strip()
            if digits.isdigit() and len(digits) < 7:
                start = int(digits)
        self._lists.append((tag == "ol", start - 1))

    def _enter_item(self, frame: _Frame) -> None:
        frame.flags = _ITEM | _BLOCK
        self._block(_BLOCK)
        bullet = "- "
        if self._lists:
            ordered, count = self._lists[-1]
            if ordered:
                count += 1
                self._lists[-1] = (True, count)
                bullet = f"{count}. "
        pad = "  " * min(max(len(self._lists) - 1, 0), _MAX_LIST_INDENT)
        self._marker = pad + bullet
        self._indents.append(pad + " " * len(bullet))

    def _leave(self, frame: _Frame) -> None:
        flags = frame.flags
        if not flags:
            return
        if flags & _SKIP:
            self._skip -= 1
            return
        if flags & _LINK:
            self._end_link(frame)
        if flags & _MARK:
            self._end_mark(frame)
        if flags & _PRE:
            self._commit()
            self._pre -= 1
        if flags & _QUOTE:
            self._commit()
            self._depth -= 1
        if flags & _ITEM:
            self._commit()
            self._indents.pop()
            self._marker = None
        if flags & _LIST:
            self._commit()
            self._lists.pop()
        if flags & (_BLOCK | _PARA):
            self._block(flags & (_BLOCK | _PARA))

    def _stray_end(self, tag: str) -> None:
        if tag == "p" and not self._skip:
            self._block(_PARA)  # browsers turn a stray </p> into an empty paragraph

    # -- details

    @staticmethod
    def _is_quote(a: dict[str, str], cls: str, style: str) -> bool:
        if a.get("type", "").lower() == "cite" or any(k in cls for k in _QUOTE_CLASSES):
            return True
        return not _BORDERLESS.search(style)

    def _end_link(self, frame: _Frame) -> None:
        parts, self._link_text = self._link_text, None
        if not parts:
            return
        text = " ".join(parts).strip()
        if not text or _url_core(text) == _url_core(frame.href):
            return
        self._space = True
        self._emit(f"<{frame.href}>")

    def _end_mark(self, frame: _Frame) -> None:
        """Start a new line at a bold reply-header label that follows other text."""
        if frame.mark < 0 or frame.serial != self._serial:
            return
        before, label = self._frags[: frame.mark], self._frags[frame.mark :]
        text = "".join(label).strip()
        if not _LABEL.fullmatch(text) or not "".join(before).strip():
            return
        space = self._space
        self._frags = before
        self._commit()
        self._frags = ["".join(label).lstrip()]
        self._has = self._vis = True
        self._space = space

    def render(self, markup: str) -> str:
        self.run(markup)
        self._commit()
        lines: list[str] = []
        # Runs of blank lines become one. A blank line that opens a quote is
        # dropped, so the attribution stays right above the quote; one that
        # closes a quote belongs to the outer text.
        blank = -1
        last = 0
        for depth, text in self._out:
            text = text.rstrip(_LINE_END_JUNK)
            depth = min(depth, _MAX_QUOTE_DEPTH)
            if not text:
                if lines:
                    blank = depth if blank < 0 else min(blank, depth)
                continue
            if blank >= 0 and not last < blank <= depth:
                lines.append(("> " * min(blank, depth, last)).rstrip())
            blank = -1
            lines.append("> " * depth + text)
            last = depth
        return "\n".join(lines).strip()


# --- sanitize_html --------------------------------------------------------------------------

_KEPT = 1
_DROPPED = 2

_KEEP = frozenset(
    {
        "p", "div", "span", "b", "strong", "i", "em", "u", "s", "blockquote", "pre", "code",
        "ul", "ol", "li", "table", "thead", "tbody", "tr", "td", "th", "h1", "h2", "h3",
        "h4", "h5", "h6", "a", "font", "sub", "sup", "small", "big", "center",
    }
)  # fmt: skip
_KEEP_VOID = frozenset({"br", "hr", "img"})
# Dropped together with everything inside: active content, forms, foreign
# content (SVG/MathML parse differently), and elements whose text is not body text.
_DROP_WITH_CONTENT = frozenset(
    {
        "script", "style", "iframe", "object", "embed", "form", "input", "button", "textarea",
        "select", "svg", "math", "template", "noscript", "link", "meta", "base", "frame",
        "frameset", "applet", "title", "xml", "noembed", "noframes",
    }
)  # fmt: skip
# No "style": CSS can hide or overlay content, load URLs and, in old browsers,
# run script (expression(), behavior:); filtering it safely needs a CSS parser,
# dropping it costs only looks. No "class"/"id": they would hook into the
# styles and scripts of the page that shows the mail.
_COMMON_ATTRS = frozenset({"dir", "lang", "align"})
_TAG_ATTRS: dict[str, frozenset[str]] = {
    "a": _COMMON_ATTRS | {"href", "title"},
    "img": _COMMON_ATTRS | {"src", "alt", "width", "height", "title"},
    "td": _COMMON_ATTRS | {"colspan", "rowspan", "valign"},
    "th": _COMMON_ATTRS | {"colspan", "rowspan", "valign"},
    "font": _COMMON_ATTRS | {"color", "size", "face"},
}
_HREF_SCHEMES = frozenset({"http", "https", "mailto"})
_SRC_SCHEMES = frozenset({"http", "https", "cid"})
_SIZE = re.compile(r"\d{1,5}%?")
_SPAN = re.compile(r"\d{1,4}")
_LINK_REL = 'rel="noopener noreferrer nofollow"'
_BARE_TAGS = {tag: f"<{tag}>" for tag in _KEEP - {"a"}} | {"br": "<br />", "hr": "<hr />"}


def _safe_url(value: str, schemes: frozenset[str]) -> str | None:
    """The URL if it is absolute with an allowed scheme, as a browser would read it."""
    # Browsers strip leading/trailing controls and spaces and delete tabs and
    # newlines anywhere ("java\tscript:"); entities were decoded by the parser.
    # Anything without an allowed scheme (relative, "//host", "javascript:",
    # "data:", full-width look-alikes) is refused.
    url = _URL_BREAKS.sub("", value.translate(_CONTROLS)).strip("\x00\x20")
    match = _SCHEME.match(url)
    if match is None or match.group(1).lower() not in schemes:
        return None
    return url


def _start_tag(tag: str, attrs: list[tuple[str, str | None]]) -> str | None:
    if not attrs and tag in _BARE_TAGS:
        return _BARE_TAGS[tag]
    allowed = _TAG_ATTRS.get(tag, _COMMON_ATTRS)
    parts = [tag]
    has_src = False
    for name, raw in _attr_map(attrs).items():
        if name not in allowed:
            continue
        value: str | None = raw.translate(_CONTROLS)
        if name == "href":
            value = _safe_url(raw, _HREF_SCHEMES)
        elif name == "src":
            value = _safe_url(raw, _SRC_SCHEMES)
            has_src = value is not None
        elif name in ("width", "height"):
            value = value if value and _SIZE.fullmatch(value.strip()) else None
        elif name in ("colspan", "rowspan"):
            value = value if value and _SPAN.fullmatch(value.strip()) else None
        if value is None:
            continue
        parts.append(f'{name}="{html.escape(value.strip(), quote=True)}"')
    if tag == "img" and not has_src:
        return None  # an image without a loadable source shows nothing
    if tag == "a":
        parts.append(_LINK_REL)
    return "<" + " ".join(parts) + (" />" if tag in _KEEP_VOID else ">")


class _Sanitizer(_TreeParser):
    def __init__(self) -> None:
        super().__init__()
        self._out: list[str] = []
        self._drop = 0

    def _enter(self, tag: str, attrs: list[tuple[str, str | None]]) -> _Frame:
        frame = _Frame(tag)
        if tag in _DROP_WITH_CONTENT:
            frame.flags = _DROPPED
            self._drop += 1
        elif not self._drop and tag in _KEEP:
            start = _start_tag(tag, attrs)
            if start is not None:
                self._out.append(start)
                frame.flags = _KEPT
        return frame

    def _leave(self, frame: _Frame) -> None:
        if frame.flags & _KEPT:
            self._out.append(f"</{frame.tag}>")
        elif frame.flags & _DROPPED:
            self._drop -= 1

    def _void(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self._drop and tag in _KEEP_VOID:
            start = _start_tag(tag, attrs)
            if start is not None:
                self._out.append(start)

    def _text(self, data: str) -> None:
        if not self._drop:
            self._out.append(html.escape(data.translate(_CONTROLS), quote=False))

    def render(self, markup: str) -> str:
        self.run(markup)
        return "".join(self._out)


# --- public API -----------------------------------------------------------------------------

# Last resort if the parser ever fails on something we did not foresee: tags
# removed with a pattern that cannot backtrack, so this is linear too.
_ANY_TAG = re.compile(r"<[^<>]*>")


def _fallback_text(markup: str) -> str:
    text = html.unescape(_ANY_TAG.sub(" ", markup)).translate(_CONTROLS)
    lines = (_HTML_SPACE.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def html_to_text(html: str) -> str:
    """Readable plain text of an HTML mail body."""
    try:
        return _TextRenderer().render(html)
    except Exception:  # noqa: BLE001 - "never raises": degrade rather than lose the mail
        return _fallback_text(html)


def sanitize_html(html: str) -> str:
    """An inert copy of an HTML body: allow-listed tags and attributes only."""
    try:
        return _Sanitizer().render(html)
    except Exception:  # noqa: BLE001 - never raises; escaped plain text is inert anyway
        return _escape(_fallback_text(html)).replace("\n", "<br />\n")


def _escape(text: str) -> str:
    return html.escape(text, quote=True)
