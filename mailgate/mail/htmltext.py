"""HTML mail bodies as readable plain text, in the conventions of plain-text mail.

Pure; part of mailgate.mail; imports only the standard library and ``mail.htmltree``.

Quoted history keeps the conventions of plain-text mail, because the reply
splitter (``mailgate.mail.quotes``) only understands those:

* blockquotes (Gmail, Apple Mail, Thunderbird, Yahoo, ...) become ``> `` lines,
  their attribution line ("On ... wrote:") stays one line of its own;
* Outlook's reply header ("From:/Sent:/To:/Subject:") renders one field per line,
  below a rule of dashes where Outlook draws one.

Paragraphs are separated by a blank line, line breaks kept, lists become
bullets ("- ", "1. "), links their text followed by the URL once, tables one
line per row; CSS, scripts and comments never show.
"""

from __future__ import annotations

import re

from mailgate.mail.htmltree import _CONTROLS, _HTML_SPACE, _attr_map, _Frame, _TreeParser

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
