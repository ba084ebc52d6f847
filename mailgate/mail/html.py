"""HTML mail bodies: readable plain text, and an inert sanitised copy.

Pure: HTML text in, text out; part of mailgate.mail; imports only the standard
library, nh3 and ``mailgate.mail``.

* ``html_to_text`` renders a body as plain text (``mail.htmltext``, our own: the
  reply splitter needs quoted history as ``>`` lines and Outlook's header block
  as one field per line, which no library renders).
* ``sanitize_html`` is nh3 (Rust's ammonia: an HTML5 tree builder and a
  maintained allow-list sanitiser, what security reviewers expect) configured
  with our allow-list: formatting tags only; no script, style, class, id or
  event handler; links only to http(s) and mailto, images only from http(s) and
  cid. Our own code only tightens what nh3 lets through (per-attribute URL
  schemes, numeric sizes) and writes void elements in XML style.

Neither raises.
"""

from __future__ import annotations

import html
import re

import nh3

from mailgate.mail.htmltext import _TextRenderer
from mailgate.mail.htmltree import _CONTROLS, _HTML_SPACE

__all__ = ["html_to_text", "sanitize_html"]

# --- the allow-list (nh3's configuration) ---------------------------------------------------

_KEEP = frozenset(
    {
        "p", "div", "span", "b", "strong", "i", "em", "u", "s", "blockquote", "pre", "code",
        "ul", "ol", "li", "table", "thead", "tbody", "tr", "td", "th", "h1", "h2", "h3",
        "h4", "h5", "h6", "a", "font", "sub", "sup", "small", "big", "center",
    }
)  # fmt: skip
_KEEP_VOID = frozenset({"br", "hr", "img"})
# Dropped together with everything inside: active content, forms, foreign
# content, and elements whose text is not body text.
_DROP_WITH_CONTENT = frozenset(
    {
        "script", "style", "iframe", "object", "embed", "form", "input", "button", "textarea",
        "select", "svg", "math", "template", "noscript", "link", "meta", "base", "frame",
        "frameset", "applet", "title", "xml", "noembed", "noframes", "option", "datalist",
    }
)  # fmt: skip
# No "style": CSS can hide or overlay content and load URLs; filtering it safely
# needs a CSS parser, dropping it costs only looks. No "class"/"id": they would
# hook into the styles and scripts of the page that shows the mail.
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
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_URL_BREAKS = re.compile(r"[\t\n\r]")
_LINK_REL = "noopener noreferrer nofollow"


def _attribute_filter(tag: str, name: str, value: str) -> str | None:
    """What nh3 cannot express: URL schemes per attribute, numbers where numbers belong."""
    if name == "href":
        return _with_scheme(value, _HREF_SCHEMES)
    if name == "src":
        return _with_scheme(value, _SRC_SCHEMES)
    if name in ("width", "height"):
        return value.strip() if _SIZE.fullmatch(value.strip()) else None
    if name in ("colspan", "rowspan"):
        return value.strip() if _SPAN.fullmatch(value.strip()) else None
    return value


def _with_scheme(url: str, schemes: frozenset[str]) -> str | None:
    # As a browser reads it: tabs and newlines inside deleted, spaces around stripped.
    url = _URL_BREAKS.sub("", url).strip(" \x00")
    match = _SCHEME.match(url)
    return url if match is not None and match.group(1).lower() in schemes else None


_CLEANER = nh3.Cleaner(
    tags=set(_KEEP | _KEEP_VOID),
    clean_content_tags=set(_DROP_WITH_CONTENT),
    attributes={"*": set(_COMMON_ATTRS), **{k: set(v) for k, v in _TAG_ATTRS.items()}},
    attribute_filter=_attribute_filter,
    url_schemes=set(_HREF_SCHEMES | _SRC_SCHEMES),
    url_relative="deny",
    link_rel=_LINK_REL,
    strip_comments=True,
)


def _clean(markup: str) -> str:
    return _CLEANER.clean(markup)


# html5ever (inside nh3) costs depth x tags on deeply nested input: 20,000 nested
# <div>s take over a second, 100,000 half a minute. No mail nests a hundred levels,
# so start tags beyond MAX_DEPTH open elements are removed before nh3 sees the
# markup (their text stays). This only removes markup; nh3 still judges all that is
# left. Elements that browsers close by themselves (p, li, td...) are not counted.
MAX_DEPTH = 200
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]{0,40})[^<>]{0,10000}>")
_NOT_COUNTED = frozenset(
    {"p", "li", "dt", "dd", "tr", "td", "th", "thead", "tbody", "tfoot", "option", "colgroup"}
    | _KEEP_VOID
    | {"area", "base", "col", "embed", "input", "link", "meta", "param", "source", "track", "wbr"}
)


def _bounded_depth(markup: str) -> str:
    if markup.count("<") <= MAX_DEPTH:
        return markup
    depth = 0
    pieces: list[str] = []
    pos = 0
    for match in _TAG.finditer(markup):
        if match.group(2).lower() in _NOT_COUNTED:
            continue
        closing = match.group(1) == "/"
        depth += -1 if closing else 1
        if depth > MAX_DEPTH or (closing and depth >= MAX_DEPTH):
            pieces.append(markup[pos : match.start()])
            pos = match.end()
        depth = max(depth, 0)
    if not pieces:
        return markup
    pieces.append(markup[pos:])
    return "".join(pieces)


# nh3's output is HTML5 serialisation: attributes double-quoted, text escaped. These
# only rewrite that output: void elements in XML style, an image without a source
# (it shows nothing) removed, &nbsp; as the one entity XML has no name for.
_VOID_TAG = re.compile(r'<(br|hr|img)((?:\s+[^\s=>/]+(?:="[^"]*")?)*)\s*/?>')
_NBSP = "&nbsp;"


def _xml_style(match: re.Match[str]) -> str:
    tag, attrs = match.group(1), match.group(2)
    if tag == "img" and ' src="' not in attrs:
        return ""
    return f"<{tag}{attrs} />"


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
        clean = _clean(_bounded_depth(html.translate(_CONTROLS)))
        return _VOID_TAG.sub(_xml_style, clean).replace(_NBSP, "&#160;")
    except Exception:  # noqa: BLE001 - never raises; escaped plain text is inert anyway
        return _escape(_fallback_text(html)).replace("\n", "<br />\n")


def _escape(text: str) -> str:
    return html.escape(text, quote=True)
