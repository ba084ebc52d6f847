"""The HTML tree model shared by the text renderer: HTMLParser plus browser-like recovery.

Pure; part of mailgate.mail; imports only the standard library.

An open-element stack, implied end tags for the common cases (p, li, td, tr, a)
and browser-like recovery, all in time linear in the input. It does not
sanitise: that is nh3's job (``mail.html``).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

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
